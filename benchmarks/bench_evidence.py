"""Time evidence.pool and evidence.meta_regression against statsmodels, PyMARE and metafor,
all in the same run.

Usage (from the repository root; peers from the ``bench`` extra: ``pip install -e .[bench]``)::

    python benchmarks/bench_evidence.py [--repeats 7] [--sizes 1000 10000 100000 1000000]
                                        [--metafor-sizes 1000] [--r-timeout 120]
    python benchmarks/bench_evidence.py --no-peers          # evidence alone, pool only
    python benchmarks/bench_evidence.py --previous 4f8682f  # pool: that commit vs now

What is timed, on the same seeded data (tau^2 = 0.05):

* ``pool(yi, vi, method=M)`` for M = DL, PM, REML: the whole call (input checks, tau^2,
  estimate, CI, prediction interval, Q, I^2, weights).
* statsmodels ``combine_effects(yi, vi, method_re="dl" | "iterated")``: its DL does not
  truncate tau^2 at 0, and its Paule-Mandel ("iterated") stops when
  |Q(tau^2) - (k - 1)| < 1e-5 or after 50 iterations, where evidence solves Q = k - 1 to
  1e-14 in tau^2 (metafor's root); the tau^2 differences are printed.
* PyMARE ``VarianceBasedLikelihoodEstimator(method="REML", small_sample_correction="wald")
  .fit(y, v, X)`` plus ``.summary().get_fe_stats()`` (estimate, se, CI, p, as ``pool``);
  it maximises the profile likelihood with a bounded scalar optimiser.
* metafor ``rma(yi, vi, method = M)`` with R's ``system.time`` on the same data (a CSV),
  only at ``--metafor-sizes``: rma.uni builds k x k matrices, so a fit costs O(k^3) time
  (seconds at 10^3, about an hour at 10^4 by extrapolation) and O(k^2) memory (R cannot
  allocate them at 10^5: 74.5 GB).
* ``meta_regression(yi, vi, mods ~ x + g)`` (REML) against PyMARE with the same model matrix
  and metafor's ``rma(yi, vi, mods = ~ x + g, method = "REML")``.

Python contenders run round-robin (one timing each per round, after a warm-up; calls under
~20 ms are timed in batches, as ``timeit``), so machine load hits them alike; each cell is the median of ``--repeats`` rounds (3 at 10^6). BLAS
threads are left as they come (the point of the comparison): the run prints them. Prints
Markdown tables with times and ratios evidence / peer (< 1: evidence is faster). This is a
benchmark, not a test.
"""

import argparse
import datetime
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _shared import time_r as shared_time_r  # noqa: E402

from evidence import meta_regression, pool  # noqa: E402
from evidence.regression import design_matrix  # noqa: E402

R_TEMPLATE = """
suppressMessages(library(metafor))
d <- read.csv("{csv}")
fit <- function() {fit}
t <- tryCatch(replicate({repeats}, system.time(fit())[["elapsed"]]),
              error = function(e) {{ cat("ERROR", conditionMessage(e), "\\n"); quit(status = 0) }})
cat("MEDIAN", median(t), "\\n")
"""
R_POOL = 'rma(d$yi, d$vi, method = "{method}")'
# times pool() of the evidence package found in {src} on the arrays saved in {npz}
VERSION_SNIPPET = """
import statistics, sys, time
sys.path.insert(0, {src!r})
import numpy as np
from evidence import pool
d = np.load({npz!r})
for method in ("DL", "PM", "REML"):
    pool(d["yi"], d["vi"], method=method)
    t = []
    for _ in range({repeats}):
        start = time.perf_counter()
        pool(d["yi"], d["vi"], method=method)
        t.append(time.perf_counter() - start)
    print(method, statistics.median(t))
"""
R_REG = 'rma(d$yi, d$vi, mods = ~ x + g, data = d, method = "REML")'


def make_data(k, seed=20240601):
    """k studies with tau^2 = 0.05, a numeric and a three-level moderator."""
    rng = np.random.default_rng(seed)
    vi = rng.uniform(0.01, 0.2, k)
    x = rng.normal(size=k)
    g = rng.choice(["a", "b", "c"], k)
    yi = 0.2 + 0.1 * x + 0.2 * (g == "b") + rng.normal(0, np.sqrt(vi + 0.05))
    return pd.DataFrame({"yi": yi, "vi": vi, "x": x, "g": g})


def _batch_size(call, target=0.02):
    """How many calls make one timing of about ``target`` seconds (1 for slow calls)."""
    call()  # warm-up (imports, caches)
    start = time.perf_counter()
    call()
    return max(1, min(1000, round(target / max(time.perf_counter() - start, 1e-7))))


def round_robin(calls, repeats):
    """Median wall time per call of each call, the calls alternating in every round.

    Fast calls are timed in batches of about 20 ms (as ``timeit``), so a sub-millisecond
    call is not one scheduler tick away from doubling on a shared machine.
    """
    batch = {name: _batch_size(call) for name, call in calls.items()}
    times = {name: [] for name in calls}
    for _ in range(repeats):
        for name, call in calls.items():
            start = time.perf_counter()
            for _ in range(batch[name]):
                call()
            times[name].append((time.perf_counter() - start) / batch[name])
    return {name: statistics.median(t) for name, t in times.items()}


def time_metafor(data, fit_code, repeats, timeout):
    """Median ``system.time`` of a metafor fit in seconds, or a string saying why there is none."""
    return shared_time_r(R_TEMPLATE, data, fit_code, repeats, timeout)


# ---------------------------------------------------------------- peers


def statsmodels_call(method_re):
    from statsmodels.stats.meta_analysis import combine_effects

    return lambda y, v: combine_effects(y, v, method_re=method_re)


def pymare_call(y, v, X):
    from pymare.estimators import VarianceBasedLikelihoodEstimator

    est = VarianceBasedLikelihoodEstimator(method="REML", small_sample_correction="wald")
    est.fit(y[:, None], v[:, None], X)
    return est, est.summary().get_fe_stats()


PEERS = {  # evidence method -> (peer name, call(y, v) -> result, tau2 of the result)
    "DL": ("statsmodels DL", statsmodels_call("dl"), lambda r: float(r.tau2)),
    "PM": ("statsmodels PM", statsmodels_call("iterated"), lambda r: float(r.tau2)),
    "REML": ("PyMARE REML", lambda y, v: pymare_call(y, v, np.ones((len(y), 1))),
             lambda r: float(r[0].params_["tau2"].ravel()[0])),
}


# ---------------------------------------------------------------- tables


def ms(seconds):
    return f"{seconds * 1e3:,.2f} ms" if seconds < 1 else f"{seconds:,.2f} s"


def cell(value):
    return ms(value) if isinstance(value, float) else value


def ratio(ours, theirs):
    if not isinstance(theirs, float):
        return "n/a"
    r = ours / theirs
    return f"{r:.2f}" if r >= 0.01 else f"{r:.1e}"


def pool_rows(k, data, repeats, metafor_sizes, r_timeout, peers=True):
    """One Markdown row per method at size k, and the tau^2 gaps to the peers."""
    y, v = data["yi"].to_numpy(), data["vi"].to_numpy()
    calls = {}
    for method, (peer, call, _) in PEERS.items():
        calls[method] = lambda m=method: pool(y, v, method=m)
        if peers:
            calls[peer] = lambda c=call: c(y, v)
    medians = round_robin(calls, repeats)
    rows, gaps = [], []
    for method, (peer, call, tau2_of) in PEERS.items():
        ours, theirs = medians[method], medians.get(peer, "not run")
        theirs_r = (time_metafor(data, R_POOL.format(method=method), repeats, r_timeout)
                    if k in metafor_sizes else "not run")
        rows.append(f"| {method} | {k:,} | {ms(ours)} | {peer} | {cell(theirs)} "
                    f"| **{ratio(ours, theirs)}** | {cell(theirs_r)} "
                    f"| {ratio(ours, theirs_r)} |")
        if peers:
            gap = tau2_of(call(y, v)) - pool(y, v, method=method).tau2
            gaps.append(f"{peer} tau^2 - evidence: {gap:+.2e}")
    return rows, gaps


def regression_row(k, data, repeats, metafor_sizes, r_timeout):
    y, v = data["yi"].to_numpy(), data["vi"].to_numpy()
    mods = data[["x", "g"]]
    X = design_matrix(mods)[0]
    medians = round_robin({"evidence": lambda: meta_regression(y, v, mods),
                           "pymare": lambda: pymare_call(y, v, X)}, repeats)
    theirs_r = (time_metafor(data, R_REG, repeats, r_timeout) if k in metafor_sizes
                else "not run")
    ours = medians["evidence"]
    return (f"| meta_regression REML, ~ x + g | {k:,} | {ms(ours)} | PyMARE REML "
            f"| {ms(medians['pymare'])} | **{ratio(ours, medians['pymare'])}** "
            f"| {cell(theirs_r)} | {ratio(ours, theirs_r)} |")


def time_versions(ref, sizes, repeats):
    """Markdown rows: pool() of ``git archive ref`` against the working tree, each alone in
    its own process (so neither meets BLAS threads woken by the other or by a peer)."""
    root = Path(__file__).resolve().parents[1]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        old = Path(tmp) / "old"
        old.mkdir()
        archive = subprocess.run(["git", "-C", str(root), "archive", ref, "evidence"],
                                 capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", str(old)], input=archive, check=True)
        for k in sizes:
            data = make_data(k)
            npz = Path(tmp) / "data.npz"
            np.savez(npz, yi=data["yi"].to_numpy(), vi=data["vi"].to_numpy())
            got = {}
            for label, src in (("before", old), ("now", root)):
                code = VERSION_SNIPPET.format(src=str(src), npz=str(npz),
                                              repeats=repeats if k < 10**6 else min(repeats, 3))
                out = subprocess.run([sys.executable, "-c", code], capture_output=True,
                                     text=True, check=True).stdout
                got[label] = dict((m, float(t)) for m, t in (ln.split() for ln in out.splitlines()))
            for m in ("DL", "PM", "REML"):
                before, now = got["before"][m], got["now"][m]
                rows.append(f"| {m} | {k:,} | {ms(before)} | {ms(now)} | {now / before:.2f} |")
    return rows


def versions():
    out = [f"Python {platform.python_version()}", f"numpy {np.__version__}"]
    for name in ("statsmodels", "pymare"):
        try:
            out.append(f"{name} {__import__(name).__version__}")
        except ImportError:
            out.append(f"{name} missing")
    blas = {key: os.environ.get(key, "unset") for key in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")}
    return ", ".join(out) + f"; {os.cpu_count()} CPUs, BLAS threads env {blas}"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--sizes", type=int, nargs="*", default=[10**3, 10**4, 10**5, 10**6])
    parser.add_argument("--metafor-sizes", type=int, nargs="*", default=[10**3])
    parser.add_argument("--r-timeout", type=float, default=120.0)
    parser.add_argument("--previous", metavar="GIT_REF",
                        help="instead of the peers, time pool() of this commit's evidence/ "
                             "against the working tree's, each alone in a fresh process")
    parser.add_argument("--no-peers", action="store_true",
                        help="time evidence alone (no Python peer in the process, so no BLAS "
                             "threads they wake), pool only")
    args = parser.parse_args()
    print(f"{datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC, load average "
          f"{os.getloadavg()[0]:.1f}; {versions()}; medians of {args.repeats} rounds "
          "(3 at 10^6)\n")
    if args.previous:
        print(f"| pool method | k | evidence at {args.previous} | evidence now | now / before |")
        print("|---|---:|---:|---:|---:|")
        print("\n".join(time_versions(args.previous, args.sizes, args.repeats)))
        return
    print("| pool method | k | evidence | peer | peer time | evidence / peer "
          "| metafor 3.8-1 | evidence / metafor |")
    print("|---|---:|---:|---|---:|---:|---:|---:|")
    all_gaps = []
    for k in args.sizes:
        repeats = args.repeats if k < 10**6 else min(args.repeats, 3)
        rows, gaps = pool_rows(k, make_data(k), repeats, args.metafor_sizes, args.r_timeout,
                               peers=not args.no_peers)
        print("\n".join(rows), flush=True)
        all_gaps.append(f"k = {k:,}: " + "; ".join(gaps))
    if args.no_peers:
        return
    for k in (10**3, 10**5):
        print(regression_row(k, make_data(k), args.repeats, args.metafor_sizes, args.r_timeout),
              flush=True)
    print(f"\nload average at the end {os.getloadavg()[0]:.1f}\n")
    print("\n".join(all_gaps))


if __name__ == "__main__":
    main()

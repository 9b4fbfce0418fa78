"""Time evidence.pool (REML) and evidence.meta_regression against metafor in the same run.

Usage (from the repository root)::

    /work/venv/bin/python benchmarks/bench_evidence.py [--repeats 5] [--r-timeout 90]

For each size the same data (seeded numpy draws) is written to a temporary CSV; Python times
only the fit with time.perf_counter (median of ``--repeats`` runs after a warm-up), R times
only ``rma()`` with ``system.time`` after reading the CSV (median of ``--repeats`` runs up to
k = 1,000, one run above, since one fit at k = 2,000 already takes ~half a minute).
metafor's ``rma.uni`` builds k x k matrices, so its time grows as k^3 and its memory as k^2:
a run that errors (cannot allocate) or exceeds ``--r-timeout`` seconds is reported as such,
and metafor is also timed at the extra size k = 2,000 to show how its cost grows. The whole
run takes about three minutes. Prints Markdown: the table with the ratio metafor time / our
time and the log-log slope of time against k (1 = linear). This is a benchmark, not a test.
"""

import argparse
import datetime
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from evidence import meta_regression, pool  # noqa: E402

R_TEMPLATE = """
suppressMessages(library(metafor))
d <- read.csv("{csv}")
fit <- function() {fit}
t <- tryCatch(replicate({repeats}, system.time(fit())[["elapsed"]]),
              error = function(e) {{ cat("ERROR", conditionMessage(e), "\\n"); quit(status = 0) }})
cat("MEDIAN", median(t), "\\n")
"""
R_POOL = 'rma(d$yi, d$vi, method = "REML")'
R_REG = 'rma(d$yi, d$vi, mods = ~ x + g, data = d, method = "REML")'


def make_data(k, seed=20240601):
    """k studies with tau^2 = 0.05, a numeric and a three-level moderator."""
    rng = np.random.default_rng(seed)
    vi = rng.uniform(0.01, 0.2, k)
    x = rng.normal(size=k)
    g = rng.choice(["a", "b", "c"], k)
    yi = 0.2 + 0.1 * x + 0.2 * (g == "b") + rng.normal(0, np.sqrt(vi + 0.05))
    return pd.DataFrame({"yi": yi, "vi": vi, "x": x, "g": g})


def timings(fit, repeats):
    """Wall times of ``fit()`` over ``repeats`` runs (after one warm-up)."""
    fit()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fit()
        times.append(time.perf_counter() - start)
    return times


def time_python(fit, repeats):
    """Median wall time of ``fit()`` over ``repeats`` runs (after one warm-up)."""
    return statistics.median(timings(fit, repeats))


def time_metafor(data, fit_code, repeats, timeout):
    """Median ``system.time`` of a metafor fit, or a string saying why there is none."""
    with tempfile.TemporaryDirectory() as tmp:
        csv = Path(tmp) / "data.csv"
        data.to_csv(csv, index=False)
        script = R_TEMPLATE.format(csv=csv, fit=fit_code, repeats=repeats)
        try:
            out = subprocess.run(["Rscript", "-e", script], capture_output=True, text=True,
                                 timeout=timeout).stdout
        except subprocess.TimeoutExpired:
            return f"stopped after {timeout:g} s ({repeats} fits)"
    for line in out.splitlines():
        if line.startswith("MEDIAN"):
            return float(line.split()[1])
        if line.startswith("ERROR"):
            return "error: " + line[6:].strip()[:60]
    return "no output"


def row(label, k, ours, theirs, best=None):
    """One Markdown table row; ``ours`` may be None where only metafor was timed.

    ``best`` (fastest of the runs) adds a column: on a shared machine it varies less than
    the median, so it shows the cost per study better.
    """
    if isinstance(theirs, float):
        ratio = f"{theirs / ours:,.0f}x" if ours else "n/a"
        theirs_text = f"{theirs:.3f} s"
    else:
        ratio, theirs_text = "n/a", theirs
        stopped = re.match(r"stopped after ([0-9.]+) s", theirs)
        if stopped and ours:  # metafor needed more than the timeout: a lower bound
            ratio = f"> {float(stopped.group(1)) / ours:,.0f}x"
    ours_text = f"{ours * 1e3:.2f} ms" if ours else "not timed"
    cells = [label, f"{k:,}", ours_text]
    if best is not None or ours is None:
        cells += [f"{best * 1e3:.2f} ms" if best else "", f"{best / k * 1e9:.0f} ns" if best else ""]
    else:
        cells.append(f"{ours / k * 1e9:.0f} ns")
    return "| " + " | ".join(cells + [theirs_text, ratio]) + " |"


def slope(times):
    """Least-squares slope of log(time) on log(k) for {k: seconds}: 1 is linear, 3 cubic."""
    ks = sorted(k for k, t in times.items() if isinstance(t, float))
    if len(ks) < 2:
        return float("nan")
    return float(np.polyfit(np.log(ks), np.log([times[k] for k in ks]), 1)[0])


def r_repeats(k, repeats):
    return repeats if k <= 1000 else 1


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--r-timeout", type=float, default=90.0)
    parser.add_argument("--sizes", type=int, nargs="*", default=[10**3, 10**4, 10**5, 10**6])
    parser.add_argument("--r-only-sizes", type=int, nargs="*", default=[2000])
    args = parser.parse_args()
    print(f"{datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC, Python "
          f"{platform.python_version()}, numpy {np.__version__}; repeats {args.repeats}, "
          f"R timeout {args.r_timeout:g} s\n")
    print("| model | k | evidence (median) | evidence (best) | best per study "
          "| metafor 3.8-1 (median) | metafor / ours (medians) |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    best_t, theirs_t = {}, {}
    for k in sorted(set(args.sizes) | set(args.r_only_sizes)):
        data = make_data(k)
        ours = None
        if k in args.sizes:
            times = timings(lambda d=data: pool(d["yi"], d["vi"], method="REML"), args.repeats)
            ours, best_t[k] = statistics.median(times), min(times)
        theirs_t[k] = time_metafor(data, R_POOL, r_repeats(k, args.repeats), args.r_timeout)
        print(row("pool REML", k, ours, theirs_t[k], best_t.get(k)), flush=True)
    for k in (10**3, 10**5):
        data = make_data(k)
        mods = data[["x", "g"]]
        times = timings(lambda d=data, m=mods: meta_regression(d["yi"], d["vi"], m), args.repeats)
        theirs = time_metafor(data, R_REG, r_repeats(k, args.repeats), args.r_timeout)
        print(row("meta_regression REML, mods ~ x + g", k, statistics.median(times), theirs,
                  min(times)), flush=True)
    big = {k: t for k, t in best_t.items() if k >= 10**4}
    print(f"\nlog-log slope of time on k: evidence {slope(big):.2f} (best times, k >= 10^4), "
          f"metafor {slope(theirs_t):.2f} (sizes where it finished)")


if __name__ == "__main__":
    main()

"""Time evidence's multilevel models against evidence.pool and metafor in the same run.

Usage (from the repository root)::

    /work/venv/bin/python benchmarks/bench_multilevel.py [--repeats 7] [--r-timeout 120]

Data: k effects in k / 20 sources with 1-4 sites each (seeded numpy draws, sigma2 = 0.04
between sources, 0.02 between sites, 0.01 between effects). For each k the script times,
in interleaved rounds so that a busy machine slows all of them alike:

* ``pool`` (REML, independent effects): the reference the ratios are taken to;
* ``pool_nested`` (REML, source/site/effect) and ``pool_multilevel`` (REML, source/effect);
* the same fits followed by cluster-robust inference by source: ``robust(vcov="CR1")``
  and ``robust(vcov="CR2")`` (clubSandwich's estimator with Satterthwaite df), and
  ``robust_pool(vcov="CR2")`` with the random-effects working model.

It prints medians and best times and the ratios (median / median of ``pool`` in the same
rounds). With ``--metafor-k`` (default 1,000) R times ``rma.mv(yi, vi, random = ~ 1 |
source/site/effect, sparse = TRUE)`` and ``robust(that, cluster = source, clubSandwich =
TRUE)`` on the same data (one run each after a warm-up, ``--r-timeout`` seconds at most).
``--leave-one-out`` adds the old comparison of ``leave_one_out`` with ``leave1out`` at k =
1,000. This is a benchmark, not a test.
"""

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _shared import time_r as shared_time_r  # noqa: E402

from evidence import leave_one_out, pool, pool_multilevel, pool_nested, robust_pool  # noqa: E402

R_TEMPLATE = """
suppressMessages({{library(metafor); library(clubSandwich)}})
d <- read.csv("{csv}")
fit <- function() {fit}
invisible(fit())  # warm-up: byte-compiling and loading namespaces are not timed
t <- tryCatch(replicate({repeats}, system.time(fit())[["elapsed"]]),
              error = function(e) {{ cat("ERROR", conditionMessage(e), "\\n"); quit(status = 0) }})
cat("MEDIAN", median(t), "\\n")
"""
R_NESTED = ('rma.mv(yi, vi, random = ~ 1 | source/site/effect, data = d, method = "REML", '
            'sparse = TRUE)')
R_CR2 = f"robust({R_NESTED}, cluster = d$source, clubSandwich = TRUE)"
R_L1O = 'leave1out(rma(d$yi, d$vi, method = "REML"))'


def make_nested(k, seed=20261130):
    """k effects in k / 20 sources of 1-4 sites: mu = 0.2, sigma2 = (0.04, 0.02, 0.01)."""
    rng = np.random.default_rng(seed)
    n = max(2, k // 20)
    source = np.sort(rng.integers(0, n, k))
    site = rng.integers(0, 4, k)
    vi = rng.uniform(0.005, 0.08, k)
    yi = (0.2 + rng.normal(0, 0.2, n)[source] + rng.normal(0, np.sqrt(0.02), (n, 4))[source, site]
          + rng.normal(0, np.sqrt(0.01 + vi)))
    return pd.DataFrame({"yi": yi, "vi": vi, "source": source, "site": site,
                         "effect": np.arange(k)})


def tasks(d):
    """name -> call, all on the same data; "pool" first (the reference)."""
    y, v, s, t = d["yi"].to_numpy(), d["vi"].to_numpy(), d["source"].to_numpy(), d["site"].to_numpy()
    return {
        "pool REML (independent effects)": lambda: pool(y, v),
        "pool_nested REML (source/site/effect)": lambda: pool_nested(y, v, s, t),
        "pool_multilevel REML (source/effect)": lambda: pool_multilevel(y, v, s),
        "pool_nested + robust CR1 by source": lambda: pool_nested(y, v, s, t).robust("CR1"),
        "pool_nested + robust CR2 by source": lambda: pool_nested(y, v, s, t).robust("CR2"),
        "robust_pool CR2, RE working model": lambda: robust_pool(y, v, s, vcov="CR2"),
    }


def interleaved(calls, repeats):
    """Wall times of each call over ``repeats`` rounds (each call once per round, after a
    warm-up round), so that load from other jobs falls on all of them alike."""
    for call in calls.values():
        call()
    times = {name: [] for name in calls}
    for _ in range(repeats):
        for name, call in calls.items():
            start = time.perf_counter()
            call()
            times[name].append(time.perf_counter() - start)
    return times


def time_r(data, fit_code, repeats, timeout):
    """Median R ``system.time`` of ``fit_code`` after a warm-up, or why there is none."""
    return shared_time_r(R_TEMPLATE, data, fit_code, repeats, timeout)


def ms(seconds):
    return f"{seconds * 1e3:,.2f} ms"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--sizes", type=int, nargs="*", default=[10**3, 10**4, 10**5])
    parser.add_argument("--metafor-k", type=int, nargs="*", default=[10**3])
    parser.add_argument("--r-repeats", type=int, default=1)
    parser.add_argument("--r-timeout", type=float, default=120.0)
    parser.add_argument("--leave-one-out", action=argparse.BooleanOptionalAction, default=False)
    args = parser.parse_args()

    print("| task | k | median | best | median / pool median |")
    print("|---|---:|---:|---:|---:|")
    for k in args.sizes:
        times = interleaved(tasks(make_nested(k)), args.repeats)
        ref = statistics.median(next(iter(times.values())))
        for name, ts in times.items():
            med = statistics.median(ts)
            print(f"| {name} | {k:,} | {ms(med)} | {ms(min(ts))} | {med / ref:.2f} |", flush=True)

    if args.metafor_k:
        print()
        print("| task | k | evidence (median) | metafor 3.8-1 | metafor / evidence |")
        print("|---|---:|---:|---:|---:|")
    for k in args.metafor_k:
        d = make_nested(k)
        calls = tasks(d)
        pairs = {"pool_nested REML (source/site/effect)": R_NESTED,
                 "pool_nested + robust CR2 by source": R_CR2}
        ours = interleaved({name: calls[name] for name in pairs}, args.repeats)
        for (name, ts), code in zip(ours.items(), pairs.values(), strict=True):
            theirs = time_r(d, code, args.r_repeats, args.r_timeout)
            med = statistics.median(ts)
            ratio = f"{theirs / med:,.0f}x" if isinstance(theirs, float) else "n/a"
            shown = f"{theirs:.3f} s" if isinstance(theirs, float) else theirs
            print(f"| {name} vs `{code[:60]}...` | {k:,} | {ms(med)} | {shown} | {ratio} |",
                  flush=True)

    if args.leave_one_out:
        d = make_nested(10**3)
        ts = interleaved({"l1o": lambda: leave_one_out(d["yi"], d["vi"])}, 3)["l1o"]
        theirs = time_r(d, R_L1O, 1, args.r_timeout)
        print(f"\nleave_one_out REML, k = 1,000: {ms(statistics.median(ts))}; leave1out: {theirs}")


if __name__ == "__main__":
    main()

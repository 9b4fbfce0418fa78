"""Time evidence.pool_multilevel and evidence.leave_one_out against metafor in the same run.

Usage (from the repository root)::

    /work/venv/bin/python benchmarks/bench_multilevel.py [--repeats 3] [--r-timeout 120]

``pool_multilevel`` (REML) is compared with ``rma.mv(yi, vi, random = ~ 1 | cluster/effect,
sparse = TRUE)`` (the dense default is far slower: 43 s at k = 1,000 on the machine of the
recorded run) at k = 10^3, 10^4 and 10^5 effects in k / 4 clusters; ``leave_one_out`` (REML)
with ``leave1out(rma(yi, vi))`` at k = 10^3. Timing, data and table format are those of
``bench_evidence.py``: medians of ``--repeats`` runs in Python, of ``--r-repeats`` in R (one
by default, because a single rma.mv fit at 10^4 takes minutes). This is a benchmark, not a test.
"""

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from bench_evidence import row, time_metafor, time_python

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from evidence import leave_one_out, pool_multilevel  # noqa: E402

R_MV = 'rma.mv(yi, vi, random = ~ 1 | cluster/effect, data = d, method = "REML", sparse = TRUE)'
R_L1O = 'leave1out(rma(d$yi, d$vi, method = "REML"))'


def make_clustered(k, seed=20241124):
    """k effects in k / 4 clusters: mu = 0.2, sigma2 = (0.04 between, 0.02 within)."""
    rng = np.random.default_rng(seed)
    n = max(2, k // 4)
    cluster = np.sort(rng.integers(0, n, k))
    vi = rng.uniform(0.005, 0.08, k)
    yi = 0.2 + rng.normal(0, 0.2, n)[cluster] + rng.normal(0, np.sqrt(0.02 + vi))
    return pd.DataFrame({"yi": yi, "vi": vi, "cluster": cluster, "effect": np.arange(k)})


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--r-repeats", type=int, default=1)
    parser.add_argument("--r-timeout", type=float, default=120.0)
    parser.add_argument("--sizes", type=int, nargs="*", default=[10**3, 10**4, 10**5])
    parser.add_argument("--leave-one-out", action=argparse.BooleanOptionalAction, default=True)
    args = parser.parse_args()
    print("| model | k | evidence (median) | per study | metafor 3.8-1 | metafor / ours |")
    print("|---|---:|---:|---:|---:|---:|")
    for k in args.sizes:
        d = make_clustered(k)
        ours = time_python(lambda d=d: pool_multilevel(d["yi"], d["vi"], d["cluster"]), args.repeats)
        theirs = time_metafor(d, R_MV, args.r_repeats, args.r_timeout)
        print(row("pool_multilevel REML vs rma.mv (sparse)", k, ours, theirs), flush=True)
    if not args.leave_one_out:
        return
    d = make_clustered(10**3)
    ours = time_python(lambda: leave_one_out(d["yi"], d["vi"]), args.repeats)
    theirs = time_metafor(d, R_L1O, args.r_repeats, args.r_timeout)
    print(row("leave_one_out REML vs leave1out", 10**3, ours, theirs), flush=True)


if __name__ == "__main__":
    main()

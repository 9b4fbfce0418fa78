"""Time evidence.pool (REML) and evidence.meta_regression against metafor in the same run.

Usage (from the repository root)::

    /work/venv/bin/python benchmarks/bench_evidence.py [--repeats 5] [--r-timeout 120]

For each size the same data (seeded numpy draws) is written to a temporary CSV; Python times
only the fit with time.perf_counter, R times only ``rma()`` with ``system.time`` after reading
the CSV; both report the median of ``--repeats`` runs. Prints a Markdown table with the ratio
metafor time / our time. A metafor run that errors (e.g. cannot allocate its k x k matrices)
or exceeds ``--r-timeout`` seconds is reported as such. This is a benchmark, not a test.
"""

import argparse
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


def time_python(fit, repeats):
    """Median wall time of ``fit()`` over ``repeats`` runs (after one warm-up)."""
    fit()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fit()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


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


def row(label, k, ours, theirs):
    """One Markdown table row."""
    if isinstance(theirs, float):
        ratio = f"{theirs / ours:,.0f}x" if ours > 0 else "n/a"
        theirs_text = f"{theirs:.3f} s"
    else:
        ratio, theirs_text = "n/a", theirs
    return f"| {label} | {k:,} | {ours * 1e3:.2f} ms | {theirs_text} | {ratio} |"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--r-timeout", type=float, default=120.0)
    parser.add_argument("--sizes", type=int, nargs="*", default=[10**3, 10**4, 10**5, 10**6])
    args = parser.parse_args()
    print("| model | k | evidence (median) | metafor 3.8-1 (median) | metafor / ours |")
    print("|---|---:|---:|---:|---:|")
    for k in args.sizes:
        data = make_data(k)
        ours = time_python(lambda d=data: pool(d["yi"], d["vi"], method="REML"), args.repeats)
        theirs = time_metafor(data, R_POOL, args.repeats, args.r_timeout)
        print(row("pool REML", k, ours, theirs), flush=True)
    data = make_data(10**5)
    mods = data[["x", "g"]]
    ours = time_python(lambda: meta_regression(data["yi"], data["vi"], mods), args.repeats)
    theirs = time_metafor(data, R_REG, args.repeats, args.r_timeout)
    print(row("meta_regression REML, mods ~ x + g", 10**5, ours, theirs), flush=True)


if __name__ == "__main__":
    main()

"""Time the nested meta-regression against the independent one and metafor in the same run.

Usage (from the repository root)::

    /tmp/venv/bin/python benchmarks/bench_moderators.py [--repeats 7] [--r-timeout 120]

Data: k effects in k / 20 sources of 1-4 sites (seeded numpy draws, as
``bench_multilevel.py``), a site-level warming in degrees C (uniform 0.5-6) and a
source-level biome of three levels; lnRR = 0.05 - 0.03 warming + biome shift + u with
sigma2 = 0.04 between sources, 0.02 between sites, 0.01 between effects. For each k the
script times, in interleaved rounds so that a busy machine slows all of them alike:

* ``meta_regression`` (REML, effects as independent, ``~ warming``): the reference the
  ratios are taken to;
* ``meta_regression_nested`` (REML, source/site/effect, ``~ warming``), which includes the
  intercept-only ``pool_nested`` fit for the pseudo-R^2;
* both with ``~ warming + biome`` (p = 4), the nested one as a ratio to the independent one
  with the same moderators;
* ``moderator_analysis(frame, "warming_c")`` end to end (labels from a DataFrame, the fit,
  the report, a 50-point line and the bubble table).

With ``--metafor-k`` (default 1,000) R times ``rma.mv(yi, vi, mods = ~ warming, random =
~ 1 | source/site/effect, sparse = TRUE)`` on the same data (one run after a warm-up,
``--r-timeout`` seconds at most). This is a benchmark, not a test.
"""

import argparse
import statistics
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_multilevel import interleaved, ms, time_r  # noqa: E402

from evidence import meta_regression, meta_regression_nested, moderator_analysis  # noqa: E402

R_NESTED = ('rma.mv(yi, vi, mods = ~ warming, random = ~ 1 | source/site/effect, data = d, '
            'method = "REML", sparse = TRUE)')
BIOMES = np.array(["boreal", "temperate", "tropical"])


def make_data(k, seed=20261201):
    """k effects in k / 20 sources of 1-4 sites, with warming (site) and biome (source)."""
    rng = np.random.default_rng(seed)
    n = max(2, k // 20)
    source = np.sort(rng.integers(0, n, k))
    site = rng.integers(0, 4, k)
    warming = rng.uniform(0.5, 6.0, (n, 4))[source, site]
    biome = BIOMES[rng.integers(0, 3, n)][source]
    vi = rng.uniform(0.005, 0.08, k)
    shift = np.select([biome == "temperate", biome == "tropical"], [-0.1, 0.1], 0.0)
    yi = (0.05 - 0.03 * warming + shift + rng.normal(0, 0.2, n)[source]
          + rng.normal(0, np.sqrt(0.02), (n, 4))[source, site] + rng.normal(0, np.sqrt(0.01 + vi)))
    return pd.DataFrame({"yi": yi, "vi": vi, "source": source, "site": site,
                         "effect": np.arange(k), "warming": warming, "biome": biome})


def tasks(d):
    """name -> call, all on the same data; the independent fit with ~ warming first."""
    y, v, s, t = (d[c].to_numpy() for c in ("yi", "vi", "source", "site"))
    one = d[["warming"]]
    two = d[["warming", "biome"]]
    frame = pd.DataFrame({"yi": y, "vi": v, "study_id": t, "source_key": s,
                          "warming_c": d["warming"].to_numpy()})

    def report():
        rep = moderator_analysis(frame, "warming_c")
        return rep.line(50), rep.points()

    return {
        "meta_regression REML ~ warming (independent)": lambda: meta_regression(y, v, one),
        "meta_regression_nested REML ~ warming": lambda: meta_regression_nested(y, v, one, s, t),
        "meta_regression REML ~ warming + biome (independent)": lambda: meta_regression(y, v, two),
        "meta_regression_nested REML ~ warming + biome":
            lambda: meta_regression_nested(y, v, two, s, t),
        "moderator_analysis(frame, 'warming_c') + line + points": report,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--sizes", type=int, nargs="*", default=[10**3, 10**4, 10**5])
    parser.add_argument("--metafor-k", type=int, nargs="*", default=[10**3])
    parser.add_argument("--r-repeats", type=int, default=1)
    parser.add_argument("--r-timeout", type=float, default=120.0)
    args = parser.parse_args()

    print("| task | k | median | best | median / independent median (same moderators) |")
    print("|---|---:|---:|---:|---:|")
    for k in args.sizes:
        times = interleaved(tasks(make_data(k)), args.repeats)
        meds = {name: statistics.median(ts) for name, ts in times.items()}
        names = list(times)
        refs = [names[0], names[0], names[2], names[2], names[0]]
        for name, ref in zip(names, refs, strict=True):
            ts = times[name]
            print(f"| {name} | {k:,} | {ms(meds[name])} | {ms(min(ts))} | "
                  f"{meds[name] / meds[ref]:.2f} |", flush=True)

    if args.metafor_k:
        print()
        print("| task | k | evidence (median) | metafor 3.8-1 | metafor / evidence |")
        print("|---|---:|---:|---:|---:|")
    for k in args.metafor_k:
        d = make_data(k)
        name = "meta_regression_nested REML ~ warming"
        ts = interleaved({name: tasks(d)[name]}, args.repeats)[name]
        theirs = time_r(d, R_NESTED, args.r_repeats, args.r_timeout)
        med = statistics.median(ts)
        ratio = f"{theirs / med:,.0f}x" if isinstance(theirs, float) else "n/a"
        shown = f"{theirs:.3f} s" if isinstance(theirs, float) else theirs
        code = R_NESTED[:70].replace("|", "\\|")  # a literal | would end the table cell
        print(f"| {name} vs `{code}...` | {k:,} | {ms(med)} | {shown} | {ratio} |", flush=True)


if __name__ == "__main__":
    main()

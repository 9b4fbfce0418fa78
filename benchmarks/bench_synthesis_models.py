"""Time a synthesis table by biome with each pooling model, as a ratio to the independent one.

Usage (from the repository root)::

    python benchmarks/bench_synthesis_models.py [--k 100000] [--repeats 5] [--models ...]

Seeded synthetic effects nested as the store nests them: sources (papers) of 1-4 sites
(study records) of 1-8 effects, ``--k`` effects in all, facets and the kind of evidence per
site, a quarter of the effects on an assumed variance and one in ten quality-flagged, so
the certainty columns have work to do. ``synthesize(frame, "biome", model=...)`` is timed
for each model in turn, the models interleaved within each repeat so that load on the
machine hits them alike; the table gives medians and each model's median over the
independent model's (target for the multilevel default: at most 2). ``fit_group`` on the
largest group alone is timed the same way, to show how much of a table is the fit.

A benchmark, not a test.
"""

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from _shared import ASSUMED, interleaved, nested_design  # noqa: E402

from evidence.synthesis import fit_group, synthesize  # noqa: E402

BIOMES = ["arctic", "boreal", "temperate", "subtropical", "tropical", "mediterranean", "alpine", "arid"]
KINDS = ["experimental", "observational", "model", "synthesis"]
MODELS = ("independent", "multilevel", "robust")


def nested_effects(k, seed=20261130):
    """About ``k`` effects in sites in sources, with the columns synthesis_rows gives."""
    d = nested_design(k, seed)
    site, source, rng, n_sites = d["site"], d["source"], d["rng"], d["n_sites"]
    return pd.DataFrame({
        "study_id": [f"s{s}" for s in site], "source_key": [f"p{s}" for s in source],
        "biome": np.array(BIOMES)[rng.integers(0, len(BIOMES), n_sites)][site],
        "evidence_kind": np.array(KINDS)[rng.integers(0, len(KINDS), n_sites)][site],
        "yi": d["yi"], "vi": d["vi"], "measure": "ROM", "direction": None,
        "variance_note": np.where(rng.random(len(site)) < 0.25, ASSUMED, None),
        "quality_flag": np.where(rng.random(len(site)) < 0.1, "confounded: irrigation", None)})


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--k", type=int, default=100_000, help="number of effects")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS))
    args = parser.parse_args()
    models = ["independent", *[m for m in args.models if m != "independent"]]
    frame = nested_effects(args.k)
    largest = frame[frame["biome"] == frame["biome"].value_counts().index[0]]
    tables = {m: synthesize(frame, "biome", model=m) for m in models}  # warm up, and check
    print(f"{len(frame):,} effects, {frame['study_id'].nunique():,} sites, "
          f"{frame['source_key'].nunique():,} sources; {len(tables['multilevel' if 'multilevel' in tables else 'independent'])} "
          f"biome groups; largest group {len(largest):,} effects; medians of {args.repeats}\n")
    table = interleaved({m: lambda m=m: synthesize(frame, "biome", model=m) for m in models},
                        args.repeats)
    fits = interleaved({m: lambda m=m: fit_group(largest, m) for m in models}, args.repeats)
    print("| model | synthesize by biome | ratio to independent | fit_group, largest group | ratio |")
    print("|---|---:|---:|---:|---:|")
    for m in models:
        print(f"| {m} | {table[m]:.3f} s | {table[m] / table['independent']:.2f} | "
              f"{fits[m] * 1000:.1f} ms | {fits[m] / fits['independent']:.2f} |")


if __name__ == "__main__":
    main()

"""Knowledge-base speed: bulk insert of synthetic studies, filtered queries and full-text search.

Run:  python benchmarks/bench_kb.py [--n 100000] [--repeats 25]

The studies are synthetic (random vocabulary values and generated summaries); they measure
the store, not the evidence. Targets: ≥ 20,000 records/s inserted; filtered query and search
under 20 ms median at 10⁵ studies.
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from pathlib import Path

from kb import KnowledgeBase
from kb.vocab import names

WORDS = ["warming", "soil", "carbon", "respiration", "microbial", "mineral", "deep", "boreal", "permafrost", "thaw", "cropland", "grassland", "forest", "moisture", "nitrogen", "root", "aggregate", "turnover", "priming"]

QUERIES = {
    "biome=boreal & mechanism=permafrost_thaw": {"biome": "boreal", "mechanism": "permafrost_thaw"},
    "ecosystem=peatland & direction=decrease & warming 2:4": {"ecosystem": "peatland", "direction": "decrease", "warming": (2, 4)},
    "depth_range 30:100 & study_type=field_experiment": {"depth_range": (30, 100), "study_type": "field_experiment", "biome": "arctic"},
    "text 'permafrost thaw' & biome=arctic": {"text": "permafrost thaw", "biome": "arctic"},
    "text 'aggregate turnover priming', first 100 (a search page)": {"text": "aggregate turnover priming", "limit": 100},
    "text 'aggregate turnover priming', all 9% of the base": {"text": "aggregate turnover priming"},
}


def synthetic_studies(n: int, seed: int = 1) -> list[dict]:
    rng = random.Random(seed)
    vocab = {v: names(v) for v in ("biomes", "ecosystems", "directions", "study_types", "mechanisms")}
    studies = []
    for i in range(n):
        top = rng.choice([0, 0, 10, 30, 60])
        studies.append({
            "id": f"syn{i}", "study_type": rng.choice(vocab["study_types"]),
            "biome": rng.choice(vocab["biomes"]), "ecosystem": rng.choice(vocab["ecosystems"]),
            "lat": rng.uniform(-60, 80), "lon": rng.uniform(-180, 180),
            "depth_top_cm": top, "depth_bottom_cm": top + rng.choice([10, 20, 40]),
            "warming_c": round(rng.uniform(0.5, 6), 1), "soc_direction": rng.choice(vocab["directions"]),
            "mechanisms": rng.sample(vocab["mechanisms"], 2),
            "summary": " ".join(rng.choices(WORDS, k=12)),
        })
    return studies


def median_ms(function, repeats: int) -> tuple[float, int]:
    times, size = [], 0
    for _ in range(repeats):
        start = time.perf_counter()
        size = len(function())
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times), size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=25)
    args = parser.parse_args()
    studies = synthetic_studies(args.n)
    with tempfile.TemporaryDirectory() as folder:
        kb = KnowledgeBase(Path(folder) / "bench.db", seed=False)
        start = time.perf_counter()
        kb.add_records({"studies": studies})
        seconds = time.perf_counter() - start
        print(f"bulk insert: {args.n} studies in {seconds:.2f} s = {args.n / seconds:,.0f} records/s "
              "(validation, mechanisms, FTS index and audit rows included)")
        print(f"| query ({args.n:,} studies) | median ms | rows |\n| --- | ---: | ---: |")
        for label, filters in QUERIES.items():
            ms, rows = median_ms(lambda f=filters: kb.studies(**f), args.repeats)
            print(f"| {label} | {ms:.1f} | {rows} |")
        kb.close()


if __name__ == "__main__":
    main()

"""Knowledge-base speed: bulk insert of studies, filtered queries, full-text search, import-bib.

Run:  python benchmarks/bench_kb.py [--part all|studies|bib] [--n 100000] [--repeats 25]
                                    [--bib-sizes 1000,4000,30000] [--previous REV]

The studies and the .bib entries are synthetic (random vocabulary values, generated
summaries, made-up names, titles and ``10.0000/synthetic.N`` DOIs): they measure the store
and the BibTeX reader, not the evidence, and are generated here, never shipped. Targets:
≥ 20,000 records/s inserted; filtered query and search under 20 ms median at 10⁵
studies; ``import_bib`` ≥ 2,000 entries/s at every size (file read, parse, validation,
insert), measured against pybtex's own ``parse_string`` of the same text in the same run
(the floor: the import parses with pybtex), after a 50-entry warm-up. ``--previous REV`` also times ``kb/bib.py``
as it was at git revision REV on the smallest size.
"""

from __future__ import annotations

import argparse
import importlib.util
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from pybtex.database import parse_string

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


SURNAMES = ["Ex{\\\"a}mpel", "Synth{\\'e}tique", "de Muster", "Probe", "Testa", "{\\O}rnek",
            "Mock", "van Beispiel", "Pr{\\'o}ba", "Sample"]
GIVEN = ["A.", "B. C.", "Dana", "E.-F.", "G{\\\"o}k", "H."]
TITLE_WORDS = ["warming", "soil", "carbon", "{CO$_2$}", "respiration", "{SOC}", "microbial",
               "deep", "thaw", "priming", "--", "{\\&}"]


def synthetic_bib(n: int, seed: int = 1) -> str:
    """``n`` made-up @article entries with the LaTeX a real .bib holds (accents, braces, math)."""
    rng = random.Random(seed)
    entries = []
    for i in range(n):
        names = " and ".join(f"{rng.choice(SURNAMES)}, {rng.choice(GIVEN)}"
                             for _ in range(rng.randint(1, 6)))
        first = rng.randint(1, 900)
        extra = f"  url = {{https://example.org/synthetic/{i}}},\n" if i % 3 == 0 else ""
        entries.append(
            f"@article{{syn{i},\n  author = {{{names}}},\n"
            f"  title = {{Synthetic entry {i}: {' '.join(rng.choices(TITLE_WORDS, k=8))}}},\n"
            f"  journal = {{Synthetic Journal {i % 50}}},\n  year = {{{rng.randint(1950, 2025)}}},\n"
            f"  volume = {{{rng.randint(1, 99)}}},\n  number = {{{rng.randint(1, 12)}}},\n"
            f"  pages = {{{first}--{first + rng.randint(1, 20)}}},\n{extra}"
            f"  doi = {{10.0000/synthetic.{i}}}\n}}\n")
    return "\n".join(entries)


def bench_studies(n: int, repeats: int) -> None:
    studies = synthetic_studies(n)
    with tempfile.TemporaryDirectory() as folder:
        kb = KnowledgeBase(Path(folder) / "bench.db", seed=False)
        start = time.perf_counter()
        kb.add_records({"studies": studies})
        seconds = time.perf_counter() - start
        print(f"bulk insert: {n} studies in {seconds:.2f} s = {n / seconds:,.0f} records/s "
              "(validation, mechanisms, FTS index and audit rows included)")
        print(f"| query ({n:,} studies) | median ms | rows |\n| --- | ---: | ---: |")
        for label, filters in QUERIES.items():
            ms, rows = median_ms(lambda f=filters: kb.studies(**f), repeats)
            print(f"| {label} | {ms:.1f} | {rows} |")
        kb.close()


def bench_import_bib(sizes: list[int], previous: str | None) -> None:
    print("| entries | pybtex parse_string s | import_bib s | import_bib entries/s "
          "| import_bib / parse_string |\n| ---: | ---: | ---: | ---: | ---: |")
    _import_once(synthetic_bib(50, seed=2))  # one-time costs (imports, plugin look-ups) out of the way
    for n in sizes:
        text = synthetic_bib(n)
        pybtex_s = _seconds(lambda t=text: parse_string(t, "bibtex"))
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "synthetic.bib"
            path.write_text(text, encoding="utf-8")
            kb = KnowledgeBase(Path(folder) / "bench.db", seed=False)
            import_s = _seconds(lambda p=path, k=kb: k.import_bib(p))
            assert kb.counts()["sources"] == n
            kb.close()
        print(f"| {n:,} | {pybtex_s:.2f} | {import_s:.2f} | {n / import_s:,.0f} | {import_s / pybtex_s:.2f} |")
    if previous:
        n = min(sizes)
        old = _module_at(previous, "kb/bib.py")
        text = synthetic_bib(n)
        now_s = _seconds(lambda: _current_parse_bib(text))
        old_s = _seconds(lambda: old.parse_bib(text, "synthetic.bib"))
        print(f"\nparse_bib on {n:,} entries: kb/bib.py at {previous} {old_s:.2f} s "
              f"({n / old_s:,.0f} entries/s), now {now_s:.2f} s ({n / now_s:,.0f} entries/s): "
              f"{old_s / now_s:.0f}x")


def _import_once(text: str) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "warm-up.bib"
        path.write_text(text, encoding="utf-8")
        with KnowledgeBase(Path(folder) / "warm-up.db", seed=False) as kb:
            kb.import_bib(path)
        parse_string(text, "bibtex")


def _current_parse_bib(text: str):
    from kb.bib import parse_bib

    return parse_bib(text, "synthetic.bib")


def _module_at(revision: str, path: str):
    """``path`` of this repository as it was at ``revision``, imported inside the kb package."""
    root = Path(__file__).resolve().parent.parent
    source = subprocess.run(["git", "show", f"{revision}:{path}"], cwd=root, check=True,
                            capture_output=True, text=True).stdout
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as handle:
        handle.write(source)
    spec = importlib.util.spec_from_file_location("kb._bib_previous", handle.name)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    Path(handle.name).unlink()
    return module


def _seconds(function) -> float:
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=["all", "studies", "bib"], default="all")
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=25)
    parser.add_argument("--bib-sizes", default="1000,4000,30000",
                        help="entries of each synthetic .bib (comma-separated)")
    parser.add_argument("--previous", metavar="REV",
                        help="also time kb/bib.py as it was at this git revision")
    args = parser.parse_args()
    if args.part in ("all", "studies"):
        bench_studies(args.n, args.repeats)
    if args.part in ("all", "bib"):
        bench_import_bib([int(n) for n in args.bib_sizes.split(",")], args.previous)


if __name__ == "__main__":
    main()

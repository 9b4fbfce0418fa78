"""Time the synthesis report of the full annual soil respiration synthesis on the shipped base,
as a ratio to the synthesis table alone (what ``soc-kb synth`` does), and where its time goes.

Usage (from the repository root)::

    python benchmarks/bench_report.py [--repeats 3] [--by biome]

The shipped base (a fresh copy, seeded like ``soc-kb init``) holds every annual soil
respiration effect soc-kb has (SRDB-V5 warming contrasts and the literature). Each repeat
times, in turn: the table (rows, ``synthesize``, Markdown with its footnotes); the report's
parts (rows, ``synthesize``, the sensitivity scenarios, the forest and funnel figures as SVG,
the formatted references); the whole report as HTML and as PDF (``build_report`` and the
file bytes, as ``soc-kb report`` does). Medians over the repeats; each line's ratio is to
the table's median in the same run. A benchmark, not a test.
"""

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from evidence.synthesis import synthesize  # noqa: E402
from kb import KnowledgeBase, figures  # noqa: E402
from kb.claims.graph import synthesis_rows  # noqa: E402
from kb.claims.notes import export_notes, table_layout  # noqa: E402
from kb.claims.report import build_report  # noqa: E402
from kb.claims.sensitivity import sensitivity_table  # noqa: E402
from kb.render import render_table  # noqa: E402

RESPONSE = "soil_respiration"


def timed(call) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def tasks(kb, by):
    def table():
        rows = synthesis_rows(kb, response=RESPONSE)
        result = synthesize(rows, by)
        notes = export_notes(rows, result, by, "multilevel", "REML", None)
        render_table(result, "markdown", **table_layout(result, notes=notes))

    rows = synthesis_rows(kb, response=RESPONSE)
    sources = sorted(set(rows["source_key"].dropna()))
    return {
        "synthesis table (soc-kb synth)": table,
        "  report part: rows": lambda: synthesis_rows(kb, response=RESPONSE),
        "  report part: synthesize": lambda: synthesize(rows, by),
        "  report part: sensitivity (6 scenarios)": lambda: sensitivity_table(kb, RESPONSE, by),
        "  report part: forest + funnel as SVG": lambda: [
            figures.figure_bytes(figures.forest_figure(rows, by=by[0] if len(by) == 1 else None), "svg"),
            figures.figure_bytes(figures.funnel_figure(rows), "svg")],
        "  report part: references (pybtex)": lambda: [kb.citation(k) for k in sources],
        "report as HTML (soc-kb report)": lambda: build_report(kb, RESPONSE, by).to_html(),
        "report as PDF (soc-kb report)": lambda: build_report(kb, RESPONSE, by).to_pdf(),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--by", default="biome")
    args = parser.parse_args()
    by = args.by.split(",")
    with tempfile.TemporaryDirectory() as folder, KnowledgeBase(Path(folder) / "kb.db") as kb:
        rows = synthesis_rows(kb, response=RESPONSE)
        made = build_report(kb, RESPONSE, by)  # also warms imports and caches for every task
        poolable = rows[rows["yi"].notna() & (rows["vi"].astype(float) > 0)]
        print(f"{RESPONSE} by {args.by}: {len(rows)} rows, {len(poolable)} pooled effects, "
              f"{poolable['study_id'].nunique()} sites, {len(made.references)} references, "
              f"{len(made.table)} groups; HTML {len(made.to_html()) / 1e3:.0f} kB, PDF "
              f"{len(made.to_pdf()) / 1e3:.0f} kB")
        calls = tasks(kb, by)
        times = {name: [] for name in calls}
        for _ in range(args.repeats):  # interleaved: load on the machine hits every task alike
            for name, call in calls.items():
                times[name].append(timed(call))
    base = statistics.median(times["synthesis table (soc-kb synth)"])
    print("\n| task | median (s) | / table |\n|---|---:|---:|")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"| {name.strip()} | {median:.2f} | {median / base:.1f} |")


if __name__ == "__main__":
    main()

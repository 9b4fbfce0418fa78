"""Time synthesis tables over 10^5 effects and the claim–evidence graph over 10^4 studies.

Usage (from the repository root)::

    /work/venv/bin/python benchmarks/bench_synthesis.py [--repeats 3] [--metafor-k 10000]

* ``synthesize`` (REML, z test) on seeded synthetic effects: by biome (8 groups), by
  biome x mechanism (8 x 6, mechanisms a list column of 1-2 per study) and by warming bin;
  the same per-group fits in metafor (``rma`` in a loop over ``split``) on ``--metafor-k``
  effects, through a temporary CSV, only the fits timed (``system.time``). Metafor's
  ``rma.uni`` is k^2 in memory, so it cannot run the 10^5 table itself (see
  bench_evidence.py); 0 skips it.
* ``add_and_report`` (what ``soc-kb add`` runs: add, then the claims moved) against the
  ``add_records`` it wraps, on a copy of the shipped base, 1 and 2,000 new studies.
* ``build_graph`` on a synthetic store of 10^4 studies, 10^3 claims and 3 x 10^4 links
  (the store is an in-memory stand-in returning DataFrames, so only the graph build is
  timed), plus GraphML and node-link JSON export and ``contested_claims``.

Medians of ``--repeats`` runs with time.perf_counter. A benchmark, not a test.
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
from evidence.synthesis import synthesize  # noqa: E402
from kb.claims import graph  # noqa: E402

BIOMES = ["arctic", "boreal", "temperate", "subtropical", "tropical", "mediterranean", "alpine", "arid"]
MECHANISMS = ["microbial_decomposition", "priming", "mineral_protection", "plant_inputs",
              "permafrost_thaw", "soil_moisture"]
KINDS = ["experimental", "observational", "model", "synthesis"]

R_SCRIPT = """
suppressMessages(library(metafor))
d <- read.csv("{csv}")
t <- system.time(for (g in split(d, d$biome)) rma(g$yi, g$vi, method = "REML"))[["elapsed"]]
cat("ELAPSED", t, "\\n")
"""


def effects(k, seed=20261124):
    rng = np.random.default_rng(seed)
    n_studies = k // 4
    study = rng.integers(0, n_studies, k)
    vi = rng.uniform(0.005, 0.1, k)
    biome = np.array(BIOMES)[study % len(BIOMES)]
    mechanisms = [list(rng.choice(MECHANISMS, 1 + s % 2, replace=False)) for s in range(n_studies)]
    return pd.DataFrame({
        "study_id": [f"s{s}" for s in study], "biome": biome,
        "mechanisms": [mechanisms[s] for s in study], "warming_c": rng.uniform(0, 6, k)[study],
        "evidence_kind": np.array(KINDS)[study % len(KINDS)],
        "yi": rng.normal(-0.05, np.sqrt(vi + 0.02)), "vi": vi, "measure": "ROM"})


def median_time(fn, repeats):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def metafor_time(frame, timeout=600):
    with tempfile.TemporaryDirectory() as tmp:
        csv = Path(tmp) / "d.csv"
        frame[["biome", "yi", "vi"]].to_csv(csv, index=False)
        script = Path(tmp) / "run.R"
        script.write_text(R_SCRIPT.format(csv=csv))
        try:
            out = subprocess.run(["Rscript", str(script)], capture_output=True, text=True,
                                 timeout=timeout).stdout
        except (FileNotFoundError, subprocess.TimeoutExpired) as exc:
            print(f"metafor not run ({type(exc).__name__})", file=sys.stderr)
            return None
    line = next((x for x in out.splitlines() if x.startswith("ELAPSED")), None)
    return float(line.split()[1]) if line else None


class SyntheticStore:
    """Just the reads build_graph makes, over synthetic frames."""

    def __init__(self, n_studies, n_claims, n_links, seed=7):
        rng = np.random.default_rng(seed)
        ids = [f"st{i}" for i in range(n_studies)]
        self._sources = pd.DataFrame({"key": ids, "first_author": "Doe", "year": 2000 + rng.integers(0, 25, n_studies),
                                      "title": "t", "doi": None})
        self._studies = pd.DataFrame({
            "id": ids, "source_key": ids, "study_type": rng.choice(["field_experiment", "model", "observational"], n_studies),
            "biome": rng.choice(BIOMES, n_studies), "ecosystem": "forest", "depth_class": "topsoil",
            "warming_c": rng.uniform(0, 6, n_studies), "soc_direction": "decrease",
            "first_author": "Doe", "year": 2020,
            "mechanisms": [list(rng.choice(MECHANISMS, 2, replace=False)) for _ in ids]})
        self._claims = pd.DataFrame({"id": [f"c{i}" for i in range(n_claims)], "text": "a claim",
                                     "section": "1", "scope_biome": None})
        study_links = pd.DataFrame({"id": range(n_links), "claim_id": rng.choice(self._claims["id"], n_links),
                                    "study_id": rng.choice(ids, n_links), "other_claim_id": None,
                                    "relation": rng.choice(["supports", "supports", "contradicts", "qualifies"], n_links)})
        self._links = study_links.drop_duplicates(["claim_id", "study_id", "relation"])

    def sources(self):
        return self._sources

    def studies(self):
        return self._studies

    def claims(self):
        return self._claims

    def links(self):
        return self._links

    def vocabulary(self, name):
        return pd.DataFrame({"name": ["field_experiment", "model", "observational"],
                             "evidence_kind": ["experimental", "model", "observational"]})


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--metafor-k", type=int, default=10_000)
    args = parser.parse_args()
    print("| task | size | groups | evidence (median) | metafor |\n|---|---:|---:|---:|---:|")
    frame = effects(100_000)
    for by in (["biome"], ["biome", "mechanism"], ["warming_bin"]):
        table = synthesize(frame, by)
        t = median_time(lambda b=by: synthesize(frame, b), args.repeats)
        print(f"| synthesize by {' x '.join(by)} | 100,000 effects | {len(table)} | {t:.2f} s | |")
    if args.metafor_k:
        small = effects(args.metafor_k)
        t = median_time(lambda: synthesize(small, ["biome"]), args.repeats)
        r = metafor_time(small)
        shown = "not run" if r is None else f"{r:.2f} s (rma per group only); evidence/metafor = {t / r:.2f}"
        print(f"| synthesize by biome | {args.metafor_k:,} effects | 8 | {t:.2f} s | {shown} |")
    store = SyntheticStore(10_000, 1_000, 30_000)
    G = graph.build_graph(store)
    t = median_time(lambda: graph.build_graph(store), args.repeats)
    print(f"| build_graph | 10,000 studies, {len(store.links()):,} links | | {t:.2f} s "
          f"({G.number_of_nodes():,} nodes, {G.number_of_edges():,} edges) | |")
    with tempfile.TemporaryDirectory() as tmp:
        for name, fn in (("write_graphml", graph.write_graphml), ("write_node_link", graph.write_node_link)):
            t = median_time(lambda f=fn: f(G, Path(tmp) / "g"), args.repeats)
            print(f"| {name} | same graph | | {t:.2f} s | |")
    t = median_time(lambda: graph.contested_claims(G), 1)
    print(f"| contested_claims | 1,000 claims | | {t:.2f} s | |")
    bench_add(args.repeats)


def new_studies(n, tag):
    """Made-up benchmark records (not data): n studies, each contradicting one shipped claim."""
    keys = [f"bench{tag}{i}" for i in range(n)]
    return {"sources": [{"key": k, "entry_type": "misc", "title": "benchmark record", "year": 2026}
                        for k in keys],
            "studies": [{"id": k, "source_key": k, "study_type": "field_experiment",
                         "soc_direction": "increase"} for k in keys],
            "claim_links": [{"claim_id": "c3.1-persistent-warming-net-loss", "study_id": k,
                             "relation": "contradicts"} for k in keys]}


def bench_add(repeats):
    """`soc-kb add` now reports the claims it moves (kb.claims.graph.add_and_report): its cost
    against the plain add_records it wraps, on a copy of the shipped base, same run."""
    from kb import KnowledgeBase

    with tempfile.TemporaryDirectory() as tmp:
        seeded = Path(tmp) / "seed.db"
        KnowledgeBase(seeded).close()
        for n in (1, 2000):
            times = {}
            for name in ("add_records", "add_and_report"):
                runs = []
                for r in range(repeats):
                    path = Path(tmp) / f"{name}{n}{r}.db"
                    path.write_bytes(seeded.read_bytes())
                    with KnowledgeBase(path) as kb:
                        records = new_studies(n, r)
                        start = time.perf_counter()
                        kb.add_records(records) if name == "add_records" else graph.add_and_report(kb, records)
                        runs.append(time.perf_counter() - start)
                times[name] = statistics.median(runs)
            what = f"{n:,} stud{'y' if n == 1 else 'ies'}"
            print(f"| add {what} linked to a claim, shipped base | {what} | | "
                  f"{times['add_and_report']:.2f} s with claim report | {times['add_records']:.2f} s plain; "
                  f"ratio {times['add_and_report'] / times['add_records']:.1f} |")


if __name__ == "__main__":
    main()

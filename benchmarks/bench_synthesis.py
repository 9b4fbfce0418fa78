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
* The claim graph on synthetic stores of 100, 1,000 and 10,000 claims (``--claims``), with
  10 studies and about 30 study links per claim and a counter-claim for one claim in ten
  (the store is an in-memory stand-in returning DataFrames, so only the graph is timed):
  ``build_graph``, ``contested_claims``, ``weak_claims``, ``top_studies`` and
  ``claim_states`` (to ``--states-max`` claims: grading costs ~10 ms a claim), each against
  the same function of ``kb/claims/graph.py`` at commit ``REFERENCE`` (before the
  all-claims walk), loaded from git in the same run, and their results compared. Then
  GraphML and node-link JSON export of the 1,000-claim graph.

Medians of ``--repeats`` runs with time.perf_counter (one run for the graph questions above
100 claims). A benchmark, not a test.
"""

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
import types
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from evidence.synthesis import synthesize  # noqa: E402
from kb.claims import graph  # noqa: E402

BIOMES = ["arctic", "boreal", "temperate", "subtropical", "tropical", "mediterranean", "alpine", "arid"]
MECHANISMS = ["microbial_decomposition", "priming", "mineral_protection", "plant_inputs",
              "permafrost_thaw", "soil_moisture"]
KINDS = ["experimental", "observational", "model", "synthesis"]

#: kb/claims/graph.py before the all-claims walk: one claim_evidence frame per claim
REFERENCE = "f790afa978ece26f5c6dfe26b16ff14be254a9e2"
GRAPH_QUESTIONS = ("contested_claims", "weak_claims", "top_studies", "claim_states")

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

    def __init__(self, n_studies, n_claims, n_links, n_counter=0, seed=7):
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
        claim_links = pd.DataFrame({"id": range(n_links, n_links + n_counter), "study_id": None,
                                    "claim_id": rng.choice(self._claims["id"], n_counter),
                                    "other_claim_id": rng.choice(self._claims["id"], n_counter),
                                    "relation": "contradicts"})
        links = pd.concat([study_links, claim_links], ignore_index=True)
        self._links = links.drop_duplicates(["claim_id", "study_id", "other_claim_id", "relation"])

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
    parser.add_argument("--claims", type=int, nargs="+", default=[100, 1_000, 10_000])
    parser.add_argument("--states-max", type=int, default=1_000,
                        help="largest graph to time claim_states on (grading ~10 ms a claim)")
    parser.add_argument("--skip-synthesize", action="store_true", help="time only the claim graph")
    args = parser.parse_args()
    print("| task | size | groups | evidence (median) | metafor |\n|---|---:|---:|---:|---:|")
    frame = effects(100_000)
    for by in [] if args.skip_synthesize else (["biome"], ["biome", "mechanism"], ["warming_bin"]):
        table = synthesize(frame, by)
        t = median_time(lambda b=by: synthesize(frame, b), args.repeats)
        print(f"| synthesize by {' x '.join(by)} | 100,000 effects | {len(table)} | {t:.2f} s | |")
    if args.metafor_k and not args.skip_synthesize:
        small = effects(args.metafor_k)
        t = median_time(lambda: synthesize(small, ["biome"]), args.repeats)
        r = metafor_time(small)
        shown = "not run" if r is None else f"{r:.2f} s (rma per group only); evidence/metafor = {t / r:.2f}"
        print(f"| synthesize by biome | {args.metafor_k:,} effects | 8 | {t:.2f} s | {shown} |")
    old = reference_graph()
    bench_graph(old, args.claims, args.states_max, args.repeats)
    store = SyntheticStore(10_000, 1_000, 30_000, 100)
    G = graph.build_graph(store)
    with tempfile.TemporaryDirectory() as tmp:
        for name, fn in (("write_graphml", graph.write_graphml), ("write_node_link", graph.write_node_link)):
            t = median_time(lambda f=fn: f(G, Path(tmp) / "g"), args.repeats)
            print(f"| {name} | 1,000 claims ({G.number_of_edges():,} edges) | | {t:.2f} s | |")
    print("\n| task | size | | with claim report (median) | plain |\n|---|---|---|---:|---|")
    bench_add(args.repeats, old)


def reference_graph():
    """kb/claims/graph.py at REFERENCE as a module (None without git or the commit)."""
    try:
        source = subprocess.run(["git", "-C", str(ROOT), "show", f"{REFERENCE}:kb/claims/graph.py"],
                                capture_output=True, text=True, check=True).stdout
    except (FileNotFoundError, subprocess.CalledProcessError) as exc:
        print(f"reference graph module not loaded ({type(exc).__name__})", file=sys.stderr)
        return None
    module = types.ModuleType("kb.claims._graph_reference")
    module.__package__ = "kb.claims"  # its relative imports resolve against today's kb
    sys.modules[module.__name__] = module  # dataclasses look their module up there
    exec(compile(source, f"{REFERENCE[:7]}:kb/claims/graph.py", "exec"), module.__dict__)
    return module


def timed(fn, runs):
    """(median seconds, result of the last run)."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def same_frame(a, b):
    try:
        pd.testing.assert_frame_equal(a, b)
    except AssertionError:
        return "no"
    return "yes"


def bench_graph(old, sizes, states_max, repeats):
    """The whole-graph questions now and at REFERENCE (``old``), same graph, same run."""
    warm = graph.build_graph(SyntheticStore(50, 5, 150))  # grading imports scipy.stats once
    for module in (graph, old or graph):
        module.claim_states(warm)
    print("\n| question | claims | studies, links | reference (median) | now (median) | "
          "reference / now | same result |\n|---|---:|---|---:|---:|---:|---|")
    for n in sizes:
        store = SyntheticStore(10 * n, n, 30 * n, n // 10)
        runs = repeats if n <= 100 else 1
        size = f"{10 * n:,}, {len(store.links()):,}"
        t, G = timed(lambda s=store: graph.build_graph(s), runs)
        print(f"| build_graph (unchanged) | {n:,} | {size} | | {t:.2f} s | | |")
        for name in GRAPH_QUESTIONS:
            if name == "claim_states" and n > states_max:
                continue
            question = getattr(graph, name)
            now, result = timed(lambda f=question, g=G: f(g), runs)
            if old is None:
                print(f"| {name} | {n:,} | {size} | not run | {now:.3f} s | | |")
                continue
            reference = getattr(old, name)
            before, expected = timed(lambda f=reference, g=G: f(g), runs)
            print(f"| {name} | {n:,} | {size} | {before:.3f} s | {now:.3f} s | "
                  f"{before / now:.1f} | {same_frame(expected, result)} |")


def new_studies(n, tag):
    """Made-up benchmark records (not data): n studies, each contradicting one shipped claim."""
    keys = [f"bench{tag}{i}" for i in range(n)]
    return {"sources": [{"key": k, "entry_type": "misc", "title": "benchmark record", "year": 2026}
                        for k in keys],
            "studies": [{"id": k, "source_key": k, "study_type": "field_experiment",
                         "soc_direction": "increase"} for k in keys],
            "claim_links": [{"claim_id": "c3.1-persistent-warming-net-loss", "study_id": k,
                             "relation": "contradicts"} for k in keys]}


def bench_add(repeats, old=None):
    """`soc-kb add` now reports the claims it moves (kb.claims.graph.add_and_report): its cost
    against the plain add_records it wraps, and against add_and_report at REFERENCE when
    ``old`` is given, on a copy of the shipped base, same run."""
    from kb import KnowledgeBase

    adders = {"add_records": lambda kb, records: kb.add_records(records),
              "add_and_report": graph.add_and_report}
    if old is not None:
        adders["reference"] = old.add_and_report
    with tempfile.TemporaryDirectory() as tmp:
        seeded = Path(tmp) / "seed.db"
        KnowledgeBase(seeded).close()
        for n in (1, 2000):
            times = {}
            for name, add in adders.items():
                runs = []
                for r in range(repeats):
                    path = Path(tmp) / f"{name}{n}{r}.db"
                    path.write_bytes(seeded.read_bytes())
                    with KnowledgeBase(path) as kb:
                        records = new_studies(n, r)
                        start = time.perf_counter()
                        add(kb, records)
                        runs.append(time.perf_counter() - start)
                times[name] = statistics.median(runs)
            what = f"{n:,} stud{'y' if n == 1 else 'ies'}"
            reference = (f"; add_and_report at {REFERENCE[:7]} {times['reference']:.2f} s"
                         if "reference" in times else "")
            print(f"| add {what} linked to a claim, shipped base | {what} | | "
                  f"{times['add_and_report']:.2f} s with claim report | {times['add_records']:.2f} s plain; "
                  f"ratio {times['add_and_report'] / times['add_records']:.1f}{reference} |")

if __name__ == "__main__":
    main()

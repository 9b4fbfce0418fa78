"""Explorer speed: time to first render of the Explore page with 10⁵ studies (target < 3 s).

Run:  python benchmarks/bench_app.py [--n 100000] [--repeats 3] [--db PATH]

Builds a synthetic knowledge base once (``bench_kb.synthetic_studies`` plus one SOC-stock
lnRR per study, so the pooled effect has 10⁵ rows to pool), then renders ``app.py`` headless
with ``streamlit.testing.v1.AppTest``:

* **first run in the process**: imports (pandas, altair, pyarrow, scipy) plus an empty cache;
* **cold cache**: ``st.cache_data`` cleared, so every read goes to SQLite again;
* **warm cache**: the same script run again (what a filter change that hits the cache costs).

AppTest runs the script and builds every element (table, chart specs) but does not draw them
in a browser; browser drawing is not part of this number.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_kb import synthetic_studies  # noqa: E402

APP = str(Path(__file__).resolve().parents[1] / "app.py")


def synthetic_effects(studies: list[dict], seed: int = 2) -> list[dict]:
    """One SOC-stock lnRR per study from made-up means, SDs and n (synthetic)."""
    rng = random.Random(seed)
    effects = []
    for study in studies:
        mean_c = rng.uniform(3000, 9000)
        effects.append({"study_id": study["id"], "response": "soc_stock", "measure": "ROM",
                        "mean_t": round(mean_c * rng.uniform(0.8, 1.05), 1),
                        "sd_t": round(mean_c * 0.12, 1), "n_t": rng.randint(3, 8),
                        "mean_c": round(mean_c, 1), "sd_c": round(mean_c * 0.1, 1),
                        "n_c": rng.randint(3, 8), "units": "g C m-2", "source_location": "synthetic"})
    return effects


def build(path: Path, n: int) -> float:
    from kb import KnowledgeBase

    start = time.perf_counter()
    studies = synthetic_studies(n)
    with KnowledgeBase(path, seed=False) as kb:
        kb.add_records({"studies": studies, "effects": synthetic_effects(studies)})
    return time.perf_counter() - start


def render() -> tuple[float, object]:
    from streamlit.testing.v1 import AppTest

    start = time.perf_counter()
    at = AppTest.from_file(APP, default_timeout=600).run()
    seconds = time.perf_counter() - start
    if at.exception:
        raise RuntimeError(at.exception[0].value)
    return seconds, at


def import_seconds() -> float:
    """What the page's own imports (pandas, scipy, altair, pybtex ...) cost in a fresh interpreter
    that has streamlit loaded, as the bench process has: a fixed cost, not the data's."""
    code = ("import time, streamlit.testing.v1; t = time.perf_counter(); "
            "import evidence, kb.explorer, kb.explorer.charts; print(time.perf_counter() - t)")
    return float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                check=True).stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--db", type=Path, help="reuse (or build once into) this database")
    args = parser.parse_args()
    path = args.db or Path(f"/tmp/soc-kb-bench-app-{args.n}.db")
    if not path.exists():
        print(f"built {args.n:,} studies + {args.n:,} effects in {build(path, args.n):.1f} s ({path})")
    os.environ["SOC_KB_DB"] = str(path)

    import streamlit as st

    imports = statistics.median(import_seconds() for _ in range(args.repeats))
    first, at = render()
    values = {m.label: m.value for m in at.metric}
    cold, warm = [], []
    for _ in range(args.repeats):
        st.cache_data.clear()
        cold.append(render()[0])
        warm.append(render()[0])
    print(f"Explore, {values.get('Studies')} studies, k = {values.get('Effects pooled (k)')} "
          f"(pooled lnRR {values.get('Pooled lnRR')}):")
    print("| render of Explore | seconds | target |\n| --- | ---: | ---: |")
    print(f"| first run in a new process (imports + cold cache) | {first:.2f} | < 3 |")
    print(f"| of which imports (median of {args.repeats} fresh interpreters) | {imports:.2f} | |")
    print(f"| cold cache (median of {args.repeats}) | {statistics.median(cold):.2f} | < 3 |")
    print(f"| warm cache (median of {args.repeats}) | {statistics.median(warm):.2f} | |")


if __name__ == "__main__":
    main()

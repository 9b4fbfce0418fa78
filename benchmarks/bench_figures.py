"""Time a forest plot of 1,000 effects rendered to SVG, against metafor's forest() in the same run.

Usage (from the repository root)::

    python benchmarks/bench_figures.py [--k 1000] [--repeats 5] [--no-r]

Seeded synthetic effects nested as the store nests them (sources of 1-4 sites of 1-8
effects; made-up labels "Author<i> <year> — Site <j>", a quarter on an assumed variance):
they measure the drawing, not the evidence. Timed, interleaved within each repeat so that
load on the machine hits them alike, each from the effect rows to the SVG bytes (the
multilevel fit included):

* ``forest, one row per effect``: ``forest_figure(rows, per_site=False)`` + ``figure_bytes(fig, "svg")``
* ``forest, one row per site``: the same with ``per_site=True`` (the automatic choice above
  40 effects), which adds the per-site aggregation and draws far fewer rows
* ``forest panel only``: ``forest_panel`` (fit, rows, labels and text, no drawing)

The peer is R's metafor: ``forest(rma.mv(yi, vi, random = ~ 1 | source/site))`` drawn on
R's ``svg()`` device (cairo) with one row per effect, timed inside one R session (start-up
excluded; at most 3 repeats: one takes about a minute), its median reported beside ours
and as the ratio ours / metafor's, and split into the fit and the drawing.

A benchmark, not a test.
"""

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from _shared import ASSUMED, interleaved, nested_design  # noqa: E402

from kb import figures  # noqa: E402

R_SCRIPT = r"""
suppressMessages(library(metafor))
args <- commandArgs(trailingOnly = TRUE)
d <- read.csv(args[1]); repeats <- as.integer(args[2]); out <- args[3]
fits <- draws <- numeric(repeats)
for (i in seq_len(repeats)) {
  t0 <- proc.time()[["elapsed"]]
  fit <- rma.mv(yi, vi, random = ~ 1 | source/site, data = d, slab = label)
  t1 <- proc.time()[["elapsed"]]
  svg(out, width = 10, height = 2 + 0.2 * nrow(d))
  forest(fit, header = TRUE, showweights = TRUE)
  invisible(dev.off())
  fits[i] <- t1 - t0
  draws[i] <- proc.time()[["elapsed"]] - t1
}
cat(sprintf('{"median": %.4f, "fit": %.4f, "draw": %.4f, "version": "%s", "bytes": %d}',
            median(fits + draws), median(fits), median(draws),
            as.character(packageVersion("metafor")), file.size(out)))
"""


def nested_effects(k, seed=20261130):
    """About ``k`` effects in sites in sources, with the columns a forest plot labels from."""
    d = nested_design(k, seed)
    site, source, rng = d["site"], d["source"], d["rng"]
    return pd.DataFrame({
        "id": [f"e{i}" for i in range(len(site))],
        "study_id": [f"s{s}" for s in site], "source_key": [f"p{s}" for s in source],
        "first_author": [f"Author{s}" for s in source], "year": 1990 + source % 35,
        "site": [f"Site {s}" for s in site], "yi": d["yi"], "vi": d["vi"], "measure": "ROM",
        "variance_note": np.where(rng.random(len(site)) < 0.25, ASSUMED, None)})


def metafor_median(rows: pd.DataFrame, repeats: int) -> dict | None:
    with tempfile.TemporaryDirectory() as folder:
        data = Path(folder) / "effects.csv"
        rows.assign(source=rows["source_key"], site=rows["study_id"],
                    label=[figures.study_label(r) for r in rows.to_dict("records")]
                    )[["yi", "vi", "source", "site", "label"]].to_csv(data, index=False)
        script = Path(folder) / "forest.R"
        script.write_text(R_SCRIPT, encoding="utf-8")
        try:
            done = subprocess.run(["Rscript", str(script), str(data), str(repeats),
                                   str(Path(folder) / "forest.svg")],
                                  capture_output=True, text=True, check=True, timeout=1800)
        except (OSError, subprocess.SubprocessError) as exc:
            print(f"metafor not timed: {exc}", file=sys.stderr)
            return None
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--k", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--no-r", action="store_true", help="skip the metafor peer")
    args = parser.parse_args()
    rows = nested_effects(args.k)
    sizes = {}

    def svg(per_site):
        def call():
            sizes[per_site] = len(figures.figure_bytes(
                figures.forest_figure(rows, per_site=per_site), "svg"))
        return call

    calls = {"forest, one row per effect": svg(False), "forest, one row per site": svg(True),
             "forest panel only (per effect)": lambda: figures.forest_panel(rows, per_site=False)}
    svg(True)()  # warm-up: imports, font cache
    medians = interleaved(calls, args.repeats)
    peer = None if args.no_r else metafor_median(rows, min(args.repeats, 3))
    n_sites = rows["study_id"].nunique()
    print(f"{len(rows):,} effects, {n_sites:,} sites, {rows['source_key'].nunique():,} sources; "
          f"median of {args.repeats} repeats\n")
    print("| case | rows drawn | median s | SVG KB | / metafor |")
    print("| --- | ---: | ---: | ---: | ---: |")
    drawn = {"forest, one row per effect": len(rows), "forest, one row per site": n_sites,
             "forest panel only (per effect)": len(rows)}
    kb_size = {"forest, one row per effect": sizes[False], "forest, one row per site": sizes[True]}
    for name, seconds in medians.items():
        ratio = f"{seconds / peer['median']:.2f}" if peer else ""
        size = f"{kb_size[name] / 1024:,.0f}" if name in kb_size else ""
        print(f"| {name} | {drawn[name]:,} | {seconds:.3f} | {size} | {ratio} |")
    if peer:
        print(f"| metafor {peer['version']}: rma.mv + forest() on svg() | {len(rows):,} | "
              f"{peer['median']:.3f} | {peer['bytes'] / 1024:,.0f} | 1.00 |")
        print(f"| of which rma.mv / forest() on svg() | | {peer['fit']:.3f} / {peer['draw']:.3f} "
              "| | |")
        ours = medians["forest, one row per effect"] - medians["forest panel only (per effect)"]
        print(f"\nDrawing alone, one row per effect (ours: total − panel): {ours:.3f} s against "
              f"metafor's forest() {peer['draw']:.3f} s = {ours / peer['draw']:.2f}×")


if __name__ == "__main__":
    main()

"""Write the rows of a few synthesis groups of the shipped base to synthesis_groups.csv, the
input of make_metafor_synthesis.R (run from the repository root):

    python tests/golden/export_synthesis_groups.py
    Rscript tests/golden/make_metafor_synthesis.R

The rows are those ``evidence.synthesis.synthesize`` pools for ``soil_respiration``: the
effects of ``kb.claims.graph.synthesis_rows`` with a finite yi and vi > 0. ``site`` is the
``study_id``; ``source`` is the ``source_key``, or the site itself when it has none (as
``synthesize`` reads them). Values are written with repr(), so R reads the same doubles.
"""

import csv
import sys
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))

from kb import KnowledgeBase  # noqa: E402
from kb.claims.graph import synthesis_rows  # noqa: E402

RESPONSE = "soil_respiration"
#: (facet, value): groups with several sources, one source, and sites without a source_key
GROUPS = [("ecosystem", "cropland"), ("ecosystem", "forest"), ("ecosystem", "grassland"),
          ("ecosystem", "shrubland"), ("biome", "temperate"), ("biome", "mediterranean")]


def group_rows(kb, facet, value):
    """The poolable rows of one group, as (yi, vi, source, site) tuples in table order."""
    rows = synthesis_rows(kb, response=RESPONSE)
    yi, vi = rows["yi"].astype(float), rows["vi"].astype(float)
    mine = rows[(rows[facet] == value) & np.isfinite(yi) & np.isfinite(vi) & (vi > 0)]
    source = mine["source_key"].where(mine["source_key"].notna(), mine["study_id"])
    return list(zip(mine["yi"].astype(float), mine["vi"].astype(float), source, mine["study_id"],
                    strict=True))


def main():
    target = HERE / "synthesis_groups.csv"
    with (tempfile.TemporaryDirectory() as folder, KnowledgeBase(Path(folder) / "kb.db") as kb,
          target.open("w", newline="", encoding="utf-8") as fh):
        out = csv.writer(fh)
        out.writerow(["facet", "value", "yi", "vi", "source", "site"])
        for facet, value in GROUPS:
            for yi, vi, source, site in group_rows(kb, facet, value):
                out.writerow([facet, value, repr(yi), repr(vi), source, site])


if __name__ == "__main__":
    main()

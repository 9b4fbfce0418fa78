"""What a synthesis table rests on, as sentences to print under it: the model and how it
handles dependence, what a single-site row is, and the variance assumptions of its effects.
The CLI and the explorer's Synthesis page show the same lines."""

from __future__ import annotations

import pandas as pd

from evidence.synthesis import SINGLE_SITE, variance_notes

MODEL_HELP = {
    "multilevel": "per group rma.mv(yi, vi, random = ~ 1 | source/site/effect): effects nested "
                  "in sites (study records) nested in sources (papers, SRDB studies); tau2 = "
                  "sigma2_source + sigma2_site + sigma2_effect; i2 = tau2 / (tau2 + typical "
                  "sampling variance) (Cheung 2014)",
    "independent": "per group rma(yi, vi): every effect counted as independent, also effects "
                   "of one site",
    "robust": "per group rma(yi, vi) as working model, SE cluster-robust by source (CR2, "
              "clubSandwich) with a t test on Satterthwaite df (in notes); a group with one "
              "source gets no estimate",
}


def synthesis_notes(rows: pd.DataFrame, table: pd.DataFrame, facets: list[str], model: str,
                    method: str, test: str | None) -> list[str]:
    """Every note line for a synthesis ``table`` made from ``rows``."""
    return model_lines(table, model, method, test) + variance_lines(variance_notes(rows, facets))


def model_lines(table: pd.DataFrame, model: str, method: str, test: str | None) -> list[str]:
    """The model, estimator and dependence handling behind the numbers, as note lines."""
    test = test or ("t" if model == "robust" else "z")
    lines = [f"Model: {model}, {method}, {test} test, 95 % CI — {MODEL_HELP[model]}."]
    pooled = table[table["k_effects"] > table["n_sites"]]
    if model == "independent" and len(pooled):
        lines.append(f"Dependence ignored: in {len(pooled)} group(s) {int(pooled['k_effects'].sum())} "
                     f"effects come from {int(pooled['n_sites'].sum())} sites and are pooled as if "
                     "independent, so their CIs are too narrow; the multilevel model accounts for it.")
    if (table["model"] == SINGLE_SITE).any():
        lines.append("A 'single site' row is that site's own estimate (its effects pooled within "
                     "the site), not a pooled multi-site result; its certainty is at most Low.")
    lines.append("Certainty: GRADE for this field (docs/synthesis.md); certainty_reasons says "
                 "why, notes what each row rests on.")
    return lines


def variance_lines(notes: pd.DataFrame) -> list[str]:
    """Variance assumptions under the numbers: one line per note, with its groups."""
    facets = [c for c in notes.columns if c not in ("variance_note", "pooled", "k", "assumed")]
    lines = []
    for (pooled, assumed, note), rows in notes.groupby(["pooled", "assumed", "variance_note"],
                                                        sort=False):
        groups = ", ".join(f"{' · '.join(str(r[f]) for f in facets)} {r['k']}"
                           for r in rows.to_dict(orient="records"))
        k = int(rows["k"].sum())
        what = f"{k} effect{'s' if k > 1 else ''} " + (
            "pooled with an assumed variance" if assumed else "pooled, variance from data"
            if pooled else "not pooled, votes only")
        lines.append(f"Note: {what} — {groups}: {note}")
    return lines


def notes_block(lines: list[str], fmt: str) -> str:
    """Note lines as they follow a table in ``fmt`` (comments in LaTeX, paragraphs in HTML)."""
    if fmt == "latex":
        return "".join(f"% {line}\n" for line in lines)
    if fmt == "html":
        from html import escape

        return "".join(f"<p>{escape(line)}</p>\n" for line in lines)
    bullet = "- " if fmt == "markdown" else ""  # a list, so Markdown keeps one note per line
    return "\n" + "".join(f"{bullet}{line}\n" for line in lines)

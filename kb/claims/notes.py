"""What a synthesis table rests on, as sentences to print under it: the model and how it
handles dependence, what a single-site row is, and the variance assumptions of its effects.
The CLI and the explorer's Synthesis page show the same lines.

Also how a synthesis table reads in a paper (:func:`table_layout`): its headers with units,
the decimals of each kind of column, its p-values, the vocabulary labels of its groups, its
caption and footnotes, as the options of :func:`kb.render.render_table`.
"""

from __future__ import annotations

import pandas as pd

from evidence.synthesis import MISSING, SINGLE_SITE, variance_notes

from ..render import notes_text
from ..vocab import FACET_VOCABULARY

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
    """Note lines as they follow a table in ``fmt`` (:func:`kb.render.notes_text`)."""
    return notes_text(lines, fmt)


# -- the table as it reads in a paper ---------------------------------------------------------

#: column -> header for people; "{m}" is the effect measure (lnRR)
HEADERS = {
    "biome": "Biome", "ecosystem": "Ecosystem", "mechanism": "Mechanism",
    "depth_class": "Depth class", "warming_bin": "Warming", "study_type": "Study type",
    "evidence_kind": "Evidence kind", "model": "Model", "k_effects": "Effects (k)",
    "n_sites": "Sites", "n_sources": "Sources", "n_studies": "Studies",
    "estimate": "Estimate ({m})", "ci_low": "95% CI low ({m})", "ci_high": "95% CI high ({m})",
    "percent_change": "Change (%)", "percent_change_low": "Change, CI low (%)",
    "percent_change_high": "Change, CI high (%)", "pi_low": "95% PI low ({m})",
    "pi_high": "95% PI high ({m})", "tau2": "τ²", "sigma2_source": "σ² source",
    "sigma2_site": "σ² site", "sigma2_effect": "σ² effect", "i2": "I² (%)", "q_pvalue": "p (Q)",
    "n_assumed_variance": "Assumed variances (k)", "n_increase": "Increase (studies)",
    "n_decrease": "Decrease (studies)", "n_no_change": "No change (studies)",
    "sign_test_pvalue": "p (sign test)", "certainty": "Certainty",
    "certainty_reasons": "Why this certainty", "notes": "Notes",
    # the sensitivity table's own columns
    "scenario": "Scenario", "dropped": "Dropped (effects)", "changes": "Changes", "fragile": "Fragile",
}
#: decimals per kind of column: lnRR 3, percentages 1, variance components 4
DECIMALS = {**dict.fromkeys(("estimate", "ci_low", "ci_high", "pi_low", "pi_high"), 3),
            **dict.fromkeys(("percent_change", "percent_change_low", "percent_change_high", "i2"), 1),
            **dict.fromkeys(("tau2", "sigma2_source", "sigma2_site", "sigma2_effect"), 4)}
PVALUES = ("q_pvalue", "sign_test_pvalue")
MEASURE = "lnRR"


def table_layout(table: pd.DataFrame, labels: dict | None = None, notes=(),
                 caption: str | None = None) -> dict:
    """The :func:`kb.render.render_table` options that make a synthesis (or sensitivity)
    ``table`` read as in a paper: headers with units, decimals per kind of column, p-values,
    the groups' vocabulary ``labels`` (:func:`facet_labels`), ``notes`` and ``caption``."""
    measure = MEASURE if _ratio(table) else "effect size"
    return {"headers": {c: HEADERS[c].format(m=measure) for c in table.columns if c in HEADERS},
            "labels": labels or {}, "rounding": DECIMALS, "pvalues": PVALUES,
            "notes": list(notes), "caption": caption}


def _ratio(table: pd.DataFrame) -> bool:
    """Estimates are log response ratios when each one has a percent change."""
    if "estimate" not in table or "percent_change" not in table:
        return "estimate" in table
    return bool((table["estimate"].isna() | table["percent_change"].notna()).all())


def facet_labels(store, facets) -> dict[str, dict[str, str]]:
    """facet -> {id: label} from the store's vocabularies, for the facets that have one
    (the missing group, ``not_reported``, reads "Not reported" in every facet)."""
    labels = {}
    for facet in facets:
        names = {MISSING: "Not reported"}
        if facet in FACET_VOCABULARY:
            vocabulary = store.vocabulary(FACET_VOCABULARY[facet])
            names.update(zip(vocabulary["name"], vocabulary["label"], strict=True))
        labels[facet] = names
    return labels


def caption(response_label: str, facets: list[str], model: str, method: str) -> str:
    """``Soil respiration (annual): effect of warming by biome (multilevel model, REML)``."""
    groups = " and ".join(HEADERS.get(f, f).lower() for f in facets)
    return f"{response_label}: effect of warming by {groups} ({model} model, {method})"


def export_notes(rows: pd.DataFrame, table: pd.DataFrame, facets: list[str], model: str,
                 method: str, test: str | None) -> list[str]:
    """The footnotes of an exported synthesis table: what the numbers are, then
    :func:`synthesis_notes` (model, estimator, dependence, assumed variances)."""
    measure = (f"Estimates are {MEASURE} (log ratio of warmed to control means) with 95 % "
               "confidence (CI) and prediction (PI) intervals; Change (%) = 100·(exp(lnRR) − 1); "
               "τ² and σ² are variance components on the lnRR scale"
               if _ratio(table) else "Estimates are effect sizes with 95 % confidence (CI) and "
               "prediction (PI) intervals")
    return [f"{measure}; — marks a value that is not available.",
            *synthesis_notes(rows, table, facets, model, method, test)]

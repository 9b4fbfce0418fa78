"""The certainty rubric of docs/synthesis.md as a table: a body of evidence -> its grade and
the reason that decides it. Each case changes one thing from the reference case, which is
consistent multi-site experiments with real variances (High)."""

import numpy as np
import pandas as pd
import pytest

from evidence.certainty import grade_certainty
from evidence.synthesis import fit_group, synthesize


def design(sources=8, sites=1, effects=2, mu=0.3, vi=0.01, kind="experimental", site_mu=None,
           direction=None, **columns):
    """Effects nested in sites nested in sources: ``sources`` x ``sites`` x ``effects``.

    Site means are ``mu`` (or ``site_mu``, one per site); effects step -0.02, 0, +0.02
    around them, so no two fits sit on a tie. Directions follow the sign of yi unless given.
    """
    n_sites = sources * sites
    means = np.full(n_sites, mu) if site_mu is None else np.asarray(site_mu, float)
    site = np.repeat(np.arange(n_sites), effects)
    k = len(site)
    frame = pd.DataFrame({"source_key": [f"p{s // sites}" for s in site],
                          "study_id": [f"p{s // sites}-{s % sites}" for s in site],
                          "yi": means[site] + 0.02 * (np.arange(k) % 3 - 1),
                          "vi": np.broadcast_to(vi, k), "evidence_kind": kind, **columns})
    signs = np.where(frame["yi"] > 0, "increase", "decrease")
    return frame.assign(direction=signs if direction is None else direction)


def votes(n_for, n_against=0, kind="experimental"):
    """Direction-only studies: no effect size at all."""
    return pd.DataFrame({"study_id": [f"s{i}" for i in range(n_for + n_against)],
                         "evidence_kind": kind,
                         "direction": ["increase"] * n_for + ["decrease"] * n_against})


SPREAD_VI = np.linspace(0.005, 0.3, 12)
SMALL_STUDY = list(0.1 + 1.2 * np.sqrt(SPREAD_VI))  # small sites, bigger effects

# id, evidence, model (None: grade_certainty fits it), scope, grade, the reason that decides it
RUBRIC = [
    ("reference: consistent multi-site experiments, real variances", design(), None, None,
     "High", "no domain rates down"),
    ("one site", design(sources=1, effects=8), None, None,
     "Low", "imprecision, at most Low: one site"),
    ("k = 1", design(sources=1, effects=1), None, None,
     "Low", "at most Low: one site; k = 1 effect"),
    ("k = 2 from two sites", design(sources=2, effects=1), None, None,
     "Low", "at most Low: k = 2 effects"),
    ("all variances assumed", design(variance_note="vi from SRDB's error; assumption, not data"),
     None, None, "Moderate", "risk of bias −1: assumed variance 100 % of the pooled weight"),
    ("assumed variances on a minority of the weight",
     design(variance_note=["assumed"] * 4 + [None] * 12), None, None,
     "High", "no domain rates down"),
    ("assumed variances and confounded contrasts",
     design(variance_note="assumed", quality_flag="confounded: irrigation"), None, None,
     "Low", "risk of bias −2: assumed variance 100 %, flagged contrast 100 %"),
    ("'part of' flags are breakdowns, not quality flags",
     design(quality_flag="part of e1 (breakdown by month)"), None, None, "High", "no domain rates down"),
    ("model-only effects", design(kind="model"), None, None,
     "Very low", "risk of bias −1: model output 100 % of the pooled weight"),
    ("votes only, experiments", votes(8), None, None,
     "Low", "imprecision, at most Low: votes only"),
    ("votes only, models", votes(8, kind="model"), None, None,
     "Very low", "risk of bias −1: model output 100 % of the studies taking a side"),
    ("votes only, too few studies: rated down from the start, under the same cap", votes(2),
     None, None, "Low", "imprecision −2, at most Low: votes only, no effect size; only 2 studies"),
    ("votes only, directions split", votes(6, 4), None, None,
     "Very low", "inconsistency −2: 6 studies for and 4 against"),
    ("CI crossing 0", design(effects=1, mu=0.1, vi=0.2, direction="increase"), None, None,
     "Moderate", "imprecision −1: the pooled CI"),
    ("fewer than 3 sources behind the CI", design(sources=2, sites=3), None, None,
     "Moderate", "imprecision −1: the CI rests on 2 sources (fewer than 3)"),
    ("effects of one site pooled as independent", design(effects=3), "independent", None,
     "Moderate", "the CI treats 24 effects from 8 sites as independent (too narrow)"),
    ("robust SE with one source", design(sources=1, sites=4), "robust", None,
     "Low", "at most Low: no CI (robust SE needs ≥ 2 sources)"),
    ("directions split, a third against", design(sources=9, effects=1, vi=0.02,
                                                 site_mu=[0.25] * 6 + [-0.05] * 3), None, None,
     "Low", "inconsistency −2: 6 studies for and 3 against"),
    ("I² >= 50 % and the prediction interval crosses 0",
     design(site_mu=[0.1, 0.5, 0.2, 0.7, 0.15, 0.6, 0.3, 0.45]), None, None,
     "Moderate", "inconsistency −1: I² = 81 % (multilevel)"),
    ("off-scope biome", design(biome="temperate"), None, {"biome": "boreal"},
     "Moderate", "indirectness −1: 8/8 studies outside biome 'boreal'"),
    ("off-scope response", design(response="soil_respiration"), None, {"response": "soc_stock"},
     "Moderate", "indirectness −1: 8/8 studies outside response 'soc_stock'"),
    ("small-study effects, one effect per site",
     design(sources=12, effects=1, vi=SPREAD_VI, site_mu=SMALL_STUDY), None, None,
     "Moderate", "publication bias −1: funnel asymmetry (Egger p ="),
    ("small-study effects, effects nested in sites: tested on site means",
     design(sources=12, effects=2, vi=np.repeat(SPREAD_VI, 2), site_mu=SMALL_STUDY), None, None,
     "Moderate", "on 12 site means (effects nested in sites))"),
]


@pytest.mark.parametrize("evidence,model,scope,grade,reason", [case[1:] for case in RUBRIC],
                         ids=[case[0] for case in RUBRIC])
def test_rubric_case_gets_its_grade_for_its_reason(evidence, model, scope, grade, reason):
    pooled = fit_group(evidence, model) if model else None
    result = grade_certainty(evidence, scope=scope, pooled=pooled)
    assert result.grade == grade, result.reasons_line()
    assert reason in result.reasons_line()


@pytest.mark.parametrize("evidence", [design(sources=1, effects=8), design(sources=1, effects=1),
                                      votes(20)], ids=["one site", "k = 1", "votes only"])
def test_caps_hold_whatever_the_start_and_the_other_domains(evidence):
    """A cap is not a -1: one site, k < 3 and votes only stay at most Low even when every
    other domain is clean."""
    result = grade_certainty(evidence)
    assert result.start == "High" and result.cap == 2
    assert sum(r.levels for r in result.reasons[1:]) == 0
    assert result.grade == "Low"


def test_synthesis_rows_follow_the_same_rubric():
    """One table with a group per rubric case: the certainty column is each case's grade."""
    cases = [c for c in RUBRIC if c[2] is None and c[3] is None and "yi" in c[1]]
    frames = [case[1].assign(case=case[0], study_id=case[0] + ":" + case[1]["study_id"],
                             source_key=case[0] + ":" + case[1]["source_key"]) for case in cases]
    table = synthesize(pd.concat(frames, ignore_index=True), "case").set_index("case")
    for case in cases:
        assert table.loc[case[0], "certainty"] == case[4], table.loc[case[0], "certainty_reasons"]
        assert case[5] in table.loc[case[0], "certainty_reasons"]

"""GRADE-like certainty grading (evidence/certainty.py): each rule moves the grade, alone."""

import numpy as np
import pandas as pd
import pytest

from evidence.bias import egger_test
from evidence.certainty import GRADES, START_LEVELS, grade_certainty
from evidence.errors import EvidenceError
from evidence.pooling import pool


def body(kinds, directions, **columns):
    """One row per study: s0, s1, ... with the given kinds and directions."""
    n = len(directions)
    kinds = [kinds] * n if isinstance(kinds, str) else kinds
    return pd.DataFrame({"study_id": [f"s{i}" for i in range(n)], "evidence_kind": kinds,
                         "direction": directions, **columns})


def domain(result, name):
    return next(r for r in result.reasons if r.domain == name)


@pytest.mark.parametrize("kind", list(START_LEVELS))
def test_start_level_follows_the_kind_of_evidence(kind):
    result = grade_certainty(body(kind, ["supports"] * 8))
    assert result.start == GRADES[START_LEVELS[kind] - 1]
    # 8 concordant studies, votes only: capped at Low; models also rated down for risk of bias
    expected = min(START_LEVELS[kind] - (kind == "model"), 2)
    assert result.level == max(expected, 1)


def test_model_only_is_graded_below_several_experiments():
    models = grade_certainty(body("model", ["supports"] * 6))
    experiments = grade_certainty(body("experimental", ["supports"] * 6))
    assert models.level < experiments.level
    assert experiments.grade == "Low"  # votes only: at most Low
    with_effects = {"yi": [0.3, 0.32, 0.28, 0.31, 0.29, 0.3], "vi": [0.01] * 6}
    assert grade_certainty(body("experimental", ["increase"] * 6, **with_effects)).grade == "High"
    assert grade_certainty(body("model", ["increase"] * 6, **with_effects)).grade == "Very low"


def test_start_uses_the_best_kind_among_studies_taking_a_side():
    evidence = body(["expert", "model", "experimental"], ["supports", "supports", "qualifies"])
    assert grade_certainty(evidence).start == "Low"  # the experiment only qualifies


@pytest.mark.parametrize("kinds,named", [
    (["model", "observational"], "model and observational"),
    (["observational", "model", "expert"], "model and observational"),
    (["expert", None], "expert and unclassified"),
    ([None, None], "unclassified"),
])
def test_start_names_every_kind_at_the_best_level(kinds, named):
    start = domain(grade_certainty(body(kinds, ["supports"] * len(kinds))), "start")
    assert f"best evidence is {named} (" in start.text


@pytest.mark.parametrize("n_for,n_against,levels", [(8, 0, 0), (8, 1, -1), (6, 3, -2), (4, 4, -2)])
def test_disagreeing_directions_rate_down(n_for, n_against, levels):
    evidence = body("experimental", ["supports"] * n_for + ["contradicts"] * n_against)
    result = grade_certainty(evidence)
    assert domain(result, "inconsistency").levels == levels
    assert (result.n_for, result.n_against) == (n_for, n_against)


@pytest.mark.parametrize("rows_of_a,n_for,n_against", [
    (["supports", "contradicts"], 1, 0),
    (["increase", "increase", "decrease"], 1, 0),  # a majority of rows does not make a side
    (["decrease", "no_change"], 1, 1),             # rows without a sign do not count
    (["supports", "qualifies"], 2, 0),
])
def test_a_study_on_both_sides_counts_for_neither(rows_of_a, n_for, n_against):
    evidence = pd.DataFrame({"study_id": ["a"] * len(rows_of_a) + ["b"],
                             "evidence_kind": "experimental", "direction": [*rows_of_a, "supports"]})
    result = grade_certainty(evidence)
    assert (result.n_studies, result.n_for, result.n_against) == (2, n_for, n_against)


def test_high_i2_rates_down_and_matches_pool():
    rng = np.random.default_rng(3)
    yi, vi = rng.normal(0.5, 0.6, 12), rng.uniform(0.005, 0.02, 12)
    evidence = body("experimental", ["increase"] * 12, yi=yi, vi=vi)
    result = grade_certainty(evidence)
    assert pool(yi, vi).i2 >= 50
    assert domain(result, "inconsistency").levels == -1
    assert "I²" in domain(result, "inconsistency").text


def test_ci_including_zero_rates_down_for_imprecision():
    yi = np.array([0.3, -0.2, 0.25, -0.1, 0.05, 0.1, -0.05])
    vi = np.full(7, 0.04)
    assert pool(yi, vi).ci_low < 0 < pool(yi, vi).ci_high
    result = grade_certainty(body("experimental", ["increase"] * 7, yi=yi, vi=vi))
    assert "includes 0" in domain(result, "imprecision").text
    assert domain(result, "imprecision").levels == -1


def test_no_study_taking_a_side_rates_down_twice():
    evidence = body("experimental", ["qualifies", "no_change", "mixed"])
    result = grade_certainty(evidence)
    assert domain(result, "imprecision").levels == -2
    assert domain(result, "imprecision").text == "votes only, no effect size; no study takes a side"
    assert result.grade == "Low"


@pytest.mark.parametrize("n,levels", [(1, -2), (2, -2), (3, -1), (5, -1), (6, 0)])
def test_direction_only_imprecision_follows_study_count_and_sign_test(n, levels):
    assert domain(grade_certainty(body("experimental", ["supports"] * n)), "imprecision").levels == levels


@pytest.mark.parametrize("scope,study_biomes,levels", [
    ({"biome": "boreal"}, ["boreal"] * 6, 0),
    ({"biome": "boreal"}, ["temperate"] * 4 + ["boreal"] * 2, -1),
    ({"biome": "boreal"}, [None] * 6, -1),
    ({"biome": "high_latitude"}, ["arctic", "boreal"] * 3, 0),
    ({"biome": None}, ["temperate"] * 6, 0),
    (None, ["temperate"] * 6, 0),
])
def test_evidence_outside_the_biome_scope_is_indirect(scope, study_biomes, levels):
    evidence = body("experimental", ["supports"] * 6, biome=study_biomes)
    assert domain(grade_certainty(evidence, scope=scope), "indirectness").levels == levels


def test_indirectness_counts_each_failing_facet_and_reads_mechanism_lists():
    evidence = body("experimental", ["supports"] * 6, biome="temperate", depth_class="topsoil",
                    mechanisms=[["priming"]] * 6)
    scope = {"biome": "boreal", "depth_class": "subsoil", "mechanism": "priming"}
    assert domain(grade_certainty(evidence, scope=scope), "indirectness").levels == -2
    whole = evidence.assign(biome="boreal", depth_class="whole_profile")
    assert domain(grade_certainty(whole, scope=scope), "indirectness").levels == 0


def test_publication_bias_follows_egger_from_ten_effects():
    rng = np.random.default_rng(11)
    vi = np.linspace(0.005, 0.3, 14)
    yi = 0.1 + 1.2 * np.sqrt(vi) + rng.normal(0, 0.05, 14)  # small studies, bigger effects
    evidence = body("experimental", ["increase"] * 14, yi=yi, vi=vi)
    expected = -1 if egger_test(yi, vi).pvalue < 0.10 else 0
    assert expected == -1
    assert domain(grade_certainty(evidence), "publication bias").levels == expected
    few = grade_certainty(evidence.head(9))
    assert domain(few, "publication bias").levels == 0
    assert "not testable" in domain(few, "publication bias").text


def test_grade_never_falls_below_very_low_and_reasons_are_spelled_out():
    evidence = body("expert", ["supports", "contradicts"], biome="arid")
    result = grade_certainty(evidence, scope={"biome": "boreal"})
    assert result.grade == "Very low" and result.level == 1
    frame = result.to_frame()
    assert list(frame["domain"]) == ["start", "risk of bias", "inconsistency", "indirectness",
                                     "imprecision", "publication bias"]
    assert list(frame.columns) == ["domain", "levels", "cap", "text"]
    assert result.level == max(1, min(result.cap, frame["levels"].iloc[0] + frame["levels"].iloc[1:].sum()))
    assert result.explain().startswith("Very low certainty (starts Very low")


def test_reasons_line_names_the_start_and_every_domain_that_moves():
    result = grade_certainty(body("experimental", ["supports"] * 2, biome="arid"),
                             scope={"biome": "boreal"})
    line = result.reasons_line()
    parts = line.split("; ")
    assert parts[0] == domain(result, "start").text
    assert "indirectness −1: 2/2 studies outside biome 'boreal'" in parts
    assert any(p.startswith("imprecision −2, at most Low: votes only") for p in parts)
    assert "publication bias" not in line and "\n" not in line  # did not move: not listed
    clean = grade_certainty(body("experimental", ["increase"] * 6, yi=[0.3, 0.32, 0.28, 0.31, 0.29, 0.3],
                                 vi=[0.01] * 6))
    assert clean.reasons_line().endswith("; no domain rates down")


def test_pooled_result_given_is_used_instead_of_recomputing():
    yi, vi = np.array([0.2, 0.3, 0.25]), np.array([0.01, 0.02, 0.015])
    evidence = body("experimental", ["increase"] * 3, yi=yi, vi=vi)
    wide = pool([0.2, -0.3, 0.25], [0.01, 0.02, 0.015])
    assert domain(grade_certainty(evidence, pooled=wide), "imprecision").levels == -1
    assert domain(grade_certainty(evidence), "imprecision").levels == 0


def test_without_a_fit_the_rows_are_fitted_as_nested_in_sites_and_sources():
    from evidence.synthesis import fit_group

    evidence = body("experimental", ["increase"] * 6, yi=[0.3, 0.1, 0.35, 0.12, 0.28, 0.5],
                    vi=[0.01, 0.02, 0.015, 0.01, 0.02, 0.01],
                    source_key=["a", "a", "b", "b", "c", "c"]).assign(study_id=list("ppqqrs"))
    own = grade_certainty(evidence)
    given = grade_certainty(evidence, pooled=fit_group(evidence, "multilevel"))
    assert own == given and own.n_studies == 4  # study_id is the site
    assert domain(own, "imprecision").text.startswith("6 effects from 4 sites in 3 sources")
    assert domain(own, "publication bias").text.startswith("not testable (4 site means")


@pytest.mark.parametrize("evidence,message", [
    (pd.DataFrame(), "non-empty"),
    ("not a frame", "non-empty"),
    (pd.DataFrame({"evidence_kind": ["model"]}), "'direction' column"),
    (pd.DataFrame({"direction": ["sideways"]}), "sideways"),
])
def test_bad_evidence_is_refused(evidence, message):
    with pytest.raises(EvidenceError, match=message):
        grade_certainty(evidence)

"""Synthesis tables and evidence maps (evidence/synthesis.py), checked against direct calls."""

import numpy as np
import pandas as pd
import pytest

from evidence.certainty import grade_certainty
from evidence.errors import EvidenceError
from evidence.pooling import pool
from evidence.synthesis import (
    WARMING_LABELS,
    evidence_map,
    synthesize,
    variance_notes,
    warming_bins,
)
from evidence.votes import vote_count


@pytest.fixture
def effects():
    rng = np.random.default_rng(7)
    n = 120
    frame = pd.DataFrame({
        "study_id": [f"s{i // 3}" for i in range(n)],
        "yi": rng.normal(-0.1, 0.25, n), "vi": rng.uniform(0.005, 0.05, n),
        "biome": rng.choice(["boreal", "temperate", "tropical", None], n),
        "ecosystem": rng.choice(["forest", "grassland"], n),
        "warming_c": rng.uniform(0, 6, n),
        "mechanisms": [sorted(rng.choice(["priming", "thaw", "cue"], rng.integers(0, 3), replace=False))
                       for _ in range(n)],
        "evidence_kind": rng.choice(["experimental", "observational", "model"], n),
        "direction": None, "measure": "ROM", "response": "soc_stock"})
    frame.loc[n - 10:, ["yi", "vi"]] = np.nan  # direction-only rows
    frame.loc[n - 10:, "direction"] = rng.choice(["increase", "decrease", "no_change"], 10)
    return frame


def _numeric(group):
    ok = group["yi"].notna() & group["vi"].notna()
    return group.loc[ok, "yi"].to_numpy(), group.loc[ok, "vi"].to_numpy()


@pytest.mark.parametrize("by", [["biome"], ["ecosystem"], ["biome", "ecosystem"]])
@pytest.mark.parametrize("method", ["REML", "DL"])
def test_rows_equal_direct_pool_per_group(effects, by, method):
    table = synthesize(effects, by, method=method)
    grouped = effects.assign(biome=effects["biome"].fillna("not_reported")).groupby(by)
    assert len(table) == grouped.ngroups
    for row in table.to_dict(orient="records"):
        group = grouped.get_group(tuple(row[b] for b in by))
        yi, vi = _numeric(group)
        direct = pool(yi, vi, method=method)
        assert row["k"] == direct.k == len(yi)
        assert row["n_studies"] == group["study_id"].nunique()
        np.testing.assert_allclose([row["estimate"], row["ci_low"], row["ci_high"]],
                                   [direct.estimate, direct.ci_low, direct.ci_high], rtol=1e-12)
        if direct.k > 1:
            np.testing.assert_allclose([row["tau2"], row["i2"], row["q_pvalue"], row["pi_low"]],
                                       [direct.tau2, direct.i2, direct.q_pvalue, direct.pi_low],
                                       rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(
            [row["percent_change"], row["percent_change_low"], row["percent_change_high"]],
            direct.percent_change(), rtol=1e-12)


def test_votes_are_one_per_study_and_match_vote_count(effects):
    table = synthesize(effects, "ecosystem")
    for row in table.to_dict(orient="records"):
        group = effects[effects["ecosystem"] == row["ecosystem"]]
        votes = []
        for _, study in group.groupby("study_id"):
            stated = set(study["direction"].dropna())
            signs = set(np.sign(study["yi"].dropna()))
            words = stated | {{1: "increase", -1: "decrease", 0: "no_change"}[s] for s in signs}
            votes.append(words.pop() if len(words) == 1 else "mixed")
        expected = vote_count(votes)
        assert (row["n_increase"], row["n_decrease"], row["n_no_change"]) == (
            expected.n_increase, expected.n_decrease, expected.n_no_change)
        assert row["sign_test_pvalue"] == pytest.approx(expected.pvalue)


def test_single_effect_gives_estimate_but_no_heterogeneity():
    frame = pd.DataFrame({"study_id": ["a", "b"], "biome": ["x", "y"], "yi": [0.2, -0.1],
                          "vi": [0.01, 0.02]})
    table = synthesize(frame, "biome").set_index("biome")
    direct = pool([0.2], [0.01])
    assert table.loc["x", "k"] == 1
    assert table.loc["x", "ci_low"] == pytest.approx(direct.ci_low)
    assert table.loc["x", ["tau2", "i2", "q_pvalue", "pi_low", "pi_high"]].isna().all()
    assert table.loc["x", "certainty"] is None  # no evidence_kind column


def test_direction_only_group_has_votes_but_no_pooled_columns():
    frame = pd.DataFrame({"study_id": list("abcdefg"), "biome": "boreal", "yi": np.nan,
                          "vi": np.nan, "direction": ["decrease"] * 6 + ["no_change"],
                          "evidence_kind": "experimental"})
    row = synthesize(frame, "biome").iloc[0]
    assert row["k"] == 0 and np.isnan(row["estimate"]) and np.isnan(row["percent_change"])
    assert (row["n_decrease"], row["n_no_change"], row["n_increase"]) == (6, 1, 0)
    assert row["sign_test_pvalue"] == pytest.approx(vote_count(["decrease"] * 6).pvalue)
    assert row["certainty"] == grade_certainty(frame).grade


def test_mechanism_explodes_so_a_study_counts_in_each(effects):
    table = synthesize(effects, "mechanism").set_index("mechanism")
    for mechanism in ("priming", "thaw", "cue"):
        rows = effects[effects["mechanisms"].map(lambda m, x=mechanism: x in m)]
        assert table.loc[mechanism, "n_studies"] == rows["study_id"].nunique()
        assert table.loc[mechanism, "k"] == rows["yi"].notna().sum()
    empty = effects[effects["mechanisms"].map(len) == 0]
    assert table.loc["not_reported", "k"] == empty["yi"].notna().sum()


@pytest.mark.parametrize("warming,label", [(0.0, "<1 °C"), (0.99, "<1 °C"), (1.0, "1–2 °C"),
                                           (2.0, "2–4 °C"), (3.99, "2–4 °C"), (4.0, "≥4 °C"),
                                           (12.0, "≥4 °C"), (-0.5, "<1 °C"), (np.nan, "not_reported")])
def test_warming_bins_include_their_lower_edge(warming, label):
    assert warming_bins([warming]).iloc[0] == label


def test_warming_bins_are_ordered_and_match_pool(effects):
    table = synthesize(effects, "warming_bin")
    assert list(table["warming_bin"]) == list(WARMING_LABELS)
    bins = warming_bins(effects["warming_c"]).to_numpy()
    for row in table.to_dict(orient="records"):
        yi, vi = _numeric(effects[bins == row["warming_bin"]])
        assert row["estimate"] == pytest.approx(pool(yi, vi).estimate, rel=1e-12)


def test_certainty_column_is_the_group_grade(effects):
    table = synthesize(effects, "ecosystem")
    for row in table.to_dict(orient="records"):
        group = effects[effects["ecosystem"] == row["ecosystem"]]
        directions = [d if isinstance(d, str) else ("increase" if y > 0 else "decrease")
                      for d, y in zip(group["direction"], group["yi"], strict=True)]
        assert row["certainty"] == grade_certainty(group.assign(direction=directions)).grade


def test_percent_change_only_for_log_response_ratios(effects):
    table = synthesize(effects.assign(measure="SMD"), "ecosystem")
    assert table["percent_change"].isna().all() and table["estimate"].notna().all()


def test_response_filter_and_errors(effects):
    mixed = pd.concat([effects, effects.assign(response="soil_respiration", yi=5.0)])
    only = synthesize(mixed, "ecosystem", response="soc_stock")
    assert only["estimate"].tolist() == synthesize(effects, "ecosystem")["estimate"].tolist()
    with pytest.raises(EvidenceError, match="no effects"):
        synthesize(effects, "biome", response="maoc")
    with pytest.raises(EvidenceError, match="no column 'site'"):
        synthesize(effects, "site")


def test_evidence_map_counts_distinct_studies_with_missing_cells(effects):
    table = evidence_map(effects, "ecosystem", "mechanism",
                         column_values=["priming", "thaw", "cue", "leaching"])
    assert list(table.columns[:4]) == ["priming", "thaw", "cue", "leaching"]
    assert (table["leaching"] == 0).all()
    for ecosystem in ("forest", "grassland"):
        rows = effects[(effects["ecosystem"] == ecosystem)
                       & effects["mechanisms"].map(lambda m: "thaw" in m)]
        assert table.loc[ecosystem, "thaw"] == rows["study_id"].nunique()
    with pytest.raises(EvidenceError, match="two different facets"):
        evidence_map(effects, "biome", "biome")


# -- on the shipped knowledge base: every group row against pool() on the store's effects --

@pytest.fixture(scope="module")
def shipped(tmp_path_factory):
    from kb import KnowledgeBase

    with KnowledgeBase(tmp_path_factory.mktemp("synth") / "kb.db") as kb:
        yield kb


def _facets(frame, by):
    frame = frame.assign(warming_bin=warming_bins(frame["warming_c"]).to_numpy())
    frame[by] = frame[by].astype(object).fillna("not_reported")
    return frame


def _in_group(frame, by, row):
    return frame[(frame[by] == pd.Series({b: row[b] for b in by})).all(axis=1)]


@pytest.mark.parametrize("response", ["soil_respiration", "soil_respiration_rate"])
@pytest.mark.parametrize("by", [["ecosystem"], ["biome", "warming_bin"]])
def test_shipped_rows_equal_pool_on_the_stores_effects(shipped, response, by):
    from kb.claims.graph import synthesis_rows

    table = synthesize(synthesis_rows(shipped, response=response), by)
    effects = shipped.effects(response=response)
    # monthly COSORE effects ("part of" their season effect) repeat its data: left out
    effects = _facets(effects[~effects["quality_flag"].fillna("").str.startswith("part of ")], by)
    studies = _facets(shipped.studies(), by)
    # studies without any effect vote by the respiration direction they state; a study
    # with effects on another response (an SRDB site with only Rh) does not vote here
    quantified = set(shipped.effects()["study_id"])
    voters = studies[~studies["id"].isin(quantified)
                     & studies["respiration_direction"].isin(["increase", "decrease", "no_change"])]
    poolable = effects[np.isfinite(effects["yi"].astype(float)) & (effects["vi"].astype(float) > 0)]
    assert table["k"].sum() == len(poolable) > 0
    for row in table.to_dict(orient="records"):
        mine = _in_group(poolable, by, row)
        assert row["k"] == len(mine)
        if len(mine):
            direct = pool(mine["yi"].to_numpy(float), mine["vi"].to_numpy(float))
            np.testing.assert_allclose([row["estimate"], row["ci_low"], row["ci_high"]],
                                       [direct.estimate, direct.ci_low, direct.ci_high], rtol=1e-10)
        group_effects, group_voters = _in_group(effects, by, row), _in_group(voters, by, row)
        votes = group_effects.groupby("study_id")["direction"].agg(
            lambda d: d.iloc[0] if d.nunique() == 1 else "mixed")
        votes = pd.concat([votes, group_voters.set_index("id")["respiration_direction"]])
        assert row["n_studies"] == len(votes)
        for d in ("increase", "decrease", "no_change"):
            assert row[f"n_{d}"] == (votes == d).sum()


def test_shipped_rate_synthesis_pools_season_effects_only(shipped):
    """soil_respiration_rate: only the COSORE season effects have a variance; their months
    (the same chambers again) must not be pooled beside them."""
    from kb.claims.graph import synthesis_rows

    stored = shipped.effects(response="soil_respiration_rate")
    with_variance = stored[stored["vi"].astype(float) > 0]
    seasons = with_variance[with_variance["period"].fillna("").str.startswith("season")]
    assert len(with_variance) > len(seasons) == 2  # symmetric and asymmetric season
    table = synthesize(synthesis_rows(shipped, response="soil_respiration_rate"), ["ecosystem"])
    assert table["k"].sum() == len(seasons)


def test_variance_notes_count_noted_effects_per_group_and_pooling():
    frame = pd.DataFrame({
        "study_id": list("abcdef"), "biome": ["x", "x", "y", "y", "y", "y"],
        "yi": [0.1, 0.2, 0.3, -0.1, 0.2, np.nan], "vi": [0.01, 0.02, np.nan, 0.01, 0.01, np.nan],
        "variance_note": ["assumed SE", "assumed SE", "no vi", None, "assumed SE", "direction only"]})
    notes = variance_notes(frame, "biome")
    rows = {(r["biome"], r["variance_note"], r["pooled"]): r["k"] for r in notes.to_dict(orient="records")}
    # the direction-only row (no yi) has no number to qualify, so it is not listed
    assert rows == {("x", "assumed SE", True): 2, ("y", "assumed SE", True): 1, ("y", "no vi", False): 1}
    assert list(notes["pooled"]) == [True, True, False]
    assert variance_notes(frame.drop(columns="variance_note"), "biome").empty


@pytest.mark.parametrize("response,other", [("soil_respiration", "soil_respiration_rate"),
                                            ("soil_respiration_rate", "soil_respiration")])
def test_effects_on_another_response_do_not_vote(shipped, response, other):
    from kb.claims.graph import synthesis_rows

    rows = synthesis_rows(shipped, response=response)
    on_response = set(shipped.effects(response=response)["study_id"])
    only_other = set(shipped.effects(response=other)["study_id"]) - on_response
    assert only_other, "the shipped base has sites with effects on the other response only"
    assert not only_other & set(rows["study_id"])

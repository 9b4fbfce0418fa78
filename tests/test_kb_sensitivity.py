"""The knowledge base's standard sensitivity scenarios on the shipped data: the SRDB variance
scenarios touch only effects with the SRDB note, the table is a set of direct refits, bad
input gets one line."""

import numpy as np
import pandas as pd
import pytest

from evidence import synthesize
from kb import KnowledgeBase
from kb.claims.graph import synthesis_rows
from kb.claims.sensitivity import (
    CONFOUNDED_DROPPED,
    FLAGGED_DROPPED,
    LEAVE_ONE_SITE_OUT,
    SRDB_RULE,
    confounded,
    flagged,
    sensitivity_table,
    srdb_sd_name,
    srdb_variance_rule,
    standard_scenarios,
)
from kb.errors import KBError
from kb.importers.srdb import VARIANCE_NOTE

RESPONSE, BY = "soil_respiration", "ecosystem"
# the same synthesize on the same rows: equal up to summation order
REL = 1e-10
NUMBERS = ("estimate", "ci_low", "ci_high", "percent_change", "tau2", "i2")


@pytest.fixture(scope="module")
def kb():
    store = KnowledgeBase(":memory:")
    yield store
    store.close()


@pytest.fixture(scope="module")
def rows(kb):
    return synthesis_rows(kb, RESPONSE)


@pytest.fixture(scope="module")
def table(kb):
    return sensitivity_table(kb, RESPONSE, BY)


def test_standard_scenarios_are_named_in_order():
    names = list(standard_scenarios())
    assert names == [srdb_sd_name(3), srdb_sd_name(4), srdb_sd_name(6), CONFOUNDED_DROPPED,
                     FLAGGED_DROPPED, LEAVE_ONE_SITE_OUT]
    assert list(standard_scenarios((2, 10)))[:2] == [srdb_sd_name(2), srdb_sd_name(10)]
    assert all(s.plausible and s.description for s in standard_scenarios().values())


@pytest.mark.parametrize("n", [3, 4, 6])
def test_srdb_scenarios_touch_only_effects_with_the_srdb_note(kb, n):
    effects = kb.effects()  # every response: the COSORE effects carry another assumed note
    srdb = (effects["variance_note"] == VARIANCE_NOTE).to_numpy()
    other_noted = effects["variance_note"].notna().to_numpy() & ~srdb & effects["vi"].notna().to_numpy()
    assert srdb.sum() > 0 and other_noted.sum() > 0  # both kinds are in the shipped data
    out = standard_scenarios()[srdb_sd_name(n)].transform(effects)
    before, after = effects["vi"].to_numpy(float), out["vi"].to_numpy(float)
    changed = ~((before == after) | (np.isnan(before) & np.isnan(after)))
    assert changed.sum() == srdb.sum()
    assert (changed == srdb).all()
    np.testing.assert_allclose(after[srdb], before[srdb] / n, rtol=1e-15)
    pd.testing.assert_frame_equal(out.drop(columns="vi"), effects.drop(columns="vi"))


def test_the_srdb_rule_phrase_is_the_importers_note():
    # claims may not import the importers layer: the phrase stands for the note
    assert SRDB_RULE in VARIANCE_NOTE
    notes = [VARIANCE_NOTE, "no vi: Rs_annual_err is empty or 0 for the warmed arm", None,
             np.nan, "n = chambers; assumed", VARIANCE_NOTE[:40]]
    frame = pd.DataFrame({"variance_note": notes, "vi": [0.01] * len(notes)})
    assert srdb_variance_rule(frame).tolist() == [True, False, False, False, False, False]
    assert not srdb_variance_rule(pd.DataFrame({"vi": [0.1]})).any()


def test_on_the_shipped_data_the_phrase_finds_exactly_the_srdb_note(kb):
    notes = kb.effects()["variance_note"]
    assert (srdb_variance_rule(kb.effects()) == (notes == VARIANCE_NOTE).to_numpy()).all()


FLAGS = [  # (quality_flag, confounded, flagged)
    (None, False, False),
    (np.nan, False, False),
    ("", False, False),
    ("   ", False, False),
    ("part of cosore-x-season", False, False),
    ("confounded: irrigation; SRDB Quality_flag Q01 (warmed), Q01 (control)", True, True),
    ("SRDB Quality_flag Q01 (warmed), Q01 (control)", False, True),
    ("Confounded: upper case is not the importer's flag", False, True),
]


@pytest.mark.parametrize(("flag", "is_confounded", "is_flagged"), FLAGS, ids=repr)
def test_flag_masks(flag, is_confounded, is_flagged):
    frame = pd.DataFrame({"quality_flag": [flag]})
    assert confounded(frame).tolist() == [is_confounded]
    assert flagged(frame).tolist() == [is_flagged]


def test_drop_scenarios_on_the_shipped_rows(rows):
    scenarios = standard_scenarios()
    n_confounded = int(confounded(rows).sum())
    n_flagged = int(flagged(rows).sum())
    assert 0 <= n_confounded < n_flagged  # the shipped SRDB seed has none since record 8031 pairs with 8030
    assert len(scenarios[CONFOUNDED_DROPPED].transform(rows)) == len(rows) - n_confounded
    kept = scenarios[FLAGGED_DROPPED].transform(rows)
    assert len(kept) == len(rows) - n_flagged and not flagged(kept).any()


def _group(frame, key):
    hit = frame[frame[BY] == key]
    assert len(hit) == 1
    return hit.iloc[0]


def _assert_same(mine, direct):
    for name in NUMBERS:
        assert mine[name] == pytest.approx(direct[name], rel=REL, abs=1e-14, nan_ok=True), name
    assert mine["k_effects"] == (direct["k_effects"] if "k_effects" in direct else direct["k"])
    assert mine["certainty"] == direct["certainty"]


@pytest.mark.parametrize("name", ["base", srdb_sd_name(3), srdb_sd_name(6), FLAGGED_DROPPED])
def test_table_rows_are_direct_refits(table, rows, name):
    scenario = standard_scenarios().get(name)
    direct = synthesize(scenario.transform(rows) if scenario else rows, BY, response=RESPONSE)
    mine = table.to_frame().query("scenario == @name")
    assert sorted(mine[BY]) == sorted(table.base[BY])
    for key in table.base[BY]:
        if key in set(direct[BY]):
            _assert_same(_group(mine, key), _group(direct, key))
        else:  # every row of the group dropped
            assert _group(mine, key)["note"] == "no rows of this group left"


def test_leave_one_site_out_rows_are_refits_without_that_site(table, rows):
    sites = table.sites
    assert sites[BY].nunique() >= 2  # several groups have two or more sites
    for record in sites.to_dict(orient="records"):
        direct = synthesize(rows[rows["study_id"] != record["dropped"]], BY, response=RESPONSE)
        _assert_same(pd.Series(record), _group(direct, record[BY]))


def test_groups_say_why_they_are_fragile(table):
    groups = table.groups
    assert list(groups[BY]) == list(table.base[BY])
    assert (groups["fragile"] == (groups["fragile_under"] != "")).all()
    frame = table.to_frame()
    for record in groups[groups["fragile"]].to_dict(orient="records"):
        rows = frame[(frame[BY] == record[BY]) & (frame["changes"] != "")]
        assert set(rows["scenario"]) == {part.split(" (")[0]
                                         for part in record["fragile_under"].split("; ")}


def test_an_empty_selection_gets_one_line():
    empty = KnowledgeBase(":memory:", seed=False)
    with pytest.raises(KBError, match="no effects or direction-only studies on "
                                      "'soil_respiration' match") as info:
        sensitivity_table(empty, RESPONSE, BY)
    assert "\n" not in str(info.value)
    empty.close()


def test_chosen_scenarios_and_options(kb):
    result = sensitivity_table(kb, RESPONSE, BY, scenarios=[LEAVE_ONE_SITE_OUT], alpha=0.1,
                               biome="temperate")
    assert set(result.to_frame()["scenario"]) == {"base", LEAVE_ONE_SITE_OUT}
    direct = synthesize(synthesis_rows(kb, RESPONSE, biome="temperate"), BY,
                        response=RESPONSE, alpha=0.1)
    for key in direct[BY]:
        _assert_same(_group(result.to_frame().query("scenario == 'base'"), key),
                     _group(direct, key))


@pytest.mark.parametrize(("call", "message"), [
    (lambda kb: sensitivity_table(kb, RESPONSE, BY, scenarios=["SRDB error is an SD, n = 5"]),
     "scenario 'SRDB error is an SD, n = 5' is not one of"),
    (lambda kb: sensitivity_table(kb, RESPONSE, BY, scenarios=[]), "is not one of"),
    (lambda kb: sensitivity_table(kb, RESPONSE, BY, biome="no_such_biome"),
     "'no_such_biome' is not an allowed value"),
    (lambda kb: sensitivity_table(kb, RESPONSE, "no_such_column"), "no column 'no_such_column'"),
    (lambda kb: sensitivity_table(kb, RESPONSE, BY, model="bogus"), "model"),
    (lambda kb: standard_scenarios((3, 1)), "SRDB replicates n: 1 is not allowed"),
    (lambda kb: standard_scenarios((3.5,)), "SRDB replicates n: 3.5 is not allowed"),
])
def test_bad_input_gets_one_line(kb, call, message):
    with pytest.raises(KBError, match=message) as info:
        call(kb)
    assert "\n" not in str(info.value) and str(info.value)

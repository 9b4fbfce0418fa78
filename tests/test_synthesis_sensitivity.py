"""synthesis_sensitivity: every scenario row is a direct refit by synthesize, the fragile
flag follows a changed conclusion, and bad input gets one line."""

import numpy as np
import pandas as pd
import pytest

from evidence import EvidenceError, synthesize
from evidence.sensitivity import (
    TABLE_COLUMNS,
    Scenario,
    _conclusion_changes,
    drop_rows,
    leave_one_site_out,
    scale_variance,
    synthesis_sensitivity,
)

# the same synthesize on the same rows in the same order: equal up to the last bits, which
# only a different summation order (pandas regrouping the rows) could move
REL = 1e-10
NUMBERS = ("estimate", "ci_low", "ci_high", "percent_change", "tau2", "i2")


def _rows(seed=20240611):
    """Three groups of sites nested in sources, 1-3 effects per site, some rows marked,
    one direction-only study per group; mechanisms to explode."""
    rng = np.random.default_rng(seed)
    rows = []
    for g, centre in (("g1", 0.25), ("g2", 0.05), ("g3", -0.15)):
        for s in range(5):
            site = f"{g}-s{s}"
            for _ in range(int(rng.integers(1, 4))):
                rows.append({"g": g, "study_id": site, "source_key": f"{g}-src{s % 3}",
                             "yi": centre + rng.normal(0, 0.12), "vi": rng.uniform(0.004, 0.03),
                             "marked": bool(rng.random() < 0.3), "evidence_kind": "experimental",
                             "mechanisms": ["a", "b"] if s % 2 else ["a"]})
        rows.append({"g": g, "study_id": f"{g}-votes", "source_key": f"{g}-votes", "yi": np.nan,
                     "vi": np.nan, "direction": "increase", "marked": False,
                     "evidence_kind": "experimental", "mechanisms": ["b"]})
    return pd.DataFrame(rows)


def _marked(rows):
    return rows["marked"].to_numpy(bool)


def _group_row(table, by, key):
    hit = table
    for name, value in zip(by, key, strict=True):
        hit = hit[hit[name] == value]
    assert len(hit) == 1, f"group {key} appears {len(hit)} times"
    return hit.iloc[0]


def _k(row):
    return row["k_effects"] if "k_effects" in row else row["k"]


def _assert_same(mine, direct):
    for name in NUMBERS:
        assert mine[name] == pytest.approx(direct[name], rel=REL, abs=1e-14, nan_ok=True), name
    assert mine["k_effects"] == _k(direct)
    assert mine["certainty"] == direct["certainty"]


SCENARIOS = {
    "vi / 4 on marked rows": scale_variance(0.25, _marked),
    "vi x 3 everywhere": scale_variance(3.0),
    "marked rows dropped": drop_rows(_marked),
    "plain function: g2 source 0 dropped": lambda r: r[r["source_key"] != "g2-src0"],
}
OPTIONS = [{}, {"alpha": 0.1}, {"method": "ML"}]


@pytest.mark.parametrize("options", OPTIONS, ids=lambda o: str(o) or "defaults")
@pytest.mark.parametrize("by", ["g", "mechanism", ["g", "mechanism"]], ids=str)
def test_scenario_rows_reproduce_direct_refits(by, options):
    rows = _rows()
    result = synthesis_sensitivity(rows, by, SCENARIOS, **options)
    table, names = result.to_frame(), [by] if isinstance(by, str) else by
    base = synthesize(rows, by, **options)
    assert len(table) == len(base) * (1 + len(SCENARIOS))
    for name, scenario in SCENARIOS.items():
        transform = scenario.transform if isinstance(scenario, Scenario) else scenario
        direct = synthesize(transform(rows), by, **options)
        for record in base.to_dict(orient="records"):
            key = [record[n] for n in names]
            mine = _group_row(table[table["scenario"] == name], names, key)
            _assert_same(mine, _group_row(direct, names, key))
            assert mine["delta_estimate"] == pytest.approx(
                mine["estimate"] - record["estimate"], rel=REL)
            _assert_same(_group_row(table[table["scenario"] == "base"], names, key), record)


@pytest.mark.parametrize("by", ["g", "mechanism"])
def test_leave_one_site_out_rows_reproduce_refits_without_that_site(by):
    rows = _rows()
    result = synthesis_sensitivity(rows, by, {"loso": leave_one_site_out()})
    sites = result.sites
    assert len(sites) > 0
    for record in sites.to_dict(orient="records"):
        direct = synthesize(rows[rows["study_id"] != record["dropped"]], by)
        _assert_same(pd.Series(record), _group_row(direct, [by], [record[by]]))
    # the group's row shows the refit moving the estimate most, with the range of all
    summary = result.to_frame().query("scenario == 'loso'").set_index(by)
    for group, refits in sites.groupby(by):
        most = refits.loc[refits["delta_estimate"].abs().idxmax()]
        assert summary.loc[group, "dropped"] == most["dropped"]
        assert summary.loc[group, "estimate_min"] == refits["estimate"].min()
        assert summary.loc[group, "estimate_max"] == refits["estimate"].max()
    # only sites with a pooled effect are dropped: the direction-only studies are not
    assert not sites["dropped"].str.endswith("-votes").any()


def _fragile_case():
    """Group A: one precise site carries a clear positive effect; the other three are
    imprecise and centred near 0. Group B: four precise sites that agree."""
    return pd.DataFrame({
        "g": ["A"] * 4 + ["B"] * 4,
        "study_id": ["a1", "a2", "a3", "a4", "b1", "b2", "b3", "b4"],
        "source_key": ["a1", "a2", "a3", "a4", "b1", "b2", "b3", "b4"],
        "yi": [0.30, -0.05, 0.02, 0.05, 0.30, 0.28, 0.33, 0.31],
        "vi": [0.004, 0.5, 0.5, 0.5, 0.004, 0.004, 0.004, 0.004]})


def test_fragile_flag_flips_when_dropping_one_site_flips_significance():
    rows = _fragile_case()
    result = synthesis_sensitivity(rows, "g", {"leave one site out": leave_one_site_out()})
    groups = result.groups.set_index("g")
    sites = result.sites.set_index(["g", "dropped"])
    # far from the edge: A's base CI clears 0 by more than 0.1, without a1 it straddles 0
    # by more than 0.5 on each side; B's CIs clear 0 by more than 0.2 whichever site goes
    assert groups.loc["A", "ci_low"] > 0.1
    assert sites.loc[("A", "a1"), "ci_low"] < -0.5 and sites.loc[("A", "a1"), "ci_high"] > 0.5
    assert (sites.loc["B", "ci_low"] > 0.2).all()
    assert bool(groups.loc["A", "fragile"]) and not bool(groups.loc["B", "fragile"])
    assert groups.loc["A", "fragile_under"] == "leave one site out (significance without a1)"
    assert sites.loc["A", "changes"].tolist() == ["significance", "", "", ""]
    # without the scenario that flips it, the same group is not fragile
    robust = synthesis_sensitivity(rows, "g", {"vi x 1.5": scale_variance(1.5)})
    assert not robust.groups["fragile"].any()


def test_variance_scenario_flips_significance_and_an_implausible_one_does_not_count():
    rows = pd.DataFrame({"g": ["C"] * 4, "study_id": ["c1", "c2", "c3", "c4"],
                         "source_key": ["c1", "c2", "c3", "c4"],
                         "yi": [0.10, 0.12, 0.08, 0.11], "vi": [0.04] * 4})
    shrink = scale_variance(1 / 8)
    result = synthesis_sensitivity(rows, "g", {
        "vi / 8": shrink, "vi / 8, implausible": Scenario(shrink.transform, plausible=False)})
    table = result.to_frame().set_index("scenario")
    # base CI straddles 0 by more than 0.09 on each side; vi / 8 clears it by more than 0.02
    assert table.loc["base", "ci_low"] < -0.09 and table.loc["base", "ci_high"] > 0.09
    assert table.loc["vi / 8", "ci_low"] > 0.02
    assert table.loc["vi / 8", "changes"] == table.loc["vi / 8, implausible", "changes"] == "significance"
    assert result.groups.loc[0, "fragile_under"] == "vi / 8 (significance)"


BASE = {"estimate": 0.2, "ci_low": 0.05, "ci_high": 0.35, "certainty": "Low"}
CHANGES = [  # (case, base changed by, scenario changed by, changes)
    ("same conclusion", {}, {"estimate": 0.25, "ci_low": 0.1, "ci_high": 0.4}, []),
    ("significance lost", {}, {"ci_low": -0.1}, ["significance"]),
    ("significance gained", {"ci_low": -0.1}, {}, ["significance"]),
    ("opposite and significant", {}, {"estimate": -0.2, "ci_low": -0.35, "ci_high": -0.05},
     ["sign"]),
    ("opposite, not significant", {}, {"estimate": -0.1, "ci_low": -0.3, "ci_high": 0.1},
     ["sign", "significance"]),
    ("certainty changed", {}, {"certainty": "Moderate"}, ["certainty"]),
    ("estimate lost", {}, {"estimate": np.nan, "ci_low": np.nan, "ci_high": np.nan}, []),
    ("estimate gained", {"estimate": np.nan, "ci_low": np.nan, "ci_high": np.nan}, {}, []),
    ("grade lost", {}, {"certainty": None}, []),
    ("everything", {}, {"estimate": -0.1, "ci_low": -0.3, "ci_high": 0.1,
                        "certainty": "Very low"}, ["sign", "significance", "certainty"]),
]


@pytest.mark.parametrize(("case", "base", "now", "expected"), CHANGES, ids=[c[0] for c in CHANGES])
def test_conclusion_changes(case, base, now, expected):
    assert _conclusion_changes({**BASE, **base}, {**BASE, **now}) == expected


def test_groups_left_without_rows_or_effects_are_noted():
    rows = _rows()
    result = synthesis_sensitivity(rows, "g", {
        "g3 gone": drop_rows(lambda r: (r["g"] == "g3").to_numpy()),
        "g2 votes only": drop_rows(lambda r: ((r["g"] == "g2") & r["yi"].notna()).to_numpy())})
    table = result.to_frame().set_index(["g", "scenario"])
    assert table.loc[("g3", "g3 gone"), "note"] == "no rows of this group left"
    assert np.isnan(table.loc[("g3", "g3 gone"), "estimate"])
    assert table.loc[("g2", "g2 votes only"), "note"] == "no poolable effect left (votes only)"
    assert table.loc[("g2", "g2 votes only"), "k_effects"] == 0
    assert table.loc[("g1", "g3 gone"), "note"] == ""
    # a lost estimate is no change of sign or significance (the grade of the votes may change)
    assert table.loc[("g2", "g2 votes only"), "changes"] in ("", "certainty")
    assert not result.groups.set_index("g").loc["g3", "fragile"]


def test_table_layout_and_scenario_notes():
    rows = _rows()
    scenarios = {"loso": leave_one_site_out(), "vi x 2": scale_variance(2.0, description="x2")}
    result = synthesis_sensitivity(rows, "g", scenarios)
    table = result.to_frame()
    assert list(table.columns) == ["g", *TABLE_COLUMNS]
    assert table["scenario"].tolist() == ["base", "loso", "vi x 2"] * 3
    assert table["g"].tolist() == [g for g in ("g1", "g2", "g3") for _ in range(3)]
    assert result.groups["g"].tolist() == ["g1", "g2", "g3"]
    assert result.scenarios.to_dict(orient="list") == {
        "name": ["loso", "vi x 2"], "kind": ["leave one site out", "rows"],
        "description": [leave_one_site_out().description, "x2"], "plausible": [True, True]}
    base = table[table["scenario"] == "base"]
    assert (base["delta_estimate"] == 0).all() and (base["changes"] == "").all()


def test_scale_variance_changes_only_the_selected_rows():
    rows = _rows()
    out = scale_variance(0.25, _marked).transform(rows)
    marked = _marked(rows)
    assert 0 < marked.sum() < len(rows)
    np.testing.assert_allclose(out["vi"][marked], rows["vi"][marked] * 0.25, rtol=1e-15)
    pd.testing.assert_frame_equal(out[~marked], rows[~marked])
    pd.testing.assert_frame_equal(out.drop(columns="vi"), rows.drop(columns="vi"))


def _returns_list(rows):
    return [1, 2]


BAD = [
    ("not a dict", ["loso"], {}, "scenarios must be a dict"),
    ("empty", {}, {}, "scenarios is empty"),
    ("reserved name", {"base": scale_variance(2.0)}, {}, "other than 'base'"),
    ("not callable", {"x": 3}, {}, "scenario 'x' is a int"),
    ("unknown option", {"x": scale_variance(2.0)}, {"methd": "REML"}, "no option 'methd'"),
    ("returns a list", {"x": _returns_list}, {}, "scenario 'x' returned list"),
    ("mask of wrong length", {"x": drop_rows(lambda r: np.ones(3, bool))}, {},
     "scenario 'x': drop_rows where must return one bool per row"),
    ("mask not bool", {"x": scale_variance(2.0, lambda r: r["yi"])}, {},
     "must return one bool per row"),
    ("no site column", {"x": leave_one_site_out("site")}, {}, "needs a 'site' column"),
]


@pytest.mark.parametrize(("case", "scenarios", "options", "message"), BAD, ids=[b[0] for b in BAD])
def test_bad_input_gets_one_line(case, scenarios, options, message):
    with pytest.raises(EvidenceError, match=message) as info:
        synthesis_sensitivity(_rows(), "g", scenarios, **options)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("factor", [0, -1.0, np.nan, np.inf, "x", True, None])
def test_scale_variance_factor_must_be_positive(factor):
    with pytest.raises(EvidenceError, match="factor must be a finite number > 0") as info:
        scale_variance(factor)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(("call", "message"), [
    (lambda: drop_rows(None), "drop_rows needs where"),
    (lambda: drop_rows("marked"), "drop_rows where must be a function"),
    (lambda: scale_variance(2.0, where=[True]), "scale_variance where must be a function"),
    (lambda: leave_one_site_out(""), "column must be a column name"),
])
def test_builders_refuse_bad_arguments(call, message):
    with pytest.raises(EvidenceError, match=message):
        call()


def test_empty_rows_and_empty_response_are_refused_in_one_line():
    rows = _rows().assign(response="soil_respiration")
    for frame, response in ((rows.iloc[:0], None), (rows, "soc_stock")):
        with pytest.raises(EvidenceError, match="no effects to synthesize") as info:
            synthesis_sensitivity(frame, "g", {"loso": leave_one_site_out()}, response=response)
        assert "\n" not in str(info.value)


def _summary(estimate, low, high, certainty="Low"):
    return {"estimate": estimate, "ci_low": low, "ci_high": high, "certainty": certainty}


@pytest.mark.parametrize("base,now,expected", [
    # both intervals include 0: a flip of the point estimate is no change of conclusion
    (_summary(0.02, -0.07, 0.10), _summary(-0.02, -0.10, 0.05), []),
    # out of a clear increase into a clear decrease: sign and nothing else
    (_summary(0.20, 0.10, 0.30), _summary(-0.20, -0.30, -0.10), ["sign"]),
    # a clear increase that turns into "no clear effect" of the other sign
    (_summary(0.20, 0.10, 0.30), _summary(-0.02, -0.10, 0.05), ["sign", "significance"]),
    (_summary(0.20, 0.10, 0.30), _summary(0.05, -0.10, 0.20, "Very low"), ["significance", "certainty"]),
])
def test_which_changes_count_as_a_change_of_conclusion(base, now, expected):
    from evidence.sensitivity import _conclusion_changes

    assert _conclusion_changes(base, now) == expected

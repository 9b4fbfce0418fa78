"""SRDB warming import on the real files in ../shared/data/srdb: traceability, rules, seed, bad input."""

from __future__ import annotations

import csv
import math
import re
import shutil
from collections import Counter
from functools import cache
from pathlib import Path

import pandas as pd
import pybtex.database
import pytest
from click.testing import CliRunner
from conftest import ROOT, snapshot

import evidence
from kb import KnowledgeBase
from kb.cli import cli
from kb.errors import FileFormatError
from kb.importers import add_new
from kb.importers import srdb as importer
from kb.importers.srdb import (
    Q10_RANGES,
    REQUIRED,
    VARIANCE_NOTE,
    import_srdb,
    matching_factors,
    parse_warming_c,
    warming_medium,
)
from kb.vocab import lookup, treatment_factors

SEED = ROOT / "kb" / "seed" / "srdb_warming.yaml"
LOCATION = re.compile(r"^SRDB-V5 records ([\d.]+) \(warmed\) vs ([\d.]+) \(control\), "
                      r"column (\w+), (srdb-data|srdb-equations)\.csv @35a61e1$")
EQUATION_CODES = ("q10", "r10")
#: SRDB's labels of un-manipulated plots ("None" is the standard one, README "Gotchas")
PLAIN_CONTROLS = {"None", "Control", "CK, Control", "Conrol"}
pytestmark = pytest.mark.shared_data


@pytest.fixture
def srdb(shared_data) -> Path:
    return shared_data / "srdb"


@cache
def _result(folder: str):
    return import_srdb(folder)


@cache
def _csv(folder: str) -> pd.DataFrame:
    frame = pd.read_csv(Path(folder) / "srdb-data.csv", keep_default_na=False, dtype=str)
    return frame.set_index("Record_number")


def _effects(srdb):
    return _result(str(srdb)).records["effects"]


@cache
def _equations(folder: str) -> pd.DataFrame:
    frame = pd.read_csv(Path(folder) / "srdb-equations.csv", keep_default_na=False, dtype=str)
    return frame.set_index("Record_number")


def test_every_effect_names_both_srdb_records_and_they_match_the_csv(srdb):
    data, studies = _csv(str(srdb)), {s["id"]: s for s in _result(str(srdb)).records["studies"]}
    equations = _equations(str(srdb))
    assert len(_effects(srdb)) > 200
    for effect in _effects(srdb):
        warmed_id, control_id, column, file = LOCATION.match(effect["source_location"]).groups()
        warmed, control = data.loc[warmed_id], data.loc[control_id]
        assert "warming" in treatment_factors(warmed.Manipulation), effect["id"]
        assert not treatment_factors(control.Manipulation) & {"warming", "heat_wave"}, effect["id"]
        assert (warmed.Study_number, warmed.Study_midyear) == (control.Study_number, control.Study_midyear)
        assert effect["study_id"].startswith(f"srdb{warmed.Study_number}-")
        assert studies[effect["study_id"]]["origin"] == "srdb"
        table = equations if file == "srdb-equations" else data
        assert (file == "srdb-equations") == effect["id"].endswith(EQUATION_CODES), effect["id"]
        t, c = float(table.loc[warmed_id, column]), float(table.loc[control_id, column])
        assert effect["mean_t"] == t and effect["mean_c"] == c, effect["id"]
        assert effect["yi"] == pytest.approx(math.log(t / c), abs=1e-6)


def test_no_heat_wave_or_control_among_the_warmed_arms(srdb):
    data = _csv(str(srdb))
    manipulations = {data.loc[LOCATION.match(e["source_location"]).group(1)].Manipulation
                     for e in _effects(srdb)}
    assert not [m for m in manipulations if re.search(r"heat ?wave|hot drought|control|^ck\b", m, re.I)]
    assert not manipulations & PLAIN_CONTROLS
    assert not [m for m in manipulations if m in ("Organic farm", "Open areas, OA", "Between trees, BT")]


def _arms(srdb):
    data = _csv(str(srdb))
    for effect in _effects(srdb):
        warmed_id, control_id, *_ = LOCATION.match(effect["source_location"]).groups()
        yield effect, data.loc[warmed_id], data.loc[control_id]


def test_each_control_is_plain_or_carries_exactly_the_other_factors(srdb):
    """A clean contrast's control has the warmed arm's other factors (a precipitation
    increase counting as water addition); else it is a plain control."""
    kinds = Counter()
    for effect, warmed, control in _arms(srdb):
        other = matching_factors(warmed) - {"warming"}
        confounded = (effect.get("quality_flag") or "").startswith("confounded: ")
        if other and not confounded:
            assert matching_factors(control) == other, effect["id"]
            kinds["clean multi-factor"] += 1
        else:
            assert control.Manipulation in PLAIN_CONTROLS, (effect["id"], control.Manipulation)
            kinds["confounded" if confounded else "single-factor"] += 1
        assert bool(other) == bool(effect.get("other_factors")), effect["id"]
    assert kinds["single-factor"] and kinds["clean multi-factor"]


# -- synthetic SRDB rows: the pairing rules on tables small enough to read ---------------------

def _row(number: int, manipulation: str, year: float = 2014.0, level: str = "", **values) -> dict:
    """One srdb-data.csv row as :func:`kb.importers.srdb.read` gives it (study 1, one site)."""
    row = dict.fromkeys(REQUIRED, "") | dict.fromkeys(importer.NUMERIC)
    row |= {"Record_number": str(number), "Study_number": 1, "Study_midyear": year,
            "Manipulation": manipulation, "Manipulation_level": level, "Site_name": "Test site",
            "Biome": "Temperate", "Ecosystem_type": "Forest", "line": number, "equation": None}
    return row | values


def _fit(number: int, **values) -> dict:
    """One srdb-equations.csv row (an exponential fit over 0-20 °C at 5 cm unless told)."""
    fit = dict.fromkeys(importer.EQUATION_COLUMNS)
    fit |= {"Record_number": str(number), "Model_type": "Exponential, R=a exp(b(T-c))",
            "Model_temp_min": 0.0, "Model_temp_max": 20.0, "T_depth": 5.0}
    return fit | values


def _built(rows: list[dict]):
    result = importer.build((rows, {}))
    return result.records["effects"], dict(result.summary)


def _skipped(summary: dict, reason: str) -> int:
    return summary[f"  skipped: {importer.SKIP_REASONS[reason]}"]


def _control_of(effect: dict) -> str:
    return LOCATION.match(effect["source_location"]).group(2)


@pytest.mark.parametrize(("controls", "expected_control", "flag"), [
    ([("None", "")], "1", "confounded: drought"),          # no drought control: confounded
    ([("None", ""), ("Drought", "")], "2", None),            # the matching other-factor control
], ids=["plain-only", "matching"])
def test_a_multi_factor_arm_takes_the_control_with_its_other_factors(controls, expected_control, flag):
    rows = [_row(i, m, level=lv, Rs_annual=100.0) for i, (m, lv) in enumerate(controls, 1)]
    rows.append(_row(9, "Warmed, drought", Rs_annual=120.0))
    (effect,), _ = _built(rows)
    assert _control_of(effect) == expected_control and effect.get("quality_flag") == flag
    assert effect["other_factors"] == "drought"


@pytest.mark.parametrize(("level", "expected_control", "flag"), [
    ("23% more Precipitation", "2", None),                  # record 8030's words: water added
    ("30% added precipitation", "2", None),
    ("30% decrease", "1", "confounded: irrigation"),        # less water is not irrigation
    ("", "1", "confounded: irrigation"),                    # the text does not say more water
])
def test_a_precipitation_increase_is_the_control_of_a_wetted_arm(level, expected_control, flag):
    """Issue fix: "Warmed, wetted" (record 8031) pairs with "Precipitation amount change,
    23% more Precipitation" (8030), not with the un-manipulated control."""
    rows = [_row(1, "None", Rs_annual=100.0),
            _row(2, "Precipitation amount change", level=level, Rs_annual=110.0),
            _row(3, "Warmed, wetted", level="2.5 degrees celcius", Rs_annual=120.0)]
    (effect,), _ = _built(rows)
    assert _control_of(effect) == expected_control and effect.get("quality_flag") == flag
    assert ("water addition" in effect["notes"]) == (flag is None)


def test_record_8031_is_paired_with_the_precipitation_increase_8030(srdb):
    (effect,) = [e for e in _effects(srdb) if e["id"].endswith("/8031-rs")]
    assert LOCATION.match(effect["source_location"]).groups()[:2] == ("8031", "8030")
    assert effect["other_factors"] == "irrigation" and "confounded" not in (effect.get("quality_flag") or "")


@pytest.mark.parametrize(("second_year", "second_values", "effects", "duplicates"), [
    (2014.5, (750.0, 600.0), 1, 1),   # study 13671: the same entry with Study_midyear 2014.5
    (2014.0, (750.0, 600.0), 1, 1),   # the same year
    (2015.0, (750.0, 600.0), 2, 0),   # a year later: another year, even with equal values
    (2014.5, (760.0, 600.0), 2, 0),   # another value: another entry
])
def test_copies_within_half_a_year_are_duplicates(second_year, second_values, effects, duplicates):
    warmed, control = second_values
    rows = [_row(1, "None", Rs_annual=600.0), _row(2, "Warmed", Rs_annual=750.0),
            _row(3, "None", year=second_year, Rs_annual=control),
            _row(4, "Warmed", year=second_year, Rs_annual=warmed)]
    found, summary = _built(rows)
    assert len(found) == effects and _skipped(summary, "duplicate") == duplicates
    assert ("entered again as records 4 vs " in found[0]["notes"]) == bool(duplicates)


def test_study_13671_entered_twice_gives_each_contrast_once(srdb):
    """Records 12211-12217 repeat 10726-10732 (Study_midyear 2014.5 for 2014, Site_ID empty)."""
    effects = [e for e in _effects(srdb) if e["study_id"].startswith("srdb13671-")]
    warmed = sorted(LOCATION.match(e["source_location"]).group(1) for e in effects)
    assert warmed == ["10727", "10729", "10732"]
    notes = {e["id"]: e["notes"] for e in effects}
    assert "entered again as records 12214 vs 12213 (Study_midyear 2014.5)" in notes["srdb13671-1/10729-rs"]
    assert "entered again as records 12217 vs 12216" in notes["srdb13671-2/10732-rs"]


def test_a_synthesis_can_leave_out_the_confounded_contrasts(empty_kb):
    rows = [_row(1, "None", Rs_annual=100.0, Rs_annual_err=5.0),
            _row(2, "Warmed", Rs_annual=120.0, Rs_annual_err=6.0),
            _row(3, "Warmed, drought", Rs_annual=90.0, Rs_annual_err=4.0)]
    add_new(empty_kb, importer.build((rows, {})).records)
    effects = empty_kb.effects(origin="srdb")
    flags = effects.quality_flag.fillna("")
    clean = effects[~flags.str.startswith("confounded: ")]
    assert len(effects) == 2 and clean.id.tolist() == ["srdb1-1/2-rs"]
    table = evidence.synthesize(clean, by="ecosystem", response="soil_respiration")
    assert table.k_effects.sum() == 1


def test_effects_without_a_variance_say_why_and_still_vote(seeded_kb):
    effects = seeded_kb.effects(origin="srdb")
    no_vi = effects[effects.vi.isna()]
    assert len(no_vi) and no_vi.variance_note.str.startswith("no vi: ").all()
    table = evidence.synthesize(effects, by="response")
    rh = table[table.response == "heterotrophic_respiration"].iloc[0]
    assert rh.k_effects == 0 and rh.n_increase + rh.n_decrease > 0  # Rh has no error column: votes only


# -- Q10 and R10 from srdb-equations.csv ----------------------------------------------------------

def _equation_arms(srdb, code):
    equations = _equations(str(srdb))
    for effect in _effects(srdb):
        if effect["id"].endswith(f"-{code}"):
            warmed_id, control_id, column, _ = LOCATION.match(effect["source_location"]).groups()
            yield effect, equations.loc[warmed_id], equations.loc[control_id], column


FIT = ["Model_type", "Model_temp_min", "Model_temp_max", "T_depth"]
GOODNESS = ["Model_N", "Model_R2"]


@pytest.mark.parametrize("code", EQUATION_CODES)
def test_temperature_responses_compare_the_same_model_range_and_depth(srdb, code):
    found = list(_equation_arms(srdb, code))
    assert len(found) > 10
    for effect, warmed, control, column in found:
        assert warmed[FIT].tolist() == control[FIT].tolist(), effect["id"]
        curve = [c for c in warmed.index if c not in GOODNESS]
        assert warmed[curve].tolist() != control[curve].tolist(), effect["id"]  # not one fit twice
        assert column == ("R10" if code == "r10" else column) and effect["vi"] is None
        assert effect["variance_note"].startswith("no vi: srdb-equations.csv gives no standard error")


def test_one_q10_per_warmed_record_over_one_range_both_arms_give(srdb):
    records = Counter()
    for effect, warmed, control, column in _equation_arms(srdb, "q10"):
        records[LOCATION.match(effect["source_location"]).group(1)] += 1
        given = [c for c in Q10_RANGES if warmed[c] and control[c]]
        assert given and column == given[0], effect["id"]  # the first range both give
        if column.startswith("Q10_other"):
            limits = [f"{column}_temp_min", f"{column}_temp_max"]
            assert warmed[limits].tolist() == control[limits].tolist()
        assert effect["units"] == "dimensionless" and effect["response"] == "q10"
    assert max(records.values()) == 1


def _fits(rows, **changes) -> list[dict]:
    """Control (1) and warmed (2) rows of a study year, each with its own fit."""
    control = _row(1, "None") | {"equation": _fit(1, Q10_5_15=3.0, R10=1.2)}
    warmed = _row(2, "Warmed") | {"equation": _fit(2, Q10_5_15=2.5, R10=1.1) | changes}
    return [control, warmed, *rows]


@pytest.mark.parametrize(("changes", "reason", "effects"), [
    ({}, None, 2),                                                       # Q10 and R10 pairs
    ({"Model_temp_min": 3.0, "Model_temp_max": 23.0}, "different_fit", 0),  # warmed plots fitted warmer
    ({"T_depth": 10.0}, "different_fit", 0),
    ({"Model_type": "Q10, R=a b^((T-c)/10)"}, "different_fit", 0),
    ({"Q10_5_15": 3.0, "R10": 1.2}, "same_fit", 0),                      # one fit on both records
])
def test_fits_pair_only_with_the_same_model_range_and_depth(changes, reason, effects):
    found, summary = _built(_fits([], **changes))
    assert len(found) == effects
    if reason:
        assert _skipped(summary, reason) == 2  # Q10 and R10


def test_a_fit_repeated_for_the_next_year_is_one_estimate():
    later = [_row(3, "None", year=2015.0) | {"equation": _fit(3, Q10_5_15=3.0, R10=1.2, Model_R2=0.7)},
             _row(4, "Warmed", year=2015.0) | {"equation": _fit(4, Q10_5_15=2.5, R10=1.1)}]
    found, summary = _built(_fits(later))
    assert [e["id"] for e in found] == ["srdb1-1/2-q10", "srdb1-1/2-r10"]
    assert _skipped(summary, "repeated_fit") == 2
    assert "entered again as records 4 vs 3 (Study_midyear 2015)" in found[0]["notes"]


def test_a_q10_that_changes_with_the_range_is_taken_at_5_to_15_and_all_ranges_are_noted():
    control = _row(1, "None") | {"equation": _fit(1, Q10_0_10=5.2, Q10_5_15=3.08, Q10_10_20=1.69)}
    warmed = _row(2, "Warmed") | {"equation": _fit(2, Q10_0_10=4.33, Q10_5_15=1.54, Q10_10_20=1.85)}
    (effect,), _ = _built([control, warmed])
    assert (effect["mean_t"], effect["mean_c"]) == (1.54, 3.08)
    assert "Q10_5_15 1.54 vs 3.08; Q10_0_10 4.33 vs 5.2; Q10_10_20 1.85 vs 1.69" in effect["notes"]


# -- site values, partitioning ----------------------------------------------------------------

def test_no_effect_is_made_of_a_value_every_record_of_its_study_repeats(srdb):
    """Issue: a column that does not change between warmed and control records is a site
    descriptor, never an effect."""
    data = _csv(str(srdb))
    for effect, warmed, _ in _arms(srdb):
        column = LOCATION.match(effect["source_location"]).group(3)
        if column in data.columns:
            values = data.loc[data.Study_number == warmed.Study_number, column]
            assert values[values != ""].nunique() > 1, effect["id"]
    assert not [e for e in _effects(srdb) if e["response"] == "soc_stock"]


@pytest.mark.parametrize(("study", "stock", "depth", "note"), [
    ("srdb6502-1", 12000.0, None, "C_soilmineral 12000 g C m-2, depth not given"),  # all 12 records
    ("srdb6618-1", 3100.0, None, "C_soilmineral 3100 g C m-2"),
    ("srdb14877-1", 8000.0, 10.0, "to 10 cm (C_soildepth)"),
    ("srdb11278-1", None, None, "warmed 3600 in record(s) 8558 8560 8562; control 4210"),
    ("srdb11148-1", None, None, "C_soilmineral (g C m-2) differs between the records"),
])
def test_site_soc_stock_only_where_warmed_and_control_agree(srdb, study, stock, depth, note):
    record = {s["id"]: s for s in _result(str(srdb)).records["studies"]}[study]
    assert (record.get("site_soc_stock_g_m2"), record.get("site_soc_depth_cm")) == (stock, depth)
    assert note in record["notes"]


@pytest.mark.parametrize(("values", "reason"), [
    # RC the same on every record (study 5114: 0.375), Rh = Rs x (1 - RC) on both arms
    ({"RC_annual": (0.375, 0.375), "Rh_annual": (500.0, 375.0), "Rs_annual": (800.0, 600.0)},
     {"RC_annual": "site_value", "Rh_annual": "derived"}),
    # Rh = Ra with Rh + Ra 20% off Rs on the warmed arm (study 7141)
    ({"Rh_annual": (500.0, 759.0), "Ra_annual": (500.0, 464.0), "Rs_annual": (1256.0, 1223.0),
      "RC_annual": (0.40, 0.38)},
     {"Rh_annual": "copied_partition", "Ra_annual": "copied_partition", "RC_annual": "copied_partition"}),
    # a consistent partition (study 4174, 2002)
    ({"Rh_annual": (600.0, 530.0), "Ra_annual": (300.0, 270.0), "Rs_annual": (900.0, 800.0),
      "RC_annual": (0.33, 0.34)}, {}),
], ids=["fixed-root-share", "copied", "consistent"])
def test_partition_values_that_are_not_responses_are_skipped(values, reason):
    warmed = _row(2, "Warmed", **{k: v[0] for k, v in values.items()})
    control = _row(1, "None", **{k: v[1] for k, v in values.items()})
    found, summary = _built([control, warmed])
    made = {e["id"].rsplit("-", 1)[1] for e in found}
    codes = {"Rs_annual": "rs", "Rh_annual": "rh", "Ra_annual": "ra", "RC_annual": "rc"}
    assert made == {codes[c] for c in values if c not in reason}
    for why in set(reason.values()):
        assert _skipped(summary, why) == list(reason.values()).count(why)


def test_root_contribution_and_autotrophic_respiration_are_effects(srdb):
    by_response = Counter(e["response"] for e in _effects(srdb))
    assert by_response["root_contribution"] > 10 and by_response["autotrophic_respiration"] > 10
    units = {e["response"]: e["units"] for e in _effects(srdb)}
    assert units["root_contribution"] == "fraction" and units["r10"] == "umol CO2 m-2 s-1"
    ids = {e["id"] for e in _effects(srdb)}
    assert not ids & {"srdb5114-1/3541-rh", "srdb5114-1/3541-rc", "srdb7141-1/5268-rh"}


@pytest.mark.parametrize(("text", "term"), [
    ("RC_annual", "root_contribution"), ("Ra_annual", "autotrophic_respiration"), ("R10", "r10"),
    ("Q10", "q10"), ("C_soilmineral", None),  # a site descriptor, never a response
])
def test_srdb_columns_map_to_their_responses(text, term):
    assert lookup("responses", text) == term


# -- study fields -----------------------------------------------------------------------------

@pytest.mark.parametrize(("label", "latitude", "elevation", "expected"), [
    ("Tundra", 74.5, None, "arctic"),        # Zackenberg-like: the Arctic
    ("Tundra", -66.5, None, "arctic"),
    ("Tundra", None, 2180.0, "alpine"),      # record 8365's site: Switzerland, 2180 m, no latitude
    ("Tundra", 46.5, 1600.0, "alpine"),
    ("Tundra", 56.13, 184.0, "not_reported"),  # neither arctic nor high
    ("Tundra", None, None, "not_reported"),
    ("Temperate", 46.5, 2180.0, "temperate"),
    ("Martian", 10.0, 10.0, "not_reported"),
])
def test_srdb_tundra_is_arctic_or_alpine_by_location(label, latitude, elevation, expected):
    row = _row(1, "Warmed", Biome=label, Latitude=latitude, Elevation=elevation)
    assert importer._biome_term(row) == expected


def test_the_swiss_alpine_site_is_not_arctic(srdb):
    study = {s["id"]: s for s in _result(str(srdb)).records["studies"]}["srdb8365-1"]
    assert study["biome"] == "alpine"
    assert study["elevation_m"] == pytest.approx(2180.0, abs=0.5)  # SRDB gives whole metres
    assert "SRDB Biome 'Tundra'" in study["notes"] and "read as alpine" in study["notes"]


@pytest.mark.parametrize(("field", "column", "value", "shown"), [
    ("elevation_m", "Elevation", 7556.0, False),   # Gongga (study 12210): the summit
    ("elevation_m", "Elevation", 3050.0, True),
    ("elevation_m", "Elevation", -600.0, False),
    ("mat_c", "MAT", 41.0, False),
    ("mat_c", "MAT", -5.0, True),
    ("map_mm", "MAP", 12000.0, False),
    ("lat", "Latitude", 91.0, False),
])
def test_implausible_site_values_are_left_out_and_noted(field, column, value, shown):
    fields, notes = importer.site_fields([_row(1, "None", **{column: value}),
                                          _row(2, "Warmed", **{column: value})])
    assert (fields[field] == value) == shown and (fields[field] is None) != shown
    assert bool(notes) != shown
    if not shown:
        assert f"SRDB gives {column} {value:g}" in notes[0] and "not shown" in notes[0]


def test_gongga_elevation_is_not_shown_and_the_notes_say_why(srdb):
    study = {s["id"]: s for s in _result(str(srdb)).records["studies"]}["srdb12210-1"]
    assert "elevation_m" not in study or study["elevation_m"] is None
    assert "SRDB gives Elevation 7556 m here; not shown" in study["notes"]


@pytest.mark.parametrize(("level", "medium"), [
    ("Air", "air"), ("Soil", "soil"), ("Air, soil", "air_and_soil"),
    ("2 °C in soil temp", "soil"), ("1.41°C increase in soil temperature", "soil"),
    ("~2 °C at a soil depth of 5 cm, equivalent to 90 mm precipitation per event", "soil"),
    ("Increased air temp by ~ 1 °C", "air"),
    ("5 g N m−2 yr−1, 2.5 °C increase in surface air temperature", "air"),
    ("+2.5 C", None), ("Heating wires buried at 7 cm and 20 cm", None), ("", None), (None, None),
])
def test_warming_medium_where_the_text_says(level, medium):
    assert warming_medium(level) == medium


def test_studies_record_the_medium_of_their_warming(srdb):
    media = {s["id"]: s.get("warming_medium") for s in _result(str(srdb)).records["studies"]}
    assert media["srdb13671-1"] == "soil" and media["srdb12210-1"] == "air"
    assert media["srdb4237-1"] is None  # its arms are "Air, soil" and "Soil": they differ


def test_q10_synthesis_by_biome_runs_as_votes(seeded_file, tmp_path):
    result = CliRunner().invoke(cli, ["--db", str(seeded_file), "synth", "--response", "q10",
                                      "--by", "biome"])
    assert result.exit_code == 0, result.output
    assert "votes only" in result.output and "srdb-equations.csv gives no standard error" in result.output


@cache
def _studies_csv(folder: str) -> pd.DataFrame:
    frame = pd.read_csv(Path(folder) / "srdb-studies.csv", encoding="mac_roman", dtype=str,
                        keep_default_na=False)
    return frame.set_index("Study_number")


def test_sources_are_the_studies_file_rows_as_pybtex_bibtex(srdb, seeded_kb):
    table = _studies_csv(str(srdb))
    sources = seeded_kb.db.execute("SELECT key, title, year, doi, bibtex FROM sources "
                                   "WHERE key LIKE 'srdb%'").fetchall()
    assert len(sources) == len(_result(str(srdb)).records["sources"])
    for key, title, year, doi, bibtex in sources:
        row = table.loc[key.removeprefix("srdb")]
        assert title == row.Title.strip() and year == int(row.PubYear)
        assert doi is None or doi.lower() in row.DOI.lower()
        entry = pybtex.database.parse_string(bibtex, "bibtex").entries[key]
        assert entry.fields["title"] == title and (doi is None or entry.fields["doi"] == doi)
        names = [n.strip() for n in row.Authors.split(";") if n.strip()]
        assert len(entry.persons["author"]) == len(names), key
        # "Harley, JL" keeps its surname; a name without a comma ("Peng Fei", 2 sources)
        # is passed as written, and BibTeX reads its last word as the surname
        first = entry.persons["author"][0]
        assert " ".join(first.last_names) in names[0], (key, names[0])


def test_study_sites_carry_the_coordinates_and_climate_of_their_records(srdb):
    data = _csv(str(srdb))
    records = _result(str(srdb)).records
    rows = {}
    for effect in records["effects"]:
        warmed_id, control_id, *_ = LOCATION.match(effect["source_location"]).groups()
        rows.setdefault(effect["study_id"], []).extend([data.loc[warmed_id], data.loc[control_id]])
    assert {s["id"] for s in records["studies"]} == set(rows)
    for study in records["studies"]:
        for field, column in (("lat", "Latitude"), ("lon", "Longitude"), ("mat_c", "MAT"),
                              ("map_mm", "MAP")):
            values = {float(r[column]) for r in rows[study["id"]] if r[column] not in ("", "NA")}
            assert study.get(field) == (values.pop() if len(values) == 1 else None), (study["id"], field)
    assert sum("lat" in s for s in records["studies"]) > 0.9 * len(records["studies"])


def test_variance_rule_is_stated_and_recomputable(srdb):
    data = _csv(str(srdb))
    with_vi = [e for e in _effects(srdb) if e.get("vi") is not None]
    assert with_vi
    for effect in with_vi:
        warmed_id, control_id, column, _ = LOCATION.match(effect["source_location"]).groups()
        assert column == "Rs_annual" and effect["variance_note"] == VARIANCE_NOTE
        w, c = data.loc[warmed_id], data.loc[control_id]
        expected = (float(w.Rs_annual_err) / float(w.Rs_annual)) ** 2 + \
                   (float(c.Rs_annual_err) / float(c.Rs_annual)) ** 2
        assert effect["vi"] == pytest.approx(expected, rel=1e-5)
    for effect in _effects(srdb):
        sign = "increase" if effect["yi"] > 0 else "decrease" if effect["yi"] < 0 else "no_change"
        assert effect["direction"] == sign
        if effect.get("vi") is None:
            assert effect["variance_note"].startswith("no vi: ")


def test_confounded_contrasts_are_flagged_and_carry_their_other_factors(srdb):
    for effect in _effects(srdb):
        flag = effect.get("quality_flag") or ""
        if "confounded" in flag:
            assert effect["other_factors"] and f"confounded: {effect['other_factors']}" in flag
    assert any(e.get("other_factors") and "confounded" not in (e.get("quality_flag") or "")
               for e in _effects(srdb))


def test_summary_counts_add_up(srdb):
    counts = dict(_result(str(srdb)).summary)
    kinds = ["  warmed arms (warming factor)", "  heat-wave records (not warming)",
             "  controls (no manipulation)", "  other manipulations"]
    assert sum(counts[k] for k in kinds) == counts["records read"] == len(_csv(str(srdb)))
    fitted = set(_equations(str(srdb)).index) & set(_csv(str(srdb)).index)
    assert counts["records with a fit in srdb-equations.csv"] == len(fitted)
    skipped = sum(n for label, n in counts.items() if label.startswith("  skipped"))
    columns = ", ".join(importer.RESPONSES)
    assert counts["  pairs made (effects)"] + skipped == counts[f"warmed arm x response values ({columns})"]
    assert counts["  pairs made (effects)"] == len(_effects(srdb)) == counts["effects by SRDB column"]
    by_response = Counter(e["response"] for e in _effects(srdb))
    for column, (response, *_) in importer.RESPONSES.items():
        assert counts[f"  {column} ({response})"] == by_response[response] > 0
    kinds = ["single-factor warming contrasts", "confounded multi-factor contrasts",
             "multi-factor contrasts against the matching other-factor control"]
    assert sum(counts[k] for k in kinds) == len(_effects(srdb))
    studies = _result(str(srdb)).records["studies"]
    assert counts["  with a site SOC stock (C_soilmineral, same on warmed and control)"] == \
        sum("site_soc_stock_g_m2" in s and s["site_soc_stock_g_m2"] is not None for s in studies) > 0


@pytest.mark.parametrize(("text", "expected"), [
    ("+2.5 C", 2.5), ("2 °C", 2.0), ("+3C", 3.0), ("5 degC", 5.0), ("1°C", 1.0),
    ("2.5 degrees celcius", 2.5), ("by 2.6 degrees Celsius", 2.6), ("700 ppm, +5 C", 5.0),
    ("+4 C, +30 Pa", 4.0), ("~2 °C at a soil depth of 5 cm", 2.0),
    ("5 g N m−2 yr−1, 2.5 °C increase in surface air temperature", 2.5),
    ("17 W m−1 at 230 V, Temperature increase of ~5 °C", 5.0),
    ("150 W m-2", None), ("150watts m-2", None), ("1.83", None), ("28% Warmer", None),
    ("+0.2-2 C", None), ("1.23-1.66 degrees C.", None), ("> +2.5C", None),
    ("+5 C day, +2 C night", None), ("Heating wires buried at 7 cm and 20 cm", None),
    ("Air, soil", None), ("", None), (None, None), ("40 C", None),
])
def test_warming_level_parsing(text, expected):
    assert parse_warming_c(text) == expected


def test_committed_seed_equals_a_fresh_regeneration_byte_for_byte(srdb, tmp_path):
    out = tmp_path / "srdb_warming.yaml"
    result = CliRunner().invoke(cli, ["--db", str(tmp_path / "x.db"), "import-srdb",
                                           str(srdb), "--write-seed", str(out)])
    assert result.exit_code == 0, result.output
    assert out.read_bytes() == SEED.read_bytes()
    assert not (tmp_path / "x.db").exists()


def test_seed_file_loads_on_its_own_on_top_of_the_references(empty_kb):
    empty_kb.add_file(ROOT / "kb" / "seed" / "references.bib", SEED)
    assert empty_kb.counts()["effects"] > 200


def test_reimport_changes_nothing_and_says_so(srdb, db_path):
    KnowledgeBase(db_path, seed=False).close()
    args = ["--db", str(db_path), "import-srdb", str(srdb)]
    first = CliRunner().invoke(cli, args)
    assert first.exit_code == 0 and "added" in first.output, first.output
    with KnowledgeBase(db_path) as kb:
        before = snapshot(kb)
    second = CliRunner().invoke(cli, args)
    assert second.exit_code == 0 and "nothing new" in second.output, second.output
    with KnowledgeBase(db_path) as kb:
        assert snapshot(kb) == before


def test_reimport_into_a_seeded_base_changes_nothing(srdb, seeded_kb, db_path):
    """The shipped seed is the import's output: importing the raw files on top adds nothing."""
    before = snapshot(seeded_kb)
    total = sum(len(rows) for rows in _result(str(srdb)).records.values())
    result = CliRunner().invoke(cli, ["--db", str(db_path), "import-srdb", str(srdb)])
    assert result.exit_code == 0, result.output
    assert f"nothing new: all {total} records are already in" in result.output
    assert snapshot(seeded_kb) == before


def _copy(srdb: Path, tmp_path: Path) -> Path:
    folder = tmp_path / "srdb"
    folder.mkdir()
    for name in ENCODING:
        shutil.copy(srdb / name, folder / name)
    return folder


DROP = object()  # remove the field: the row gets one value fewer than the header
LATIN1_E = "\udce9"  # written with surrogateescape: the byte 0xe9 (Latin-1 "é"), not UTF-8
ENCODING = {"srdb-data.csv": ("utf-8", "\n"), "srdb-studies.csv": ("mac_roman", "\r"),
            "srdb-equations.csv": ("utf-8", "\n")}


def _corrupt(path: Path, row: int, column: str, value) -> int:
    """Set (or drop) one field of row ``row`` (0 = header); return the line the row starts on."""
    encoding, terminator = ENCODING[path.name]
    with open(path, newline="", encoding=encoding) as handle:
        rows = list(csv.reader(handle))
    index = rows[0].index(column)
    if value is DROP:
        del rows[row][index]
    else:
        rows[row][index] = value
    with open(path, "w", newline="", encoding=encoding, errors="surrogateescape") as handle:
        csv.writer(handle, lineterminator=terminator).writerows(rows)
    # some fields hold line breaks: a row starts after all the lines of the rows before it
    return 1 + sum(1 + len(re.findall(r"\r\n|\r|\n", "".join(r))) for r in rows[:row])


@pytest.mark.parametrize(("name", "row", "column", "value", "problem"), [
    ("srdb-data.csv", 123, "Rs_annual", "abc", "column Rs_annual: 'abc' is not a number"),
    ("srdb-data.csv", 5000, "Rs_annual_err", "1,5", "column Rs_annual_err: '1,5' is not a number"),
    ("srdb-data.csv", 7, "Latitude", "inf", "column Latitude: 'inf' is not a number"),
    ("srdb-data.csv", 40, "Study_number", "12a", "column Study_number: '12a' is not a number"),
    ("srdb-data.csv", 11000, "Rh_annual", "NaN", "column Rh_annual: 'NaN' is not a number"),
    ("srdb-data.csv", 300, "Site_name", f"Caf{LATIN1_E}", "column Site_name: byte 0xe9 is not UTF-8"),
    ("srdb-data.csv", 8000, "Notes", DROP, "84 values, but the header has 85 columns"),
    ("srdb-data.csv", 0, "Rs_annual", "Rs_total", "column Rs_annual is missing"),
    ("srdb-studies.csv", 50, "Study_number", "5x", "column Study_number: '5x' is not a whole number"),
    ("srdb-studies.csv", 900, "PubYear", "19.8", "column PubYear: '19.8' is not a four-digit year"),
    ("srdb-studies.csv", 0, "DOI", "doi_link", "column DOI is missing"),
    ("srdb-equations.csv", 1300, "Q10_5_15", "2,5", "column Q10_5_15: '2,5' is not a number"),
    ("srdb-equations.csv", 20, "R10", "inf", "column R10: 'inf' is not a number"),
    ("srdb-equations.csv", 3000, "Record_number", "12x", "column Record_number: '12x' is not a record number"),
    ("srdb-equations.csv", 2, "Record_number", "1", "column Record_number: '1' appears twice"),
    ("srdb-equations.csv", 900, "T_depth", DROP, "25 values, but the header has 26 columns"),
    ("srdb-equations.csv", 0, "Model_type", "Model", "column Model_type is missing"),
])
def test_a_corrupted_file_is_refused_naming_file_line_and_column_and_nothing_is_written(
        srdb, tmp_path, db_path, name, row, column, value, problem):
    folder = _copy(srdb, tmp_path)
    line = _corrupt(folder / name, row, column, value)
    _assert_refused(folder, db_path, f"{name} line {line}" + (": " if row == 0 or value is DROP
                                                                else ", ") + problem)


def test_a_studies_file_saved_as_utf8_is_refused_at_its_first_non_ascii_field(srdb, tmp_path, db_path):
    folder = _copy(srdb, tmp_path)
    path = folder / "srdb-studies.csv"
    text = path.read_bytes().decode("mac_roman")
    path.write_bytes(text.encode("utf-8"))
    lines = text.split("\r")
    number = next(i for i, line in enumerate(lines) if not line.isascii())
    fields = next(csv.reader([lines[number]]))
    column = lines[0].split(",")[next(i for i, f in enumerate(fields) if not f.isascii())]
    _assert_refused(folder, db_path, f"srdb-studies.csv line {number + 1}, column {column}: ",
                    "is UTF-8 text, but the file must be mac_roman")


def _assert_refused(folder: Path, db_path: Path, *parts: str) -> None:
    """The CLI exits 1 with one line naming the problem, and the database is unchanged."""
    KnowledgeBase(db_path, seed=False).close()
    with KnowledgeBase(db_path) as kb:
        before = snapshot(kb)
    result = CliRunner().invoke(cli, ["--db", str(db_path), "import-srdb", str(folder)])
    assert result.exit_code == 1, result.output
    assert result.output.count("\n") == 1 and all(p in result.output for p in parts), result.output
    with KnowledgeBase(db_path) as kb:
        assert snapshot(kb) == before


def test_a_refused_import_creates_no_database(srdb, tmp_path):
    folder = _copy(srdb, tmp_path)
    _corrupt(folder / "srdb-studies.csv", 50, "Study_number", "5x")
    result = CliRunner().invoke(cli, ["--db", str(tmp_path / "new.db"), "import-srdb", str(folder)])
    assert result.exit_code == 1 and not (tmp_path / "new.db").exists()


def test_an_error_is_raised_before_anything_is_added(srdb, tmp_path, empty_kb):
    folder = _copy(srdb, tmp_path)
    _corrupt(folder / "srdb-data.csv", 12000, "Rs_annual", "abc")  # after all warming rows
    before = snapshot(empty_kb)
    with pytest.raises(FileFormatError, match="column Rs_annual: 'abc' is not a number"):
        add_new(empty_kb, import_srdb(folder).records)
    assert snapshot(empty_kb) == before


def test_a_missing_file_is_refused(tmp_path):
    with pytest.raises(FileFormatError, match="no such file"):
        import_srdb(tmp_path)

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
from kb.importers.srdb import VARIANCE_NOTE, import_srdb, parse_warming_c
from kb.vocab import treatment_factors

SEED = ROOT / "kb" / "seed" / "srdb_warming.yaml"
LOCATION = re.compile(r"^SRDB-V5 records ([\d.]+) \(warmed\) vs ([\d.]+) \(control\), "
                      r"column (\w+), srdb-data\.csv @35a61e1$")
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


def test_every_effect_names_both_srdb_records_and_they_match_the_csv(srdb):
    data, studies = _csv(str(srdb)), {s["id"]: s for s in _result(str(srdb)).records["studies"]}
    assert len(_effects(srdb)) > 200
    for effect in _effects(srdb):
        warmed_id, control_id, column = LOCATION.match(effect["source_location"]).groups()
        warmed, control = data.loc[warmed_id], data.loc[control_id]
        assert "warming" in treatment_factors(warmed.Manipulation), effect["id"]
        assert not treatment_factors(control.Manipulation) & {"warming", "heat_wave"}, effect["id"]
        assert (warmed.Study_number, warmed.Study_midyear) == (control.Study_number, control.Study_midyear)
        assert effect["study_id"].startswith(f"srdb{warmed.Study_number}-")
        assert studies[effect["study_id"]]["origin"] == "srdb"
        assert effect["mean_t"] == float(warmed[column]) and effect["mean_c"] == float(control[column])
        assert effect["yi"] == pytest.approx(math.log(float(warmed[column]) / float(control[column])), abs=1e-6)


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
        warmed_id, control_id, _ = LOCATION.match(effect["source_location"]).groups()
        yield effect, data.loc[warmed_id], data.loc[control_id]


def test_each_control_is_plain_or_carries_exactly_the_other_factors(srdb):
    """A clean contrast's control has the warmed arm's other factors; else it is a plain control."""
    kinds = Counter()
    for effect, warmed, control in _arms(srdb):
        other = treatment_factors(warmed.Manipulation) - {"warming"}
        confounded = (effect.get("quality_flag") or "").startswith("confounded: ")
        if other and not confounded:
            assert treatment_factors(control.Manipulation) == other, effect["id"]
            kinds["clean multi-factor"] += 1
        else:
            assert control.Manipulation in PLAIN_CONTROLS, (effect["id"], control.Manipulation)
            kinds["confounded" if confounded else "single-factor"] += 1
        assert bool(other) == bool(effect.get("other_factors")), effect["id"]
    assert kinds["single-factor"] and kinds["clean multi-factor"] and kinds["confounded"]


def test_a_confounded_contrast_has_no_matching_control_in_its_study_year(srdb):
    data = _csv(str(srdb))
    for effect, warmed, _ in _arms(srdb):
        if not (effect.get("quality_flag") or "").startswith("confounded: "):
            continue
        other = treatment_factors(warmed.Manipulation) - {"warming"}
        same = data[(data.Study_number == warmed.Study_number)
                    & (data.Study_midyear == warmed.Study_midyear)]
        assert not [m for m in same.Manipulation if treatment_factors(m) == other], effect["id"]


def test_a_synthesis_can_leave_out_the_confounded_contrasts(seeded_kb):
    effects = seeded_kb.effects(origin="srdb")
    flags = effects.quality_flag.fillna("")
    clean = effects[~flags.str.startswith("confounded: ")]
    assert 0 < len(effects) - len(clean) == flags.str.contains("confounded").sum()
    assert clean.other_factors.isna().sum() == (effects.other_factors.isna()).sum()
    table = evidence.synthesize(clean, by="ecosystem", response="soil_respiration")
    assert table.k_effects.sum() == clean[(clean.response == "soil_respiration") & clean.vi.notna()].shape[0]


def test_effects_without_a_variance_say_why_and_still_vote(seeded_kb):
    effects = seeded_kb.effects(origin="srdb")
    no_vi = effects[effects.vi.isna()]
    assert len(no_vi) and no_vi.variance_note.str.startswith("no vi: ").all()
    table = evidence.synthesize(effects, by="response")
    rh = table[table.response == "heterotrophic_respiration"].iloc[0]
    assert rh.k_effects == 0 and rh.n_increase + rh.n_decrease > 0  # Rh has no error column: votes only


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
        warmed_id, control_id, _ = LOCATION.match(effect["source_location"]).groups()
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
        warmed_id, control_id, column = LOCATION.match(effect["source_location"]).groups()
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
    skipped = sum(n for label, n in counts.items() if label.startswith("  skipped"))
    total = counts["warmed arm x response values (Rs_annual, Rh_annual, Rs_growingseason)"]
    assert counts["  pairs made (effects)"] + skipped == total
    assert counts["  pairs made (effects)"] == len(_effects(srdb))
    kinds = ["single-factor warming contrasts", "confounded multi-factor contrasts",
             "multi-factor contrasts against the matching other-factor control"]
    assert sum(counts[k] for k in kinds) == len(_effects(srdb))


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
    for name in ("srdb-data.csv", "srdb-studies.csv"):
        shutil.copy(srdb / name, folder / name)
    return folder


DROP = object()  # remove the field: the row gets one value fewer than the header
LATIN1_E = "\udce9"  # written with surrogateescape: the byte 0xe9 (Latin-1 "é"), not UTF-8
ENCODING = {"srdb-data.csv": ("utf-8", "\n"), "srdb-studies.csv": ("mac_roman", "\r")}


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

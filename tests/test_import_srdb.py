"""SRDB warming import on the real files in ../shared/data/srdb: traceability, rules, seed, bad input."""

from __future__ import annotations

import csv
import math
import re
import shutil
from functools import cache
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner
from conftest import ROOT, snapshot

from kb import KnowledgeBase
from kb.cli import cli
from kb.errors import FileFormatError
from kb.importers import add_new
from kb.importers.srdb import VARIANCE_NOTE, import_srdb, parse_warming_c
from kb.vocab import treatment_factors

SEED = ROOT / "kb" / "seed" / "srdb_warming.yaml"
LOCATION = re.compile(r"^SRDB-V5 records ([\d.]+) \(warmed\) vs ([\d.]+) \(control\), "
                      r"column (\w+), srdb-data\.csv @35a61e1$")
pytestmark = pytest.mark.shared_data

if "import-srdb" not in cli.commands:  # until the lead registers it in kb/cli.py
    from kb.importers import commands

    cli.add_command(commands.import_srdb)


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
    assert not [m for m in manipulations if re.search(r"heat ?wave|^none$|^control$", m, re.I)]
    assert not [m for m in manipulations if m in ("Organic farm", "Open areas, OA", "Between trees, BT")]


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
            assert effect.get("variance_note") is None


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


def _copy(srdb: Path, tmp_path: Path) -> Path:
    folder = tmp_path / "srdb"
    folder.mkdir()
    for name in ("srdb-data.csv", "srdb-studies.csv"):
        shutil.copy(srdb / name, folder / name)
    return folder


def _corrupt(path: Path, row: int, column: str, value: str) -> int:
    """Set one field of data row ``row``; return the physical line the row starts on."""
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    rows[row][rows[0].index(column)] = value
    with open(path, "w", newline="", encoding="utf-8") as handle:
        csv.writer(handle, lineterminator="\n").writerows(rows)
    if row == 0:
        return 1
    lines = path.read_text(encoding="utf-8").split("\n")
    prefix = ",".join(rows[row][:3]) + ","  # Record_number, Entry_date, Study_number
    return 1 + next(i for i, line in enumerate(lines) if line.startswith(prefix))


@pytest.mark.parametrize(("row", "column", "value", "message"), [
    (123, "Rs_annual", "abc", "column Rs_annual: 'abc' is not a number"),
    (5000, "Rs_annual_err", "1,5", "column Rs_annual_err: '1,5' is not a number"),
    (7, "Latitude", "inf", "column Latitude: 'inf' is not a number"),
    (40, "Study_number", "12a", "column Study_number: '12a' is not a number"),
    (11000, "Rh_annual", "NaN", "column Rh_annual: 'NaN' is not a number"),
    (0, "Rs_annual", "Rs_total", ": column Rs_annual is missing"),
])
def test_a_corrupted_file_is_refused_with_row_and_column_and_nothing_is_written(
        srdb, tmp_path, empty_kb, row, column, value, message):
    folder = _copy(srdb, tmp_path)
    line = _corrupt(folder / "srdb-data.csv", row, column, value)
    before = snapshot(empty_kb)
    with pytest.raises(FileFormatError) as caught:
        add_new(empty_kb, import_srdb(folder).records)
    assert f"srdb-data.csv line {line}{'' if row == 0 else ', '}{message}" in str(caught.value)
    assert row != 123 or line == 124
    assert snapshot(empty_kb) == before


def test_cli_reports_a_corrupted_file_in_one_line(srdb, tmp_path, db_path):
    folder = _copy(srdb, tmp_path)
    _corrupt(folder / "srdb-data.csv", 123, "Rs_annual", "abc")
    KnowledgeBase(db_path, seed=False).close()
    result = CliRunner().invoke(cli, ["--db", str(db_path), "import-srdb", str(folder)])
    assert result.exit_code == 1
    assert "srdb-data.csv line 124, column Rs_annual: 'abc' is not a number" in result.output
    with KnowledgeBase(db_path) as kb:
        assert kb.counts()["effects"] == 0


def test_a_missing_file_is_refused(tmp_path):
    with pytest.raises(FileFormatError, match="no such file"):
        import_srdb(tmp_path)

"""COSORE Terracosm import on the real files: chamber means, n = chambers, seed, bad input."""

from __future__ import annotations

import math
import shutil
from datetime import datetime, timedelta
from functools import cache
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner
from conftest import ROOT, snapshot

from kb import KnowledgeBase
from kb.cli import cli
from kb.errors import FileFormatError
from kb.importers.cosore import STUDY_ID, effect_records, import_cosore
from kb.records import PART_OF, is_part_of

SEED = ROOT / "kb" / "seed" / "cosore_terracosm.yaml"
FOLDER = "cosore_phillips_terracosm_warming"
PORTS = {"control": [2, 6, 10, 14], "symmetric": [3, 5, 11, 13], "asymmetric": [4, 7, 9, 12]}
pytestmark = pytest.mark.shared_data


@pytest.fixture
def cosore(shared_data) -> Path:
    return shared_data / FOLDER


@cache
def _result(folder: str):
    return import_cosore(folder)


@cache
def _port_means(folder: str) -> pd.DataFrame:
    """Chamber means per month and for the season, computed independently with pandas.

    Month: mean of the chamber's hourly fluxes, chambers with >= 24 of them. Season: the
    monthly means weighted by the days each month has between the first and last day of
    data, for chambers with a monthly mean in every month (module docstring's rule).
    """
    data = pd.read_csv(Path(folder) / "data.csv", parse_dates=["CSR_TIMESTAMP_BEGIN"])
    data["month"] = data.CSR_TIMESTAMP_BEGIN.dt.strftime("%Y-%m")
    monthly = data.groupby(["month", "CSR_PORT"]).CSR_FLUX_CO2.agg(["mean", "count"]).reset_index()
    monthly = monthly[monthly["count"] >= 24]
    days = pd.date_range(data.CSR_TIMESTAMP_BEGIN.min().normalize(),
                         data.CSR_TIMESTAMP_BEGIN.max().normalize()).strftime("%Y-%m").value_counts()
    complete = monthly.groupby("CSR_PORT").month.nunique() == len(days)
    full = monthly[monthly.CSR_PORT.map(complete)].assign(days=lambda f: f.month.map(days))
    season = full.groupby("CSR_PORT").apply(
        lambda f: pd.Series({"mean": (f["mean"] * f.days).sum() / f.days.sum(),
                             "count": f["count"].sum()}), include_groups=False)
    season["month"] = "season"
    return pd.concat([monthly, season.reset_index()])


def _arm(means: pd.DataFrame, label: str, ports: list[int]) -> tuple[float, float, int]:
    rows = means[(means.month == label) & means.CSR_PORT.isin(ports)]
    return rows["mean"].mean(), rows["mean"].std(ddof=1), len(rows)


def test_effects_are_chamber_means_with_n_chambers_not_hours(cosore):
    means = _port_means(str(cosore))
    effects = _result(str(cosore)).records["effects"]
    assert len(effects) == 2 * 7  # season + May..October, symmetric and asymmetric
    for effect in effects:
        code, _, label = effect["id"].split("/")[1].partition("-")
        mean_t, sd_t, n_t = _arm(means, label, PORTS[code])
        mean_c, sd_c, n_c = _arm(means, label, PORTS["control"])
        assert (effect["n_t"], effect["n_c"]) == (n_t, n_c)
        assert n_t <= 4 and n_c <= 4
        assert effect["mean_t"] == pytest.approx(mean_t, abs=1e-6)
        assert effect["sd_t"] == pytest.approx(sd_t, abs=1e-6)
        assert effect["sd_c"] == pytest.approx(sd_c, abs=1e-6)
        assert effect["yi"] == pytest.approx(math.log(mean_t / mean_c), abs=1e-5)
        assert "pseudo-replicates" in effect["variance_note"]
        assert effect["warming_c"] == 3.5 and effect["measure"] == "ROM"
    season = [e for e in effects if e["id"].endswith("-season")]
    # ports 5 (symmetric) and 7 (asymmetric) have no data in August and September
    assert [(e["n_t"], e["n_c"]) for e in season] == [(3, 4), (3, 4)]
    assert "Left out: port(s) 5 " in season[0]["notes"] and "Left out: port(s) 7 " in season[1]["notes"]


def test_monthly_effects_are_flagged_part_of_their_arms_season_effect(cosore):
    """A month repeats the data of its arm's season effect: flagged so no synthesis pools both."""
    means = _port_means(str(cosore))
    effects = {e["id"]: e for e in _result(str(cosore)).records["effects"]}
    months = [e for e in effects.values() if not e["period"].startswith("season")]
    assert len(months) == 12
    for effect in months:
        flag = effect["quality_flag"]
        assert is_part_of(flag), flag
        code, _, month = effect["id"].split("/")[1].partition("-")
        season_id = flag.removeprefix(PART_OF).split(" (")[0]
        season = effects[season_id]  # names an existing effect ...
        assert season["period"].startswith("season") and season_id.split("/")[1] == f"{code}-season"
        assert season["response"] == effect["response"] and season["study_id"] == effect["study_id"]
        # ... and names the ports the month uses that the season mean leaves out
        used = set(means[means.month == month].CSR_PORT) & set(PORTS[code] + PORTS["control"])
        in_season = set(means[means.month == "season"].CSR_PORT)
        extra = sorted(used - in_season)
        assert ("also port(s) " + ", ".join(map(str, extra)) in flag) == bool(extra), flag
        assert flag.endswith("(breakdown by month)") == (not extra), flag
    assert not any(is_part_of(e.get("quality_flag")) for e in effects.values() if e not in months)


def _fluxes(hours: dict[int, list[str]]) -> list:
    """Synthetic hourly fluxes: port -> months it has 24 hourly values in (flux = port)."""
    rows = []
    for port, months in hours.items():
        for month in months:
            start = datetime.fromisoformat(f"{month}-01")
            rows += [(port, start + timedelta(hours=h), float(port)) for h in range(24)]
    return rows


TWO_ARMS = {1: "None", 2: "None", 3: "Symmetrically warmed", 4: "Symmetrically warmed",
            5: "Asymmetrically warmed", 6: "Asymmetrically warmed"}


@pytest.mark.parametrize(("hours", "flags"), [
    # every chamber in both months: both months are plain breakdowns of the season
    ({p: ["2009-05", "2009-06"] for p in TWO_ARMS},
     {"symmetric-2009-05": "part of {s}/symmetric-season (breakdown by month)",
      "asymmetric-2009-06": "part of {s}/asymmetric-season (breakdown by month)"}),
    # port 4 only in May: no symmetric season effect (1 chamber), so its months stand alone
    ({**{p: ["2009-05", "2009-06"] for p in TWO_ARMS}, 4: ["2009-05"]},
     {"symmetric-2009-05": None, "asymmetric-2009-05": "part of {s}/asymmetric-season (breakdown by month)"}),
    # a third asymmetric chamber only in May: left out of the season, named in May's flag
    ({**{p: ["2009-05", "2009-06"] for p in TWO_ARMS}, 7: ["2009-05"]},
     {"asymmetric-2009-05": "part of {s}/asymmetric-season (breakdown by month; also port(s) 7, "
                            "which the season mean leaves out)",
      "asymmetric-2009-06": "part of {s}/asymmetric-season (breakdown by month)"}),
])
def test_breakdown_flags_on_synthetic_chambers(hours, flags):
    ports = TWO_ARMS | {7: "Asymmetrically warmed"}
    found = {e["id"].split("/")[1]: e.get("quality_flag") for e in effect_records(_fluxes(hours), ports)}
    assert {k: found[k] for k in flags} == {k: f and f.format(s=STUDY_ID) for k, f in flags.items()}
    assert not any(found[k] for k in found if k.endswith("-season"))


def test_provenance_comes_from_the_files_only(cosore):
    records = _result(str(cosore)).records
    study = records["studies"][0]
    assert (study["lat"], study["lon"]) == (44.565, -123.293)
    assert "0000-0001-9072-6806" in study["notes"] and "10.1111/j.1365-2486.2011.02483.x" in study["notes"]
    primary, cosore_paper = records["sources"]
    assert primary == {k: primary[k] for k in ("key", "entry_type", "doi", "verification", "note")}
    assert primary["doi"] == "10.1007/s10533-016-0204-x"
    assert cosore_paper["doi"] == "10.1111/gcb.15353" and cosore_paper["year"] == 2020


def test_committed_seed_equals_a_fresh_regeneration_byte_for_byte(cosore, tmp_path):
    out = tmp_path / "cosore.yaml"
    result = CliRunner().invoke(cli, ["--db", str(tmp_path / "x.db"), "import-cosore",
                                           str(cosore), "--write-seed", str(out)])
    assert result.exit_code == 0, result.output
    assert out.read_bytes() == SEED.read_bytes()


def test_seed_file_loads_on_its_own_on_top_of_the_references(empty_kb):
    empty_kb.add_file(ROOT / "kb" / "seed" / "references.bib", SEED)
    assert empty_kb.counts()["effects"] == 14


def test_reimport_changes_nothing_and_says_so(cosore, db_path):
    KnowledgeBase(db_path, seed=False).close()
    args = ["--db", str(db_path), "import-cosore", str(cosore)]
    first = CliRunner().invoke(cli, args)
    assert first.exit_code == 0 and "added 2 sources, 1 studies, 14 effects" in first.output, first.output
    with KnowledgeBase(db_path) as kb:
        before = snapshot(kb)
    second = CliRunner().invoke(cli, args)
    assert "nothing new: all 17 records" in second.output, second.output
    with KnowledgeBase(db_path) as kb:
        assert snapshot(kb) == before


def test_reimport_into_a_seeded_base_changes_nothing(cosore, seeded_kb, db_path):
    before = snapshot(seeded_kb)
    result = CliRunner().invoke(cli, ["--db", str(db_path), "import-cosore", str(cosore)])
    assert result.exit_code == 0 and "nothing new: all 17 records" in result.output, result.output
    assert snapshot(seeded_kb) == before


def _copy(cosore: Path, tmp_path: Path) -> Path:
    folder = tmp_path / FOLDER
    shutil.copytree(cosore, folder)
    for path in folder.iterdir():
        path.chmod(0o644)  # the shared copy is read-only
    return folder


def _set_field(path: Path, line: int, column: str, value: bytes) -> None:
    """Replace one field of data.csv (no quoted commas in it, so a split is enough)."""
    lines = path.read_bytes().split(b"\n")
    header = [h.strip(b'"').decode() for h in lines[0].split(b",")]
    fields = lines[line - 1].split(b",")
    fields[header.index(column)] = value
    lines[line - 1] = b",".join(fields)
    path.write_bytes(b"\n".join(lines))


def _replace(path: Path, line: int, old: bytes, new: bytes) -> None:
    lines = path.read_bytes().split(b"\n")
    assert old in lines[line - 1], (path.name, line, lines[line - 1])
    lines[line - 1] = lines[line - 1].replace(old, new, 1)
    path.write_bytes(b"\n".join(lines))


@pytest.mark.parametrize(("name", "line", "column", "value", "message"), [
    ("data.csv", 124, "CSR_FLUX_CO2", b"abc", "data.csv line 124, column CSR_FLUX_CO2: 'abc' is not a number"),
    ("data.csv", 2, "CSR_PORT", b"8", "data.csv line 2, column CSR_PORT: '8' is not a port of PORTS.txt"),
    ("data.csv", 9000, "CSR_TIMESTAMP_BEGIN", b"2009-13-01 00:00:00",
     "data.csv line 9000, column CSR_TIMESTAMP_BEGIN: '2009-13-01 00:00:00' is not"),
    ("data.csv", 500, "CSR_T5", b"1\xe9", "data.csv line 500, column CSR_T5: byte 0xe9 is not UTF-8"),
    ("data.csv", 1, "CSR_FLUX_CO2", b'"CSR_FLUX"', "data.csv line 1: column CSR_FLUX_CO2 is missing"),
])
def test_a_corrupted_data_file_is_refused_naming_line_and_column(
        cosore, tmp_path, db_path, name, line, column, value, message):
    folder = _copy(cosore, tmp_path)
    _set_field(folder / name, line, column, value)
    _assert_refused(folder, db_path, message)


@pytest.mark.parametrize(("name", "line", "old", "new", "message"), [
    ("PORTS.txt", 12, b"3,", b"3a,", "PORTS.txt line 12, column CSR_PORT: '3a' is not a port number"),
    ("PORTS.txt", 13, b"Asymmetrically warmed", b"Asymmetrically heated",
     "PORTS.txt line 13, column CSR_TREATMENT: 'Asymmetrically heated' is not one of None, "),
    ("PORTS.txt", 10, b"CSR_TREATMENT", b"CSR_TREAT", "PORTS.txt line 10: column CSR_TREATMENT is missing"),
    ("DESCRIPTION.txt", 25, b"44.565", b"44,565",
     "DESCRIPTION.txt line 25, column CSR_LATITUDE: '44,565' is not a number"),
    ("DESCRIPTION.txt", 25, b"44.565", b"144.565",
     "DESCRIPTION.txt line 25, CSR_LATITUDE: 144.565 is outside [-90, 90]"),
    ("DESCRIPTION.txt", 28, b"CSR_IGBP:", b"CSR_LANDCOVER:", "DESCRIPTION.txt: key CSR_IGBP is missing"),
    ("DESCRIPTION.txt", 40, b"sunlit", b"sunl\xefit", "DESCRIPTION.txt line 40: byte 0xef is not UTF-8"),
    ("CONTRIBUTORS.txt", 12, b"CSR_FAMILY_NAME", b"CSR_SURNAME",
     "CONTRIBUTORS.txt line 12: column CSR_FAMILY_NAME is missing"),
    ("CONTRIBUTORS.txt", 13, "–".encode(), b"\x96",  # a cp1252 en dash
     "CONTRIBUTORS.txt line 13: byte 0x96 is not UTF-8"),
])
def test_a_corrupted_metadata_file_is_refused_naming_line_and_field(
        cosore, tmp_path, db_path, name, line, old, new, message):
    folder = _copy(cosore, tmp_path)
    _replace(folder / name, line, old, new)
    _assert_refused(folder, db_path, message)


def _assert_refused(folder: Path, db_path: Path, message: str) -> None:
    """The CLI exits 1 with one line naming the problem, and the database is unchanged."""
    KnowledgeBase(db_path, seed=False).close()
    with KnowledgeBase(db_path) as kb:
        before = snapshot(kb)
    result = CliRunner().invoke(cli, ["--db", str(db_path), "import-cosore", str(folder)])
    assert result.exit_code == 1, result.output
    assert result.output.count("\n") == 1 and message in result.output, result.output
    with KnowledgeBase(db_path) as kb:
        assert snapshot(kb) == before


def test_a_refused_import_creates_no_database(cosore, tmp_path):
    folder = _copy(cosore, tmp_path)
    _set_field(folder / "data.csv", 124, "CSR_FLUX_CO2", b"abc")
    result = CliRunner().invoke(cli, ["--db", str(tmp_path / "new.db"), "import-cosore", str(folder)])
    assert result.exit_code == 1 and not (tmp_path / "new.db").exists()


def test_a_missing_file_is_refused(tmp_path):
    with pytest.raises(FileFormatError, match="no such file"):
        import_cosore(tmp_path)

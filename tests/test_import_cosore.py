"""COSORE Terracosm import on the real files: chamber means, n = chambers, seed, bad input."""

from __future__ import annotations

import math
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
from kb.importers.cosore import import_cosore

SEED = ROOT / "kb" / "seed" / "cosore_terracosm.yaml"
FOLDER = "cosore_phillips_terracosm_warming"
PORTS = {"control": [2, 6, 10, 14], "symmetric": [3, 5, 11, 13], "asymmetric": [4, 7, 9, 12]}
pytestmark = pytest.mark.shared_data

if "import-cosore" not in cli.commands:  # until the lead registers it in kb/cli.py
    from kb.importers import commands

    cli.add_command(commands.import_cosore)


@pytest.fixture
def cosore(shared_data) -> Path:
    return shared_data / FOLDER


@cache
def _result(folder: str):
    return import_cosore(folder)


@cache
def _port_means(folder: str) -> pd.DataFrame:
    """Chamber means per month and for the season, computed independently with pandas."""
    data = pd.read_csv(Path(folder) / "data.csv", parse_dates=["CSR_TIMESTAMP_BEGIN"])
    data["month"] = data.CSR_TIMESTAMP_BEGIN.dt.strftime("%Y-%m")
    monthly = data.groupby(["month", "CSR_PORT"]).CSR_FLUX_CO2.agg(["mean", "count"])
    season = data.groupby("CSR_PORT").CSR_FLUX_CO2.agg(["mean", "count"])
    season["month"] = "season"
    return pd.concat([monthly.reset_index(), season.reset_index()])


def _arm(means: pd.DataFrame, label: str, ports: list[int]) -> tuple[float, float, int]:
    rows = means[(means.month == label) & means.CSR_PORT.isin(ports) & (means["count"] >= 24)]
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
    assert [(e["n_t"], e["n_c"]) for e in season] == [(4, 4), (4, 4)]


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


def _copy(cosore: Path, tmp_path: Path) -> Path:
    folder = tmp_path / FOLDER
    shutil.copytree(cosore, folder)
    return folder


@pytest.mark.parametrize(("line", "column", "value", "message"), [
    (124, "CSR_FLUX_CO2", "abc", "data.csv line 124, column CSR_FLUX_CO2: 'abc' is not a number"),
    (2, "CSR_PORT", "8", "data.csv line 2, column CSR_PORT: '8' is not a port of PORTS.txt"),
    (9000, "CSR_TIMESTAMP_BEGIN", "2009-13-01 00:00:00",
     "data.csv line 9000, column CSR_TIMESTAMP_BEGIN: '2009-13-01 00:00:00' is not"),
])
def test_a_corrupted_file_is_refused_with_row_and_column_and_nothing_is_written(
        cosore, tmp_path, empty_kb, line, column, value, message):
    folder = _copy(cosore, tmp_path)
    path = folder / "data.csv"
    lines = path.read_text(encoding="utf-8").split("\n")
    header = [h.strip('"') for h in lines[0].split(",")]
    fields = lines[line - 1].split(",")
    fields[header.index(column)] = value
    lines[line - 1] = ",".join(fields)
    path.write_text("\n".join(lines), encoding="utf-8")
    before = snapshot(empty_kb)
    with pytest.raises(FileFormatError) as caught:
        add_new(empty_kb, import_cosore(folder).records)
    assert message in str(caught.value)
    assert snapshot(empty_kb) == before


def test_a_missing_file_is_refused(tmp_path):
    with pytest.raises(FileFormatError, match="no such file"):
        import_cosore(tmp_path)

"""Shared fixtures. Databases are built in code (never a committed .db file)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from kb import KnowledgeBase
from kb.records import TABLES

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
SHARED_DATA = SHARED / "data"

# In CI a skip must not pass for a success: tests that need ../shared/data or a browser
# fail instead when CI (or SOC_KB_REQUIRE_ALL) is set.
REQUIRE_ALL = bool(os.environ.get("CI") or os.environ.get("SOC_KB_REQUIRE_ALL"))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if REQUIRE_ALL and report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = f"skipped, but CI may not skip: {report.longrepr}"


def require(condition: bool, reason: str) -> None:
    """Skip on a laptop that lacks something; fail in CI, where it must be there."""
    if condition:
        return
    if REQUIRE_ALL:
        pytest.fail(f"required in CI but missing: {reason}")
    pytest.skip(reason)


@pytest.fixture
def shared_data() -> Path:
    require(SHARED_DATA.is_dir(), f"{SHARED_DATA} is not there")
    return SHARED_DATA


@pytest.fixture(scope="session")
def seeded_file(tmp_path_factory) -> Path:
    """The shipped seed, built once per test run. Read it, never write it: tests that
    write take a copy (``seeded_copy``)."""
    path = tmp_path_factory.mktemp("seeded") / "kb.db"
    KnowledgeBase(path).close()
    return path


@pytest.fixture(scope="module")
def shipped(seeded_file):
    """The shipped seed opened once per test module, to read."""
    with KnowledgeBase(seeded_file) as store:
        yield store


@pytest.fixture(scope="module")
def G(shipped):
    """The claim–evidence graph of the shipped seed."""
    from kb.claims import graph

    return graph.build_graph(shipped)


@pytest.fixture
def seeded_copy(seeded_file, tmp_path) -> Path:
    """A private copy of the shipped seed's database file, to write to."""
    path = tmp_path / "kb.db"
    shutil.copyfile(seeded_file, path)
    return path


@pytest.fixture
def db_path(tmp_path) -> Path:
    return tmp_path / "kb.db"


@pytest.fixture
def empty_kb(db_path):
    kb = KnowledgeBase(db_path, seed=False)
    yield kb
    kb.close()


@pytest.fixture
def seeded_kb(db_path):
    kb = KnowledgeBase(db_path)
    yield kb
    kb.close()


@pytest.fixture
def source() -> dict:
    return {"key": "smith2024", "title": "Warming and soil carbon", "authors": "Smith, Jane and Doe, John",
            "year": 2024, "journal": "Example Journal", "doi": "10.1234/example.1"}


@pytest.fixture
def study() -> dict:
    return {"id": "smith2024-a", "source_key": "smith2024", "study_type": "field_experiment",
            "biome": "boreal", "ecosystem": "forest", "lat": 61.8, "lon": 24.3,
            "depth_top_cm": 0, "depth_bottom_cm": 30, "warming_method": "heating_cable",
            "warming_c": 4.0, "duration_years": 10, "soc_direction": "decrease",
            "mechanisms": ["microbial_decomposition"], "summary": "Soil warming lowered topsoil SOC.",
            "evidence_quote": "Soil warming decreased SOC stocks."}


@pytest.fixture
def effect() -> dict:
    return {"study_id": "smith2024-a", "response": "soc_stock", "measure": "ROM",
            "mean_t": 4100, "sd_t": 450, "n_t": 5, "mean_c": 4600, "sd_c": 500, "n_c": 5,
            "units": "g C m-2", "source_location": "Table 2"}


@pytest.fixture
def kb_with_study(empty_kb, source, study):
    empty_kb.add_records({"sources": [source], "studies": [study]})
    return empty_kb


def snapshot(kb: KnowledgeBase) -> dict:
    """Everything stored (data tables, mechanisms and the audit), for "nothing written" checks."""
    tables = [*TABLES, "study_mechanisms", "changes"]
    return {t: kb.db.execute(f'SELECT * FROM "{t}" ORDER BY rowid').fetchall() for t in tables}


def contradicting_study(claim_id: str, study_id: str = "newstudy2026") -> dict:
    """A made-up test record (not data): one field experiment contradicting a claim."""
    return {
        "sources": [{"key": study_id, "entry_type": "article", "title": "A new warming experiment",
                     "authors": "Doe, Jane", "year": 2026, "journal": "Test Journal"}],
        "studies": [{"id": study_id, "source_key": study_id, "study_type": "field_experiment",
                     "biome": "boreal", "soc_direction": "increase"}],
        "claim_links": [{"claim_id": claim_id, "study_id": study_id, "relation": "contradicts",
                         "quote": "A new experiment found the opposite."}],
    }

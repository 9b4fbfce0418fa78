"""Record files: export then import into an empty base gives identical tables; the template is valid."""

from __future__ import annotations

import pytest
import yaml

from kb import KnowledgeBase
from kb.records import TABLES
from kb.template import template_text


@pytest.fixture
def full_kb(seeded_kb, tmp_path):
    path = tmp_path / "template.yaml"
    path.write_text(template_text("yaml"), encoding="utf-8")
    seeded_kb.add_file(path)
    seeded_kb.add_records({
        "claims": [{"id": "c-other", "text": "Another claim"}],
        "claim_links": [{"claim_id": "smith2024-c1", "other_claim_id": "c-other", "relation": "refines",
                         "quote": "Ünïcode “quotes” – dashes, CO₂"}],
        "effects": [{"study_id": "smith2024-boreal", "response": "soil_respiration", "direction": "increase"}],
    })
    return seeded_kb


def _tables(kb: KnowledgeBase) -> dict:
    tables = [*TABLES, "study_mechanisms"]
    return {t: kb.db.execute(f'SELECT * FROM "{t}" ORDER BY 1, 2').fetchall() for t in tables}


@pytest.mark.parametrize("fmt,name", [("json", "out.json"), ("yaml", "out.yaml"), ("csv", "out")])
def test_export_then_import_gives_identical_tables(full_kb, tmp_path, fmt, name):
    out = full_kb.export(tmp_path / name, fmt)
    with KnowledgeBase(tmp_path / "copy.db", seed=False) as copy:
        copy.add_file(out)
        assert _tables(copy) == _tables(full_kb)


def test_csv_export_is_one_file_per_table(full_kb, tmp_path):
    out = full_kb.export(tmp_path / "csv", "csv")
    assert sorted(p.name for p in out.iterdir()) == sorted(f"{t}.csv" for t in TABLES)


def test_template_formats_agree(empty_kb, tmp_path):
    data = yaml.safe_load(template_text("yaml"))
    assert set(data) == set(TABLES)
    (tmp_path / "t.json").write_text(template_text("json"), encoding="utf-8")
    counts = empty_kb.add_file(tmp_path / "t.json")
    assert counts == {t: 1 for t in TABLES}


def test_template_csv_is_a_studies_file(empty_kb, tmp_path):
    empty_kb.add_source({"key": "smith2024", "title": "x", "year": 2024})
    (tmp_path / "studies.csv").write_text(template_text("csv"), encoding="utf-8")
    empty_kb.add_file(tmp_path / "studies.csv")
    assert empty_kb.study("smith2024-boreal")["mechanisms"] == ["microbial_decomposition", "mineral_protection"]


def test_schema_lists_every_record_type():
    import json

    schema = json.loads(template_text("schema"))
    assert set(schema) == set(TABLES)
    assert "soc_direction" in schema["studies"]["required"]


@pytest.mark.parametrize("fmt,name,limit", [("json", "out.json", "MAX_FILE_BYTES"),
                                            ("yaml", "out.yaml", "MAX_YAML_BYTES"),
                                            ("csv", "out", "MAX_FILE_BYTES")])
def test_export_too_large_to_add_back_is_refused(full_kb, tmp_path, monkeypatch, fmt, name, limit):
    """An export a record file could not hold is refused before anything is written (here the
    limit is lowered to 1 KiB instead of writing 64 MiB)."""
    from kb import KBError

    monkeypatch.setattr(f"kb.files.{limit}", 1024)
    with pytest.raises(KBError, match=rf"more than the \S+ MiB a {fmt} record file may hold \({limit}\)"):
        full_kb.export(tmp_path / name, fmt)
    assert not (tmp_path / name).exists()

"""Schema migrations: a base written by an earlier soc-kb gains the new columns on open and
keeps every record; the columns validate like the rest."""

from __future__ import annotations

import shutil
import sqlite3

import pytest

from kb import KnowledgeBase, RecordError
from kb.schema import migrations, schema_version

SITE_COLUMNS = ("site_soc_stock_g_m2", "site_soc_depth_cm", "warming_level_c")


def test_every_migration_counts_in_the_schema_version():
    names = [m.name for m in migrations._migrations]
    assert names[0] == "m001_initial" and "m003_site_descriptors" in names
    assert schema_version() == len(names) and len(set(names)) == len(names)


def test_a_base_from_before_the_site_descriptors_migrates_on_open(seeded_file, tmp_path):
    old = tmp_path / "old.db"
    shutil.copy(seeded_file, old)
    conn = sqlite3.connect(old)  # what m001 + m002 left: no site columns, version 2
    for column in SITE_COLUMNS:
        conn.execute(f'ALTER TABLE studies DROP COLUMN "{column}"')
    conn.execute("DELETE FROM _sqlite_migrations WHERE name = 'm003_site_descriptors'")
    conn.execute("PRAGMA user_version = 2")
    conn.commit()
    before = conn.execute("SELECT count(*) FROM studies").fetchone()[0]
    conn.close()
    with KnowledgeBase(old) as kb:
        assert kb.counts()["studies"] == before
        kb.update("studies", "varney2020", {"warming_level_c": 2.0})
        assert kb.get("studies", "varney2020")["warming_level_c"] == pytest.approx(2.0)  # stored as given
    conn = sqlite3.connect(old)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == schema_version()
    conn.close()


@pytest.mark.parametrize("field,value", [("site_soc_stock_g_m2", -1), ("site_soc_depth_cm", 0),
                                         ("site_soc_depth_cm", 5000), ("warming_level_c", 0),
                                         ("warming_level_c", 12), ("warming_level_c", float("nan"))])
def test_site_descriptors_are_checked(empty_kb, field, value):
    empty_kb.add_source({"key": "s1", "title": "T", "year": 2020})
    with pytest.raises(RecordError, match=field):
        empty_kb.add_study({"id": "x", "source_key": "s1", "soc_direction": "decrease", field: value})
    assert empty_kb.counts()["studies"] == 0


def test_a_base_with_older_vocabularies_gets_the_new_terms_and_labels(seeded_file, tmp_path):
    import hashlib

    old = tmp_path / "vocab.db"
    shutil.copy(seeded_file, old)
    conn = sqlite3.connect(old)  # as a base written before q10 and the plain depth labels
    conn.execute("DELETE FROM responses WHERE name = 'q10'")
    conn.execute("UPDATE depth_classes SET label = 'Subsoil (30–100 cm)' WHERE name = 'subsoil'")
    conn.execute("UPDATE soc_kb_meta SET value = 'an older vocabulary' WHERE key = 'vocabulary_digest'")
    conn.commit()
    conn.close()
    with KnowledgeBase(old) as kb:
        assert "q10" in kb.vocabulary_names("responses")
        labels = kb.vocabulary("depth_classes").set_index("name")["label"]
        assert labels["subsoil"] == "Subsoil"
    settled = hashlib.sha256(old.read_bytes()).hexdigest()
    with KnowledgeBase(old) as kb:  # up to date now: opening it again writes nothing
        kb.studies(limit=1)
    assert hashlib.sha256(old.read_bytes()).hexdigest() == settled

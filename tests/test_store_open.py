"""Opening a database file, and the store's own refusals: a file that is not a soc-kb base is
left byte for byte as it was; missing, newer, damaged, read-only or full databases, duplicate
DOIs or links through ``update``, empty searches and bad limits each get one line.
"""

from __future__ import annotations

import hashlib
import shutil
import sqlite3

import pytest
from click.testing import CliRunner

from kb import DuplicateError, KBError, KnowledgeBase, StoreError
from kb.cli import cli
from kb.schema import schema_version


def digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def dump(path) -> list[str]:
    """Every row of every table, through a read-only connection."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return list(conn.iterdump())
    finally:
        conn.close()


def invoke(*args, env=None):
    result = CliRunner().invoke(cli, [str(a) for a in args], env=env)
    return result.exit_code, result.output


def one_line_error(output: str) -> str:
    lines = output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), output
    assert "Traceback" not in output
    return lines[0]


@pytest.fixture
def seeded(seeded_file):
    return seeded_file


@pytest.fixture
def db(seeded_copy):
    return seeded_copy


# -- files that are not (this) soc-kb's ------------------------------------------------------


def foreign_sqlite(path):
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE birds (name TEXT)")
    conn.execute("INSERT INTO birds VALUES ('wren')")
    conn.commit()
    conn.close()


def newer_soc_kb(path, seeded):
    shutil.copyfile(seeded, path)
    conn = sqlite3.connect(path)
    conn.execute("INSERT INTO _sqlite_migrations (migration_set, name, applied_at) "
                 "VALUES ('soc_kb', 'm099_from_the_future', '2030-01-01')")
    conn.execute("PRAGMA user_version = 99")
    conn.commit()
    conn.close()


FOREIGN = [  # (make the file, words the one line must hold)
    (lambda p, s: foreign_sqlite(p), "another program (tables birds)"),
    (lambda p, s: p.write_text("name,year\nwren,2020\n"), "not a SQLite database"),
    (lambda p, s: p.write_bytes(b"SQLite format 3\x00" + b"\x00" * 84), "damaged"),
    (lambda p, s: newer_soc_kb(p, s), "newer soc-kb (schema version 99"),
]


@pytest.mark.parametrize("make,words", FOREIGN, ids=["foreign", "text", "truncated-header", "newer"])
@pytest.mark.parametrize("command", [["query"], ["add", "x.yaml"], ["synth"], ["init"]])
def test_a_file_soc_kb_cannot_own_is_refused_and_left_untouched(tmp_path, seeded, make, words, command):
    path = tmp_path / "other.db"
    make(path, seeded)
    (tmp_path / "x.yaml").write_text("studies: []\n")
    before = digest(path)
    code, output = invoke("--db", path, *[tmp_path / c if c.endswith(".yaml") else c for c in command])
    assert code == 1
    line = one_line_error(output)
    if command != ["init"]:  # init refuses any existing file before looking inside
        assert words in line and str(path) in line
    assert digest(path) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other.db", "x.yaml"]


def test_the_api_refuses_a_newer_base_naming_both_versions(tmp_path, seeded):
    path = tmp_path / "newer.db"
    newer_soc_kb(path, seeded)
    with pytest.raises(StoreError, match=rf"schema version 99.*reads schema version {schema_version()}"):
        KnowledgeBase(path)


def test_a_damaged_base_is_one_line(db, tmp_path):
    cut = tmp_path / "cut.db"
    cut.write_bytes(db.read_bytes()[: len(db.read_bytes()) // 3])
    code, output = invoke("--db", cut, "query", "--table", "effects")
    assert code == 1 and "damaged" in one_line_error(output)


# -- missing paths ---------------------------------------------------------------------------


@pytest.mark.parametrize("command", [["query"], ["synth"], ["claims"], ["export", "--format", "json",
                                                                        "--output", "out.json"]])
def test_a_mistyped_db_is_refused_not_created(tmp_path, command):
    path = tmp_path / "tpyo.db"
    code, output = invoke("--db", path, *command)
    assert code == 1 and "no knowledge base here" in one_line_error(output)
    assert "soc-kb --db" in output and "init" in output
    assert not path.exists()


def test_a_missing_base_named_in_the_environment_is_refused(tmp_path):
    code, output = invoke("query", env={"SOC_KB_DB": str(tmp_path / "missing.db")})
    assert code == 1 and "no knowledge base here" in one_line_error(output)


def test_init_creates_a_named_base(tmp_path):
    code, _ = invoke("--db", tmp_path / "new.db", "init", "--empty")
    assert code == 0 and (tmp_path / "new.db").exists()


def test_the_default_base_is_made_on_first_use_and_says_so(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["query", "--limit", "1"], env={"SOC_KB_DB": None})
    assert result.exit_code == 0 and (tmp_path / "soc-kb.db").exists()
    assert "created soc-kb.db" in result.stderr


def test_the_api_refuses_a_missing_path_when_asked_not_to_create(tmp_path):
    with pytest.raises(StoreError, match="no knowledge base here"):
        KnowledgeBase(tmp_path / "missing.db", create=False)
    assert not (tmp_path / "missing.db").exists()


# -- reading writes nothing; writes that cannot happen -----------------------------------------


def test_reading_an_up_to_date_base_does_not_write_to_it(db):
    before = digest(db)
    for args in (["query"], ["query", "--table", "effects"], ["claims"], ["synth", "--by", "biome"]):
        assert invoke("--db", db, *args)[0] == 0
    assert digest(db) == before


def test_a_read_only_database_is_named_as_such(db):
    before = dump(db)
    with KnowledgeBase(db) as kb:
        kb.db.execute("PRAGMA query_only = ON")  # what a read-only file or disk does to writes
        assert len(kb.studies(limit=1)) == 1  # reading still works
        with pytest.raises(StoreError, match="read-only") as info:
            kb.update("studies", "chen2023", {"site": "Somewhere"})
    assert "\n" not in str(info.value)
    assert dump(db) == before


def test_a_full_disk_is_one_line_and_writes_nothing(db):
    before = dump(db)
    with KnowledgeBase(db) as kb:
        pages = kb.db.execute("PRAGMA page_count").fetchone()[0]
        kb.db.execute(f"PRAGMA max_page_count = {pages}")  # no room to grow, as on a full disk
        records = [{"id": f"full-{i}", "source_key": "chen2023", "soc_direction": "decrease",
                    "summary": "x" * 2000} for i in range(500)]
        with pytest.raises(StoreError, match="disk is full") as info:
            kb.add_studies(records)
    assert "\n" not in str(info.value)
    assert dump(db) == before


# -- updates that would duplicate ----------------------------------------------------------------


def a_second_link(kb) -> int:
    first = kb.links().iloc[0]
    return kb.add_link({"claim_id": first["claim_id"], "study_id": "chen2023" if first["study_id"] !=
                        "chen2023" else "lu2013", "relation": first["relation"]}), first


def test_update_refuses_a_doi_another_source_has(db):
    with KnowledgeBase(db) as kb:
        sources = kb.sources()
        with_doi = sources.dropna(subset=["doi"])
        taken, other = with_doi.iloc[0], with_doi.iloc[1]
        before = dump(db)
        with pytest.raises(DuplicateError, match=f"already belongs to source '{taken['key']}'"):
            kb.update("sources", other["key"], {"doi": taken["doi"].upper()})
    assert dump(db) == before
    code, output = invoke("--db", db, "update", "source", other["key"], f"doi={taken['doi']}")
    assert code == 1 and "already belongs" in one_line_error(output)


def test_update_refuses_to_make_a_link_repeat_another(db):
    with KnowledgeBase(db) as kb:
        new_id, first = a_second_link(kb)
        before = dump(db)
        with pytest.raises(DuplicateError, match=f"link {first['id']} already links"):
            kb.update("claim_links", new_id, {"study_id": first["study_id"]})
    assert dump(db) == before
    code, output = invoke("--db", db, "update", "link", new_id, f"study_id={first['study_id']}")
    assert code == 1 and "already links" in one_line_error(output)


@pytest.mark.parametrize("key", ["abc", "1.5", "0x1", "9" * 30, "１"])
@pytest.mark.parametrize("command", [["remove", "link"], ["update", "link"]])
def test_a_link_id_that_is_not_a_number_is_one_line(db, command, key):
    extra = ["note=x"] if command[0] == "update" else []
    code, output = invoke("--db", db, *command, key, *extra)
    assert code == 1 and "is not a link number" in one_line_error(output)


# -- searches and limits -------------------------------------------------------------------------


@pytest.mark.parametrize("text", [" ", '"', '""', "\u2028", "  \t", "*", "-", "()"])
def test_a_search_with_no_word_filters_nothing(db, text):
    with KnowledgeBase(db) as kb:
        assert len(kb.studies(text=text)) == len(kb.studies())
        assert len(kb.claims(text=text)) == len(kb.claims())
        assert len(kb.sources(text=text)) == len(kb.sources())
    code, output = invoke("--db", db, "query", "--text", text, "--format", "csv")
    assert code == 0 and "Error" not in output


def test_a_search_with_words_still_filters(db):
    with KnowledgeBase(db) as kb:
        assert 0 < len(kb.studies(text='"permafrost')) < len(kb.studies())


@pytest.mark.parametrize("limit", [0, -1, -100, 1.5, True, "3"])
def test_a_limit_must_be_a_positive_whole_number(db, limit):
    with KnowledgeBase(db) as kb, pytest.raises(KBError, match="not a positive number of rows"):
        kb.studies(limit=limit)


@pytest.mark.parametrize("limit", ["0", "-1", "x"])
def test_the_cli_refuses_a_bad_limit(db, limit):
    code, output = invoke("--db", db, "query", "--limit", limit)
    assert code == 2 and "--limit" in output and "Traceback" not in output

"""The database schema and its migrations: the one place that creates or changes tables.

Tables (see docs/knowledge-base.md): vocabulary tables (with synonyms), ``sources``, ``studies``,
``study_mechanisms``, ``effects``, ``claims`` (with ``claim_aliases``, the retired ids of merged
claims), ``claim_links`` and the ``changes`` audit.
Foreign keys point every vocabulary field at its table, so SQLite refuses an unknown
value even when a write bypasses the Python layer.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from urllib.request import pathname2url

from sqlite_utils import Database, Migrations

from .errors import StoreError
from .vocab import VOCABULARIES

#: Columns of each record table, in order, with their SQLite types.
COLUMNS: dict[str, dict[str, str]] = {
    "sources": {
        "key": "TEXT", "entry_type": "TEXT", "title": "TEXT", "authors": "TEXT",
        "first_author": "TEXT", "year": "INTEGER", "journal": "TEXT", "volume": "TEXT",
        "number": "TEXT", "pages": "TEXT", "publisher": "TEXT", "url": "TEXT", "doi": "TEXT",
        "verification": "TEXT", "verified_from": "TEXT", "unverified_fields": "TEXT",
        "note": "TEXT", "bibtex": "TEXT",
    },
    "studies": {
        "id": "TEXT", "source_key": "TEXT", "study_type": "TEXT", "biome": "TEXT",
        "ecosystem": "TEXT", "site": "TEXT", "country": "TEXT", "lat": "REAL", "lon": "REAL",
        "elevation_m": "REAL", "mat_c": "REAL", "map_mm": "REAL",
        "depth_top_cm": "REAL", "depth_bottom_cm": "REAL", "depth_class": "TEXT",
        "warming_method": "TEXT", "warming_c": "REAL", "warming_medium": "TEXT",
        "duration_years": "REAL", "start_year": "INTEGER", "soc_direction": "TEXT",
        "respiration_direction": "TEXT", "summary": "TEXT", "evidence_quote": "TEXT",
        "quote_location": "TEXT", "origin": "TEXT", "curator": "TEXT", "added_at": "TEXT",
        "notes": "TEXT",
        # m003: site descriptors (not responses) and a model study's global warming level
        "site_soc_stock_g_m2": "REAL", "site_soc_depth_cm": "REAL", "warming_level_c": "REAL",
    },
    "study_mechanisms": {"study_id": "TEXT", "mechanism": "TEXT"},
    "effects": {
        "id": "TEXT", "study_id": "TEXT", "response": "TEXT", "period": "TEXT",
        "depth_top_cm": "REAL", "depth_bottom_cm": "REAL", "warming_c": "REAL",
        "duration_years": "REAL", "other_factors": "TEXT",
        "mean_t": "REAL", "sd_t": "REAL", "n_t": "INTEGER",
        "mean_c": "REAL", "sd_c": "REAL", "n_c": "INTEGER", "units": "TEXT",
        "measure": "TEXT", "yi": "REAL", "vi": "REAL", "direction": "TEXT",
        "variance_note": "TEXT", "source_location": "TEXT", "quality_flag": "TEXT",
        "notes": "TEXT",
    },
    "claims": {
        "id": "TEXT", "text": "TEXT", "section": "TEXT", "source_key": "TEXT",
        "scope_biome": "TEXT", "scope_ecosystem": "TEXT", "scope_mechanism": "TEXT",
        "scope_depth_class": "TEXT", "quote": "TEXT", "origin": "TEXT", "notes": "TEXT",
    },
    "claim_links": {
        "id": "INTEGER", "claim_id": "TEXT", "study_id": "TEXT", "other_claim_id": "TEXT",
        "relation": "TEXT", "quote": "TEXT", "note": "TEXT",
    },
    "syntheses": {
        "id": "TEXT", "title": "TEXT", "response": "TEXT", "filters": "TEXT", "group_by": "TEXT",
        "group_value": "TEXT", "model": "TEXT", "method": "TEXT", "curator": "TEXT",
        "origin": "TEXT", "notes": "TEXT",
    },
    "synthesis_links": {
        "id": "INTEGER", "claim_id": "TEXT", "synthesis_id": "TEXT", "relation": "TEXT",
        "expects": "TEXT", "note": "TEXT", "curator": "TEXT", "origin": "TEXT",
    },
}

PRIMARY_KEYS = {"sources": "key", "studies": "id", "effects": "id", "claims": "id",
                "claim_links": "id", "syntheses": "id", "synthesis_links": "id"}

#: Full-text indexes: table -> columns (titles, summaries, quotes, claim texts).
FTS_COLUMNS = {
    "sources": ["title", "authors"],
    "studies": ["summary", "evidence_quote", "site", "notes"],
    "claims": ["text", "quote"],
    "claim_links": ["quote", "note"],
}

_FK = "REFERENCES"


def _vocab_ref(table: str) -> str:
    return f'{_FK} "{table}"("name")'


_DDL = f"""
CREATE TABLE "sources" (
  "key" TEXT PRIMARY KEY, "entry_type" TEXT NOT NULL, "title" TEXT, "authors" TEXT,
  "first_author" TEXT, "year" INTEGER, "journal" TEXT, "volume" TEXT, "number" TEXT,
  "pages" TEXT, "publisher" TEXT, "url" TEXT, "doi" TEXT,
  "verification" TEXT CHECK ("verification" IN ('full', 'partial', 'none')),
  "verified_from" TEXT, "unverified_fields" TEXT, "note" TEXT, "bibtex" TEXT NOT NULL
);
CREATE UNIQUE INDEX "idx_sources_doi" ON "sources"(lower("doi")) WHERE "doi" IS NOT NULL;
CREATE TABLE "studies" (
  "id" TEXT PRIMARY KEY, "source_key" TEXT {_FK} "sources"("key"),
  "study_type" TEXT {_vocab_ref("study_types")}, "biome" TEXT {_vocab_ref("biomes")},
  "ecosystem" TEXT {_vocab_ref("ecosystems")}, "site" TEXT, "country" TEXT,
  "lat" REAL CHECK ("lat" BETWEEN -90 AND 90), "lon" REAL CHECK ("lon" BETWEEN -180 AND 180),
  "elevation_m" REAL, "mat_c" REAL, "map_mm" REAL,
  "depth_top_cm" REAL, "depth_bottom_cm" REAL, "depth_class" TEXT {_vocab_ref("depth_classes")},
  "warming_method" TEXT {_vocab_ref("warming_methods")}, "warming_c" REAL,
  "warming_medium" TEXT CHECK ("warming_medium" IN ('air', 'soil', 'air_and_soil')),
  "duration_years" REAL, "start_year" INTEGER,
  "soc_direction" TEXT NOT NULL {_vocab_ref("directions")},
  "respiration_direction" TEXT {_vocab_ref("directions")},
  "summary" TEXT, "evidence_quote" TEXT, "quote_location" TEXT, "origin" TEXT,
  "curator" TEXT, "added_at" TEXT, "notes" TEXT
);
CREATE INDEX "idx_studies_source" ON "studies"("source_key");
CREATE INDEX "idx_studies_biome" ON "studies"("biome", "id");
CREATE INDEX "idx_studies_ecosystem" ON "studies"("ecosystem", "id");
CREATE INDEX "idx_studies_type" ON "studies"("study_type", "id");
CREATE INDEX "idx_studies_direction" ON "studies"("soc_direction", "id");
CREATE INDEX "idx_studies_warming" ON "studies"("warming_c");
CREATE TABLE "study_mechanisms" (
  "study_id" TEXT NOT NULL {_FK} "studies"("id") ON DELETE CASCADE,
  "mechanism" TEXT NOT NULL {_vocab_ref("mechanisms")},
  PRIMARY KEY ("study_id", "mechanism")
);
CREATE INDEX "idx_study_mechanisms_mechanism" ON "study_mechanisms"("mechanism");
CREATE TABLE "effects" (
  "id" TEXT PRIMARY KEY, "study_id" TEXT NOT NULL {_FK} "studies"("id"),
  "response" TEXT NOT NULL {_vocab_ref("responses")}, "period" TEXT,
  "depth_top_cm" REAL, "depth_bottom_cm" REAL, "warming_c" REAL, "duration_years" REAL,
  "other_factors" TEXT,
  "mean_t" REAL, "sd_t" REAL CHECK ("sd_t" >= 0), "n_t" INTEGER CHECK ("n_t" >= 1),
  "mean_c" REAL, "sd_c" REAL CHECK ("sd_c" >= 0), "n_c" INTEGER CHECK ("n_c" >= 1),
  "units" TEXT, "measure" TEXT, "yi" REAL, "vi" REAL CHECK ("vi" > 0),
  "direction" TEXT {_vocab_ref("directions")}, "variance_note" TEXT,
  "source_location" TEXT, "quality_flag" TEXT, "notes" TEXT
);
CREATE INDEX "idx_effects_study" ON "effects"("study_id");
CREATE INDEX "idx_effects_response" ON "effects"("response");
CREATE TABLE "claims" (
  "id" TEXT PRIMARY KEY, "text" TEXT NOT NULL, "section" TEXT,
  "source_key" TEXT {_FK} "sources"("key"),
  "scope_biome" TEXT {_vocab_ref("biomes")}, "scope_ecosystem" TEXT {_vocab_ref("ecosystems")},
  "scope_mechanism" TEXT {_vocab_ref("mechanisms")},
  "scope_depth_class" TEXT {_vocab_ref("depth_classes")},
  "quote" TEXT, "origin" TEXT, "notes" TEXT
);
CREATE TABLE "claim_links" (
  "id" INTEGER PRIMARY KEY, "claim_id" TEXT NOT NULL {_FK} "claims"("id"),
  "study_id" TEXT {_FK} "studies"("id"), "other_claim_id" TEXT {_FK} "claims"("id"),
  "relation" TEXT NOT NULL {_vocab_ref("link_relations")}, "quote" TEXT, "note" TEXT,
  CHECK (("study_id" IS NULL) <> ("other_claim_id" IS NULL))
);
CREATE UNIQUE INDEX "idx_claim_links_unique" ON "claim_links"(
  "claim_id", coalesce("study_id", ''), coalesce("other_claim_id", ''), "relation");
CREATE INDEX "idx_claim_links_study" ON "claim_links"("study_id");
CREATE INDEX "idx_claim_links_other" ON "claim_links"("other_claim_id");
CREATE TABLE "changes" (
  "id" INTEGER PRIMARY KEY, "table_name" TEXT NOT NULL, "record_key" TEXT NOT NULL,
  "action" TEXT NOT NULL CHECK ("action" IN ('insert', 'update', 'delete')),
  "before" TEXT, "after" TEXT, "who" TEXT, "at" TEXT NOT NULL
);
CREATE INDEX "idx_changes_record" ON "changes"("table_name", "record_key");
"""

migrations = Migrations("soc_kb")


def _create_vocabularies(db: Database) -> None:
    for table, terms in VOCABULARIES.items():
        extras = sorted({key for term in terms for key in term.extra})
        columns = {"name": str, "label": str, "description": str, "synonyms": str,
                   "position": int} | {key: _extra_type(terms, key) for key in extras}
        db[table].create(columns, pk="name", not_null={"label"})
        db[table].insert_all(_vocabulary_rows(terms))


def _vocabulary_rows(terms) -> list[dict]:
    extras = sorted({key for term in terms for key in term.extra})
    return [{"name": t.name, "label": t.label, "description": t.description,
             "synonyms": json.dumps(list(t.synonyms), ensure_ascii=False), "position": i,
             **{key: t.extra.get(key) for key in extras}} for i, t in enumerate(terms)]


def vocabulary_digest() -> str:
    """A fingerprint of the vocabularies this code knows: a base whose stored fingerprint
    differs gets their new terms, labels and descriptions when it is next opened."""
    data = {table: _vocabulary_rows(terms) for table, terms in VOCABULARIES.items()}
    return hashlib.sha256(json.dumps(data, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def sync_vocabularies(db: Database) -> None:
    """Add the vocabularies' new terms and bring labels, descriptions and synonyms up to
    date (terms are never removed: stored records may use them); record the fingerprint."""
    for table, terms in VOCABULARIES.items():
        db[table].upsert_all(_vocabulary_rows(terms), pk="name", alter=True)
    db.execute("INSERT INTO soc_kb_meta (key, value) VALUES ('vocabulary_digest', ?) "
               "ON CONFLICT (key) DO UPDATE SET value = excluded.value", [vocabulary_digest()])


def _extra_type(terms, key):
    values = [t.extra.get(key) for t in terms if t.extra.get(key) is not None]
    return float if values and all(isinstance(v, float) for v in values) else str


@migrations()
def m001_initial(db: Database) -> None:
    _create_vocabularies(db)
    # statement by statement: executescript() would commit the migration's transaction
    for statement in filter(str.strip, _DDL.split(";\n")):
        db.execute(statement)
    for table, columns in FTS_COLUMNS.items():
        db[table].enable_fts(columns, create_triggers=True, tokenize="porter")
        # a per-row insert trigger makes FTS5 flush once per row (~20x slower in bulk);
        # the store indexes each batch's new rows in one statement instead (index_new_rows)
        db.execute(f'DROP TRIGGER "{table}_ai"')


_DDL_SYNTHESES = f"""
CREATE TABLE "syntheses" (
  "id" TEXT PRIMARY KEY, "title" TEXT NOT NULL,
  "response" TEXT NOT NULL {_vocab_ref("responses")},
  "filters" TEXT CHECK ("filters" IS NULL OR json_valid("filters")),
  "group_by" TEXT CHECK ("group_by" IN ('biome', 'ecosystem', 'mechanism', 'depth_class',
                                        'warming_bin', 'study_type', 'evidence_kind')),
  "group_value" TEXT,
  "model" TEXT NOT NULL CHECK ("model" IN ('multilevel', 'independent', 'robust')),
  "method" TEXT NOT NULL, "curator" TEXT, "origin" TEXT, "notes" TEXT,
  CHECK (("group_by" IS NULL) = ("group_value" IS NULL))
);
CREATE TABLE "synthesis_links" (
  "id" INTEGER PRIMARY KEY, "claim_id" TEXT NOT NULL {_FK} "claims"("id"),
  "synthesis_id" TEXT NOT NULL {_FK} "syntheses"("id"),
  "relation" TEXT NOT NULL {_vocab_ref("link_relations")}
    CHECK ("relation" IN ('supports', 'contradicts', 'qualifies')),
  "expects" TEXT CHECK ("expects" IN ('increase', 'decrease')),
  "note" TEXT NOT NULL, "curator" TEXT, "origin" TEXT,
  CHECK ("relation" = 'qualifies' OR "expects" IS NOT NULL)
);
CREATE UNIQUE INDEX "idx_synthesis_links_unique" ON "synthesis_links"("claim_id", "synthesis_id");
CREATE INDEX "idx_synthesis_links_synthesis" ON "synthesis_links"("synthesis_id")
"""


@migrations()
def m002_syntheses(db: Database) -> None:
    """Saved syntheses and the links that cite them as a claim's evidence from data. One
    link per (claim, synthesis): a synthesis bears on a claim in one way."""
    for statement in filter(str.strip, _DDL_SYNTHESES.split(";\n")):
        db.execute(statement)


@migrations()
def m003_site_descriptors(db: Database) -> None:
    """Study columns for what describes a site rather than a response to warming — its soil
    organic carbon stock (g C m-2) down to a depth (cm), a covariate for moderator analysis,
    never an effect — and for a global warming level (°C above pre-industrial) of a model
    or scenario study, which is not an experiment's warming increment (``warming_c``)."""
    for column, check in (("site_soc_stock_g_m2", '"site_soc_stock_g_m2" >= 0'),
                          ("site_soc_depth_cm", '"site_soc_depth_cm" > 0'),
                          ("warming_level_c", '"warming_level_c" > 0')):
        db.execute(f'ALTER TABLE "studies" ADD COLUMN "{column}" REAL CHECK ({check})')


_DDL_CLAIM_ALIASES = f"""
CREATE TABLE "claim_aliases" (
  "alias" TEXT PRIMARY KEY,
  "claim_id" TEXT NOT NULL {_FK} "claims"("id") ON DELETE CASCADE
);
CREATE INDEX "idx_claim_aliases_claim" ON "claim_aliases"("claim_id");
CREATE TRIGGER "claim_aliases_not_a_claim" BEFORE INSERT ON "claim_aliases"
WHEN EXISTS (SELECT 1 FROM "claims" WHERE "id" = NEW."alias")
BEGIN SELECT RAISE(ABORT, 'a claim alias may not be the id of a claim'); END;
CREATE TRIGGER "claims_not_an_alias" BEFORE INSERT ON "claims"
WHEN EXISTS (SELECT 1 FROM "claim_aliases" WHERE "alias" = NEW."id")
BEGIN SELECT RAISE(ABORT, 'a claim id may not be an alias of another claim'); END
"""


@migrations()
def m004_claim_aliases(db: Database) -> None:
    """Claim aliases: the retired ids of claims merged into another (``alias`` -> the
    canonical ``claim_id``), so an old id keeps naming its claim. An alias is never the id
    of a claim, and removing a claim removes its aliases."""
    for statement in filter(str.strip, _DDL_CLAIM_ALIASES.split(";\n")):
        db.execute(statement)


@migrations()
def m005_meta(db: Database) -> None:
    """A key-value table for facts about the base itself (the vocabularies' fingerprint)."""
    db.execute('CREATE TABLE "soc_kb_meta" ("key" TEXT PRIMARY KEY, "value" TEXT)')


def index_new_rows(db: Database, table: str, after_rowid: int) -> None:
    """Add rows inserted after ``after_rowid`` to the table's full-text index."""
    if table not in FTS_COLUMNS:
        return
    columns = ", ".join(f'"{c}"' for c in FTS_COLUMNS[table])
    db.execute(f'INSERT INTO "{table}_fts" (rowid, {columns}) SELECT rowid, {columns} '
               f'FROM "{table}" WHERE rowid > ?', [after_rowid])


def apply(db: Database) -> None:
    """Bring a database to the current schema and vocabularies (idempotent)."""
    migrations.apply(db)
    stored = db.execute("SELECT value FROM soc_kb_meta WHERE key = 'vocabulary_digest'").fetchone()
    if stored is None or stored[0] != vocabulary_digest():
        sync_vocabularies(db)
    db.execute(f"PRAGMA user_version = {schema_version()}")


def schema_version() -> int:
    """The schema this code writes: how many migrations it knows (``PRAGMA user_version``)."""
    return len(migrations._migrations)


SQLITE_HEADER = b"SQLite format 3\x00"


@dataclass(frozen=True)
class FileState:
    """What an existing file holds, read without writing to it."""

    empty: bool  # no tables at all: a new knowledge base may be made in it
    pending: bool  # a soc-kb base of an older schema: its migrations must run


def inspect_file(path: str) -> FileState:
    """Read (never write) ``path`` and say whether soc-kb may open it.

    Raises :class:`~kb.errors.StoreError` for a file that is not SQLite, a SQLite database
    of another program, or a knowledge base written by a newer soc-kb. The check opens a
    read-only connection, so a refused file stays byte for byte as it was.
    """
    with open(path, "rb") as handle:
        head = handle.read(len(SQLITE_HEADER))
    if not head:
        return FileState(empty=True, pending=True)
    if head != SQLITE_HEADER:
        raise StoreError(f"{path}: not a SQLite database (it starts with {head[:8]!r}); "
                         "give the path of a soc-kb knowledge base or of a new file")
    tables, applied, version, digest = _read_schema(path)
    if not tables:
        return FileState(empty=True, pending=True)
    if "_sqlite_migrations" not in tables or not applied:
        shown = ", ".join(sorted(tables)[:5]) + (", …" if len(tables) > 5 else "")
        raise StoreError(f"{path}: a SQLite database of another program (tables {shown}), not a "
                         "soc-kb knowledge base; soc-kb leaves it untouched — give another --db")
    known = [m.name for m in migrations._migrations]
    unknown = [name for name in applied if name not in known]
    if unknown or version > schema_version():
        raise StoreError(f"{path}: written by a newer soc-kb (schema version {version}, migration "
                         f"'{(unknown or [applied[-1]])[0]}'); this soc-kb reads schema version "
                         f"{schema_version()} — upgrade soc-kb to open it")
    return FileState(empty=False, pending=set(known) != set(applied) or digest != vocabulary_digest())


def _read_schema(path: str) -> tuple[set[str], list[str], int, str | None]:
    """Tables, soc-kb migrations applied, user_version and the vocabularies' fingerprint,
    from a read-only connection."""
    # Without a write-ahead log beside it the file holds everything: read it as immutable,
    # so SQLite does not leave a -wal and -shm beside a file that is not ours.
    immutable = "&immutable=1" if not Path(f"{path}-wal").exists() else ""
    uri = f"file:{pathname2url(str(Path(path).resolve()))}?mode=ro{immutable}"
    try:
        conn = sqlite3.connect(uri, uri=True)
        try:
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            applied = [r[0] for r in conn.execute(
                "SELECT name FROM _sqlite_migrations WHERE migration_set = ? ORDER BY rowid",
                [migrations.name])] if "_sqlite_migrations" in tables else []
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            digest = conn.execute("SELECT value FROM soc_kb_meta WHERE key = 'vocabulary_digest'"
                                  ).fetchone() if "soc_kb_meta" in tables else None
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        raise StoreError(storage_problem(path, exc)) from None
    return tables, applied, version, digest[0] if digest else None


#: SQLite's words -> what they mean for a soc-kb user and what to do
_PROBLEMS = {
    "readonly": "the file is read-only (permissions or a read-only disk): soc-kb can read it "
                "but not write to it; copy it somewhere writable to change it",
    "disk is full": "the disk is full; nothing was written — free some space and try again",
    "not a database": "not a readable SQLite database (damaged or encrypted); restore it from "
                      "an export or a backup",
    "malformed": "the database file is damaged (malformed); restore it from an export or a backup",
    "unable to open": "cannot be opened (a missing folder, or no permission to read it)",
    "locked": "another program holds the database's write lock; try again when it has finished",
}


def storage_problem(path: str, exc: sqlite3.Error) -> str:
    """One line for a SQLite error on ``path``: what happened and what to do."""
    text = str(exc)
    for words, meaning in _PROBLEMS.items():
        if words in text:
            return f"{path}: {meaning}"
    return f"{path}: the database refused the operation ({text[:200]})"

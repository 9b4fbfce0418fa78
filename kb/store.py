"""``KnowledgeBase``: the Python API over the SQLite store.

Every connection has foreign keys on, a busy timeout and (for files) WAL; every write runs
in one ``BEGIN IMMEDIATE`` transaction, so a batch lands whole or not at all and two
writers queue instead of failing. Updates and removals are recorded in ``changes``.
"""

from __future__ import annotations

import getpass
import json
import numbers
import os
import sqlite3
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
from sqlite_utils import Database

from . import schema
from .batch import PK, Batch, check_term, prepare
from .bib import format_reference, read_bib_file
from .errors import DependencyError, DuplicateError, KBError, NotFoundError, RecordError, StoreError
from .query import (
    RANGE_FILTERS,
    StudyFilter,
    Where,
    as_list,
    fts_query,
    missing_condition,
    study_conditions,
)
from .records import PART_OF, TABLES, shown, validate

BUSY_TIMEOUT_MS = 60_000
DEFAULT_DB = "soc-kb.db"  # the database of the CLI and the explorer when none is named
DB_ENV = "SOC_KB_DB"  # the environment variable that names it

#: table -> (dependent table, its column pointing here)
DEPENDENTS = {
    "sources": [("studies", "source_key"), ("claims", "source_key")],
    "studies": [("effects", "study_id"), ("claim_links", "study_id")],
    "claims": [("claim_links", "claim_id"), ("claim_links", "other_claim_id"),
               ("synthesis_links", "claim_id")],
    "effects": [],
    "claim_links": [],
    "syntheses": [("synthesis_links", "synthesis_id")],
    "synthesis_links": [],
}

#: integer columns of each query's result (SQLite gives floats once a NULL is among them)
INTEGER_COLUMNS = {
    "studies_query": {"year", "start_year"},
    "effects_query": {"year", "n_t", "n_c"},
    "claims": {"n_supports", "n_contradicts", "n_qualifies"},
    "claim_links": {"id"},
    "synthesis_links": {"id"},
    "sources": {"year"},
    "changes": {"id"},
}

_SINGULAR = {"studies": "study", "syntheses": "synthesis"}  # the others lose their "s"

_FROM_STUDIES = " FROM studies s LEFT JOIN sources src ON src.key = s.source_key"

_STUDY_COLUMNS = """s.*, src.first_author AS first_author, src.year AS year,
  src.title AS source_title, src.doi AS doi,
  (SELECT group_concat(mechanism, ';') FROM study_mechanisms m WHERE m.study_id = s.id) AS mechanisms"""


class KnowledgeBase:
    """The SOC–warming evidence knowledge base stored in one SQLite file.

    ``KnowledgeBase(path)`` opens ``path``, creating it from the shipped seed (the review's
    sources, studies and claims) when the file does not exist; ``seed=False`` creates an
    empty one, ``create=False`` refuses a path where there is no file (a mistyped name).
    ``":memory:"`` gives a private in-memory base.

    An existing file is read before anything is written to it: a file that is not SQLite,
    another program's database or a base of a newer soc-kb is refused with a
    :class:`~kb.errors.StoreError` and left byte for byte as it was. Opening an up-to-date
    base writes nothing, so a read-only file can be queried.
    """

    def __init__(self, path: str | os.PathLike = DEFAULT_DB, *, seed: bool = True,
                 create: bool = True, curator: str | None = None):
        self.path = str(path)
        self.curator = curator
        self.who = curator or _user()
        self._vocab_cache: dict[str, list[str]] = {}
        memory = self.path == ":memory:"
        state = schema.FileState(empty=True, pending=True) if memory else self._inspect(create)
        try:
            self.db = Database(memory=True) if memory else Database(self.path)
            self._configure(new=state.pending)
            if state.pending:
                with self.write():
                    schema.apply(self.db)
                    if state.empty and seed and self._is_empty():
                        from .seed import load_seed

                        load_seed(self)
        except sqlite3.Error as exc:
            raise StoreError(schema.storage_problem(self.path, exc)) from None

    def _inspect(self, create: bool) -> schema.FileState:
        path = Path(self.path)
        if path.is_dir():
            raise StoreError(f"{path}: is a folder; give the path of a knowledge-base file")
        if not path.exists():
            if not create:
                raise StoreError(f"{path}: no knowledge base here; create one with "
                                 f"'soc-kb --db {path} init', or check the path")
            return schema.FileState(empty=True, pending=True)
        return schema.inspect_file(self.path)

    # -- connection ---------------------------------------------------------------------

    def _configure(self, new: bool) -> None:
        self.db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        self.db.execute("PRAGMA foreign_keys = ON")
        self.db.execute("PRAGMA cache_size = -32768")  # 32 MiB: index upkeep in bulk imports
        if self.path != ":memory:":
            if new:  # switching the journal writes the file: only for a base being made
                self.db.execute("PRAGMA journal_mode = WAL")
            self.db.execute("PRAGMA synchronous = NORMAL")

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> KnowledgeBase:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @contextmanager
    def write(self):
        """One immediate transaction (nested calls join the outer one)."""
        conn = self.db.conn
        if conn.in_transaction:
            yield
            return
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                if conn.in_transaction:  # SQLite ends it itself on some errors (a full disk)
                    conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        except sqlite3.IntegrityError as exc:
            raise StoreError(f"{self.path}: the database refused a record that would break its "
                             f"rules ({str(exc)[:200]}); nothing was written") from None
        except sqlite3.Error as exc:
            raise StoreError(schema.storage_problem(self.path, exc)) from None

    @contextmanager
    def trial(self):
        """Writes made inside are rolled back at the end, whatever happens (a savepoint):
        for asking what a batch *would* change."""
        conn = self.db.conn
        conn.execute("SAVEPOINT soc_kb_trial")
        try:
            yield self
        finally:
            conn.execute("ROLLBACK TO soc_kb_trial")
            conn.execute("RELEASE soc_kb_trial")

    def counts(self) -> dict[str, int]:
        """How many records each table holds."""
        return {t: self.db.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in TABLES}

    def _is_empty(self) -> bool:
        return not any(self.db.execute(f'SELECT 1 FROM "{t}" LIMIT 1').fetchone() for t in TABLES)

    # -- lookups used by validation -----------------------------------------------------

    def vocabulary_names(self, vocabulary: str) -> list[str]:
        if vocabulary not in self._vocab_cache:
            rows = self.db.execute(f'SELECT name FROM "{vocabulary}" ORDER BY position, name')
            self._vocab_cache[vocabulary] = [r[0] for r in rows]
        return self._vocab_cache[vocabulary]

    def existing_keys(self, table: str, keys: list) -> set:
        found, pk = set(), PK[table]
        for start in range(0, len(keys), 500):
            chunk = keys[start:start + 500]
            marks = ", ".join("?" * len(chunk))
            rows = self.db.execute(f'SELECT "{pk}" FROM "{table}" WHERE "{pk}" IN ({marks})', chunk)
            found.update(r[0] for r in rows)
        return found

    def source_with_doi(self, doi: str) -> str | None:
        row = self.db.execute("SELECT key FROM sources WHERE lower(doi) = lower(?)", [doi]).fetchone()
        return row[0] if row else None

    def link_exists(self, claim_id, study_id, other_claim_id, relation) -> bool:
        row = self.db.execute(
            "SELECT 1 FROM claim_links WHERE claim_id = ? AND coalesce(study_id, '') = ? "
            "AND coalesce(other_claim_id, '') = ? AND relation = ?",
            [claim_id, study_id or "", other_claim_id or "", relation]).fetchone()
        return row is not None

    def synthesis_link_exists(self, claim_id, synthesis_id) -> bool:
        row = self.db.execute("SELECT 1 FROM synthesis_links WHERE claim_id = ? AND synthesis_id = ?",
                              [claim_id, synthesis_id]).fetchone()
        return row is not None

    def claim_alias_targets(self, names: list) -> dict[str, str]:
        """Of ``names``, those that are claim aliases -> the id of the claim each names."""
        found: dict[str, str] = {}
        for start in range(0, len(names), 500):
            chunk = names[start:start + 500]
            marks = ", ".join("?" * len(chunk))
            found.update(self.db.execute(
                f"SELECT alias, claim_id FROM claim_aliases WHERE alias IN ({marks})", chunk))
        return found

    def resolve_claim(self, claim_id) -> str:
        """The id of the claim ``claim_id`` names: itself, or the claim an alias (a retired
        id of a merged claim) points to. An unknown id is returned as it is."""
        row = self.db.execute("SELECT claim_id FROM claim_aliases WHERE alias = ?", [claim_id]).fetchone()
        return row[0] if row else claim_id

    def max_link_id(self) -> int:
        return self.db.execute("SELECT coalesce(max(id), 0) FROM claim_links").fetchone()[0]

    def effect_count(self, study_id: str) -> int:
        return self.db.execute("SELECT count(*) FROM effects WHERE study_id = ?", [study_id]).fetchone()[0]

    # -- adding -------------------------------------------------------------------------

    def add_records(self, records: dict[str, list[dict]], where: str = "", progress=None,
                    origins: dict | None = None) -> dict[str, int]:
        """Add a batch (table -> list of records) in one transaction; return counts per table.

        All records are validated first; one bad record refuses the whole batch with a
        :class:`~kb.errors.RecordError` and nothing is written.
        """
        with self.write():
            batch = prepare(self, records, where, origins)
            self._insert(batch, progress)
        return batch.count()

    def add_source(self, record: dict) -> str:
        return self._add_one("sources", record)

    def add_study(self, record: dict) -> str:
        return self._add_one("studies", record)

    def add_effect(self, record: dict) -> str:
        return self._add_one("effects", record)

    def add_claim(self, record: dict) -> str:
        return self._add_one("claims", record)

    def add_link(self, record: dict) -> int:
        return self._add_one("claim_links", record)

    def add_synthesis(self, record: dict) -> str:
        """Save a synthesis (a query: response, filters, group, model); return its id."""
        return self._add_one("syntheses", record)

    def add_synthesis_link(self, record: dict) -> int:
        """Cite a synthesis as a claim's evidence (relation, expects, note); return the link id."""
        return self._add_one("synthesis_links", record)

    def add_sources(self, records: list[dict]) -> int:
        return self.add_records({"sources": records}).get("sources", 0)

    def add_studies(self, records: list[dict]) -> int:
        return self.add_records({"studies": records}).get("studies", 0)

    def add_effects(self, records: list[dict]) -> int:
        return self.add_records({"effects": records}).get("effects", 0)

    def add_claims(self, records: list[dict]) -> int:
        return self.add_records({"claims": records}).get("claims", 0)

    def add_links(self, records: list[dict]) -> int:
        return self.add_records({"claim_links": records}).get("claim_links", 0)

    def _add_one(self, table: str, record: dict):
        with self.write():
            batch = prepare(self, {table: [record]})
            self._insert(batch)
            return batch.rows[table][0][PK[table]]

    def _insert(self, batch: Batch, progress=None) -> None:
        for table in TABLES:
            rows = batch.rows[table]
            if rows:
                self._insert_rows(table, rows, progress)
            if table == "studies" and batch.mechanisms:
                self.db.conn.executemany(
                    "INSERT INTO study_mechanisms (study_id, mechanism) VALUES (?, ?)", batch.mechanisms)
            if table == "claims" and batch.aliases:
                self.db.conn.executemany(
                    "INSERT INTO claim_aliases (alias, claim_id) VALUES (?, ?)", batch.aliases)

    def _insert_rows(self, table: str, rows: list[dict], progress=None) -> None:
        columns = list(schema.COLUMNS[table])
        marks = ", ".join("?" * len(columns))
        last_rowid = self.db.execute(f'SELECT coalesce(max(rowid), 0) FROM "{table}"').fetchone()[0]
        sql = f'INSERT INTO "{table}" ({", ".join(columns)}) VALUES ({marks})'
        for start in range(0, len(rows), 1000):
            chunk = rows[start:start + 1000]
            self.db.conn.executemany(sql, [[r.get(c) for c in columns] for r in chunk])
            self._audit_inserts(table, chunk)
            if progress:
                progress(len(chunk))
        schema.index_new_rows(self.db, table, last_rowid)

    def _audit_inserts(self, table: str, rows: list[dict]) -> None:
        at = _now()
        pk = PK[table]
        self.db.conn.executemany(
            "INSERT INTO changes (table_name, record_key, action, before, after, who, at) "
            "VALUES (?, ?, 'insert', NULL, ?, ?, ?)",
            [(table, str(r.get(pk)), _json(r), self.who, at) for r in rows])

    # -- reading one record -------------------------------------------------------------

    def get(self, table: str, key) -> dict:
        """One stored record as a dict (studies include their ``mechanisms`` list)."""
        if table not in PK:
            raise KBError(f"unknown table '{table}'; expected one of {', '.join(PK)}")
        key = self.resolve_claim(key) if table == "claims" else key
        row = self.db.execute(f'SELECT * FROM "{table}" WHERE "{PK[table]}" = ?', [key]).fetchone()
        if row is None:
            raise NotFoundError(f"{table}: no record with {PK[table]} {shown(key)}")
        record = dict(zip(schema.COLUMNS[table], row, strict=False))
        if table == "studies":
            record["mechanisms"] = self._mechanisms(key)
        if table == "claims":
            record["aliases"] = self._aliases(key)
        return record

    def study(self, study_id: str) -> dict:
        return self.get("studies", study_id)

    def claim(self, claim_id: str) -> dict:
        """One claim, by its id or an alias (a retired id), with its ``aliases`` list."""
        return self.get("claims", claim_id)

    def _aliases(self, claim_id: str) -> list[str]:
        rows = self.db.execute("SELECT alias FROM claim_aliases WHERE claim_id = ? ORDER BY rowid",
                               [claim_id])
        return [r[0] for r in rows]

    def _mechanisms(self, study_id: str) -> list[str]:
        rows = self.db.execute("SELECT mechanism FROM study_mechanisms WHERE study_id = ? "
                               "ORDER BY mechanism", [study_id])
        return [r[0] for r in rows]

    # -- updating -----------------------------------------------------------------------

    def update(self, table: str, key, changes: dict) -> dict:
        """Change some fields of a stored record (validated as a whole); return the new record."""
        key = self.resolve_claim(key) if table == "claims" else key
        with self.write():
            before = self.get(table, key)
            if PK[table] in changes and changes[PK[table]] != key:
                raise RecordError("the key of a stored record cannot change; add a new record "
                                  "and remove this one", table=table, record=str(key), field=PK[table])
            after = {k: v for k, v in {**before, **changes}.items() if v is not None}
            clean = self._validated_update(table, key, after)
            if table == "sources":  # the stored BibTeX entry is rewritten to hold the edit
                from .bib import rerender_source

                clean = self._validated_update(table, key, rerender_source(before, clean, changes))
            self._write_update(table, key, clean)
            self._audit(table, key, "update", before, self.get(table, key))
        return self.get(table, key)

    def _validated_update(self, table: str, key, record: dict) -> dict:
        from .batch import _check_references, _check_vocabularies, _collect_mechanisms, _complete

        label = shown(key)
        clean = _complete(self, table, validate(table, record, label), _now())
        batch = Batch()
        batch.rows[table], batch.labels[table] = [clean], [label]
        _collect_mechanisms(batch)
        _check_vocabularies(self, batch, table)
        _check_references(self, batch, table)
        if table == "syntheses":
            from .batch import check_syntheses

            check_syntheses(self, batch)
        for _, mechanism in batch.mechanisms:
            check_term(self, "mechanisms", mechanism, table=table, record=label, field="mechanisms")
        clean["mechanisms"] = [m for _, m in batch.mechanisms]
        if table == "claims":
            from .batch import check_aliases, collect_aliases

            collect_aliases(batch)
            check_aliases(self, batch, updating=key)
            clean["aliases"] = [a for a, _ in batch.aliases]
        self._check_still_unique(table, key, clean, label)
        return clean

    def _check_still_unique(self, table: str, key, record: dict, label: str) -> None:
        """An update may not give a record the DOI or the link of another one."""
        if table == "sources" and record.get("doi"):
            owner = self.source_with_doi(record["doi"])
            if owner is not None and owner != key:
                raise DuplicateError(f"DOI '{record['doi']}' already belongs to source '{owner}'",
                                     table=table, record=label, field="doi",
                                     allowed="a work is entered once; cite the existing source key")
        if table == "claim_links":
            row = self.db.execute(
                "SELECT id FROM claim_links WHERE claim_id = ? AND coalesce(study_id, '') = ? "
                "AND coalesce(other_claim_id, '') = ? AND relation = ? AND id != ?",
                [record["claim_id"], record.get("study_id") or "", record.get("other_claim_id") or "",
                 record["relation"], key]).fetchone()
            if row is not None:
                raise DuplicateError(f"link {row[0]} already links '{record['claim_id']}' this way",
                                     table=table, record=label, field="relation",
                                     allowed="a link is recorded once; update or remove that one")
        if table == "synthesis_links":
            row = self.db.execute("SELECT id FROM synthesis_links WHERE claim_id = ? AND "
                                  "synthesis_id = ? AND id != ?",
                                  [record["claim_id"], record["synthesis_id"], key]).fetchone()
            if row is not None:
                raise DuplicateError(f"synthesis link {row[0]} already has '{record['claim_id']}' "
                                     f"cite '{record['synthesis_id']}'", table=table, record=label,
                                     field="synthesis_id",
                                     allowed="a claim cites a synthesis once; update that link")

    def _write_update(self, table: str, key, record: dict) -> None:
        columns = [c for c in schema.COLUMNS[table] if c != PK[table]]
        assignments = ", ".join(f'"{c}" = ?' for c in columns)
        self.db.execute(f'UPDATE "{table}" SET {assignments} WHERE "{PK[table]}" = ?',
                        [record.get(c) for c in columns] + [key])
        if table == "studies":
            self.db.execute("DELETE FROM study_mechanisms WHERE study_id = ?", [key])
            self.db.conn.executemany("INSERT INTO study_mechanisms VALUES (?, ?)",
                                     [(key, m) for m in record["mechanisms"]])
        if table == "claims":
            self.db.execute("DELETE FROM claim_aliases WHERE claim_id = ?", [key])
            self.db.conn.executemany("INSERT INTO claim_aliases (alias, claim_id) VALUES (?, ?)",
                                     [(a, key) for a in record["aliases"]])

    def update_source(self, key: str, **changes) -> dict:
        return self.update("sources", key, changes)

    def update_study(self, study_id: str, **changes) -> dict:
        return self.update("studies", study_id, changes)

    def update_effect(self, effect_id: str, **changes) -> dict:
        return self.update("effects", effect_id, changes)

    def update_claim(self, claim_id: str, **changes) -> dict:
        return self.update("claims", claim_id, changes)

    def update_link(self, link_id: int, **changes) -> dict:
        return self.update("claim_links", link_id, changes)

    def update_synthesis(self, synthesis_id: str, **changes) -> dict:
        return self.update("syntheses", synthesis_id, changes)

    def update_synthesis_link(self, link_id: int, **changes) -> dict:
        return self.update("synthesis_links", link_id, changes)

    # -- removing -----------------------------------------------------------------------

    def remove(self, table: str, key, cascade: bool = False) -> int:
        """Remove a record; refuse if others depend on it unless ``cascade``. Returns rows removed."""
        key = self.resolve_claim(key) if table == "claims" else key
        with self.write():
            self.get(table, key)
            dependents = self._dependents(table, key)
            if dependents and not cascade:
                listed = ", ".join(f"{len(keys)} {t}" for t, keys in dependents.items())
                raise DependencyError(f"{_SINGULAR.get(table, table[:-1])} '{key}' is "
                                      f"referenced by {listed}; remove those first or pass "
                                      "cascade=True (--cascade)")
            removed = sum(self.remove(t, k, cascade=True) for t, keys in dependents.items() for k in keys)
            before = self.get(table, key)
            self.db.execute(f'DELETE FROM "{table}" WHERE "{PK[table]}" = ?', [key])
            self._audit(table, key, "delete", before, None)
        return removed + 1

    def _dependents(self, table: str, key) -> dict[str, list]:
        found: dict[str, list] = {}
        for dependent, column in DEPENDENTS[table]:
            rows = self.db.execute(f'SELECT "{PK[dependent]}" FROM "{dependent}" WHERE "{column}" = ?', [key])
            keys = [r[0] for r in rows if r[0] not in found.get(dependent, [])]
            if keys:
                found.setdefault(dependent, []).extend(keys)
        return found

    def remove_source(self, key: str, cascade: bool = False) -> int:
        return self.remove("sources", key, cascade)

    def remove_study(self, study_id: str, cascade: bool = False) -> int:
        return self.remove("studies", study_id, cascade)

    def remove_effect(self, effect_id: str) -> int:
        return self.remove("effects", effect_id)

    def remove_claim(self, claim_id: str, cascade: bool = False) -> int:
        return self.remove("claims", claim_id, cascade)

    def remove_link(self, link_id: int) -> int:
        return self.remove("claim_links", link_id)

    def remove_synthesis(self, synthesis_id: str, cascade: bool = False) -> int:
        return self.remove("syntheses", synthesis_id, cascade)

    def remove_synthesis_link(self, link_id: int) -> int:
        return self.remove("synthesis_links", link_id)

    def _audit(self, table: str, key, action: str, before: dict | None, after: dict | None) -> None:
        self.db.execute(
            "INSERT INTO changes (table_name, record_key, action, before, after, who, at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            [table, str(key), action, _json(before), _json(after), self.who, _now()])

    # -- queries ------------------------------------------------------------------------

    def studies(self, limit: int | None = None, **filters) -> pd.DataFrame:
        """Studies matching the filters (see :class:`~kb.query.StudyFilter`), with citation columns."""
        where = study_conditions(self, _filter(filters))
        sql = (f"SELECT {_STUDY_COLUMNS} FROM studies s LEFT JOIN sources src "
               f"ON src.key = s.source_key{where.sql()} ORDER BY s.id{_limit(limit)}")
        return _with_mechanism_lists(self._frame(sql, where.params, "studies_query"))

    def effects(self, limit: int | None = None, response=None, measure=None, **filters) -> pd.DataFrame:
        """Effects of the studies matching the filters, with their study's system columns.

        ``warming`` filters on the effect's warming, else its study's.
        """
        flt = _filter(filters | ({"response": response} if response else {}))
        where = study_conditions(self, flt, warming_column="coalesce(e.warming_c, s.warming_c)")
        if response:
            where.any_of("e.response", as_list(response))
        if measure:
            where.any_of("e.measure", as_list(measure))
        sql = f"""SELECT e.*, coalesce(e.warming_c, s.warming_c) AS warming_c,
              coalesce(e.duration_years, s.duration_years) AS duration_years,
              s.source_key, s.study_type, s.biome, s.ecosystem, s.depth_class, s.soc_direction,
              s.site, s.country, s.lat, s.lon, src.first_author AS first_author, src.year AS year,
              (SELECT group_concat(mechanism, ';') FROM study_mechanisms m
               WHERE m.study_id = s.id) AS mechanisms
            FROM effects e JOIN studies s ON s.id = e.study_id
            LEFT JOIN sources src ON src.key = s.source_key{where.sql()}
            ORDER BY e.study_id, e.id{_limit(limit)}"""
        frame = self._frame(sql, where.params, "effects_query")
        frame = frame.loc[:, ~frame.columns.duplicated(keep="last")]
        return _with_mechanism_lists(frame)

    def claims(self, limit: int | None = None, biome=None, ecosystem=None, mechanism=None,
               depth_class=None, section=None, text=None, study_id=None,
               claim_id=None) -> pd.DataFrame:
        """Claims, filtered by scope, section, text or id (an alias selects its claim), with
        counts of their evidence links."""
        where = Where()
        if as_list(claim_id):
            where.any_of("c.id", [self.resolve_claim(c) for c in as_list(claim_id)])
        for value, column, vocab in ((biome, "scope_biome", "biomes"),
                                     (ecosystem, "scope_ecosystem", "ecosystems"),
                                     (mechanism, "scope_mechanism", "mechanisms"),
                                     (depth_class, "scope_depth_class", "depth_classes")):
            values = as_list(value)
            if values:
                for v in values:
                    _check_filter(self, vocab, v, column)
                where.any_of(f"c.{column}", values)
        if section:
            where.add("c.section LIKE ?", f"%{section}%")
        if fts_query(self.db, text):
            where.add("c.rowid IN (SELECT rowid FROM claims_fts WHERE claims_fts MATCH ?)",
                      fts_query(self.db, text))
        if study_id:
            where.add("c.id IN (SELECT claim_id FROM claim_links WHERE study_id = ?)", study_id)
        counts = ", ".join(
            f"(SELECT count(*) FROM claim_links l WHERE l.claim_id = c.id AND l.study_id IS NOT NULL "
            f"AND l.relation = '{r}') AS n_{r}" for r in ("supports", "contradicts", "qualifies"))
        sql = f"SELECT c.*, {counts} FROM claims c{where.sql()} ORDER BY c.rowid{_limit(limit)}"
        return self._frame(sql, where.params, "claims")

    # -- narrow reads (the explorer's first render at 10^5 studies cannot afford full rows) -

    def count_studies(self, **filters) -> int:
        """How many studies the filters select (``len(self.studies(**filters))``, cheaply)."""
        where = study_conditions(self, _filter(filters))
        return self.db.execute(f"SELECT count(*){_FROM_STUDIES}{where.sql()}", where.params).fetchone()[0]

    def missing_values(self, **filters) -> dict[str, int]:
        """For each range filter given (``depth_range``, ``warming``, ``year``, ``duration``):
        how many studies the other filters select that state no value for it, so the range
        leaves them out (unless ``include_missing=True`` keeps them)."""
        flt = _filter(filters)
        counts = {}
        for name in RANGE_FILTERS:
            if getattr(flt, name) is None:
                continue
            where = study_conditions(self, replace(flt, **{name: None}))
            where.add(missing_condition(name))
            counts[name] = self.db.execute(f"SELECT count(*){_FROM_STUDIES}{where.sql()}",
                                           where.params).fetchone()[0]
        return counts

    def site_points(self, limit: int, **filters) -> tuple[pd.DataFrame, int]:
        """The first ``limit`` located studies the filters select (id, lat, lon, biome,
        site) and how many located studies there are in all."""
        where = study_conditions(self, _filter(filters))
        where.add("s.lat IS NOT NULL AND s.lon IS NOT NULL")
        n = self.db.execute(f"SELECT count(*){_FROM_STUDIES}{where.sql()}", where.params).fetchone()[0]
        sql = (f"SELECT s.id, s.lat, s.lon, s.biome, s.site{_FROM_STUDIES}{where.sql()} "
               f"ORDER BY s.id{_limit(limit)}")
        return self._frame(sql, where.params, "site_points"), n

    def effect_columns(self, columns: list[str], response=None, **filters) -> pd.DataFrame:
        """Only ``columns`` of the effects ``self.effects(response=..., **filters)`` returns
        (same rows, same order): the effects table's own columns, and ``source_key`` (the
        source of the effect's study, which nests its site in a multilevel pool)."""
        unknown = [c for c in columns if c not in schema.COLUMNS["effects"] and c != "source_key"]
        if unknown:
            raise KBError(f"unknown effect column '{unknown[0]}'; expected effects table columns")
        flt = _filter(filters | ({"response": response} if response else {}))
        where = study_conditions(self, flt, warming_column="coalesce(e.warming_c, s.warming_c)")
        if response:
            where.any_of("e.response", as_list(response))
        picked = ", ".join("s.source_key" if c == "source_key" else f"e.{c}" for c in columns)
        sql = (f"SELECT {picked} FROM effects e "
               f"JOIN studies s ON s.id = e.study_id LEFT JOIN sources src ON src.key = s.source_key"
               f"{where.sql()} ORDER BY e.study_id, e.id")
        return self._frame(sql, where.params, "effects_query")

    def response_counts(self) -> dict[str, tuple[int, int]]:
        """Response -> (effects a pooled lnRR can use, all effects), most poolable first.

        Poolable: a log response ratio (``ROM``) with a positive finite variance that is not
        a breakdown (``part of ...``) of another effect — what the explorer's pooled effect
        uses, so the default response is one with evidence to pool.
        """
        sql = ("SELECT response, sum(CASE WHEN measure = 'ROM' AND yi IS NOT NULL AND vi > 0 "
               "AND vi < 1e308 AND substr(coalesce(quality_flag, ''), 1, ?) != ? THEN 1 ELSE 0 END) "
               "AS pooled, count(*) AS n "
               "FROM effects GROUP BY response ORDER BY pooled DESC, n DESC, response")
        rows = self.db.execute(sql, [len(PART_OF), PART_OF]).fetchall()
        return {response: (int(pooled), int(n)) for response, pooled, n in rows}

    def study_ids(self, contains: str | None = None, first: str | None = None,
                  limit: int | None = None) -> list[str]:
        """Study ids containing ``contains`` (any case), in order, with ``first`` (when it
        exists) at the top; at most ``limit``."""
        sql = ("SELECT id FROM studies WHERE instr(lower(id), lower(?)) > 0 OR id = ? "
               f"ORDER BY id = ? DESC, id{_limit(limit)}")
        return [row[0] for row in self.db.execute(sql, [contains or "", first, first])]

    def find_studies(self, text: str | None = None, first: str | None = None,
                     limit: int | None = None) -> pd.DataFrame:
        """Studies whose id, site, country or source (authors, title, journal, DOI) hold
        every word of ``text`` (any case; each word may match a different field), ``first``
        (when it exists) at the top: id, site, country and the source's first_author,
        authors, year, title, journal, doi (every field searched, so a match can be seen).

        A substring scan (``instr``), not the full-text index: it finds parts of words, ids
        and DOIs. In id order it stops at ``limit`` matches; a search that matches few of
        10^5 studies reads them all, ~0.2 s (fine for a search box). Case is folded for
        ASCII only (SQLite's ``lower``).
        """
        words = _search_words(text)
        fields = ("s.id", "s.site", "s.country", "src.authors", "src.title", "src.journal", "src.doi")
        match, params = _all_words(words, fields)
        where = f" WHERE ({match}) OR s.id = ?" if words else ""
        # "first on top" sorts every match; plain id order walks the key and stops early
        order = "s.id = ? DESC, s.id" if first else "s.id"
        sql = ("SELECT s.id, s.site, s.country, src.first_author AS first_author, src.authors AS "
               "authors, src.year AS year, src.title AS title, src.journal AS journal, src.doi AS doi"
               f"{_FROM_STUDIES}{where} ORDER BY {order}{_limit(limit)}")
        return self._frame(sql, [*params, *([first] if words else []), *([first] if first else [])],
                           "studies_query")

    def find_sources(self, text: str | None = None, limit: int | None = None) -> pd.DataFrame:
        """Sources holding every word of ``text`` in their key, authors, title, journal,
        year, volume, publisher or DOI (any case; a substring scan, as :meth:`find_studies`),
        by key: the columns of :meth:`sources`."""
        words = _search_words(text)
        fields = ("key", "authors", "title", "journal", "CAST(year AS TEXT)", "volume",
                  "publisher", "doi")
        match, params = _all_words(words, fields)
        where = f" WHERE {match}" if words else ""
        return self._frame(f"SELECT * FROM sources{where} ORDER BY key{_limit(limit)}", params,
                           "sources")

    def claim_aliases(self, claim_id=None) -> pd.DataFrame:
        """Claim aliases (``alias``, ``claim_id``): the retired ids of merged claims, by claim
        then in the order given; ``claim_id`` (an id or an alias) selects one claim's."""
        where = Where()
        if as_list(claim_id):
            where.any_of("claim_id", [self.resolve_claim(c) for c in as_list(claim_id)])
        return self._frame(f"SELECT alias, claim_id FROM claim_aliases{where.sql()} "
                           "ORDER BY claim_id, rowid", where.params, "claim_aliases")

    def table_rows(self, table: str) -> list[dict]:
        """Every stored row of a record table, in insertion order, as plain dicts."""
        if table not in PK:
            raise KBError(f"unknown table '{table}'; expected one of {', '.join(PK)}")
        columns = list(schema.COLUMNS[table])
        cursor = self.db.execute(f'SELECT {", ".join(columns)} FROM "{table}" ORDER BY rowid')
        return [dict(zip(columns, row, strict=True)) for row in cursor]

    def mechanism_pairs(self) -> list[tuple[str, str]]:
        """Every (study id, mechanism) pair, by study then mechanism."""
        return list(self.db.execute(
            "SELECT study_id, mechanism FROM study_mechanisms ORDER BY study_id, mechanism"))

    def links(self, claim_id=None, study_id=None, relation=None) -> pd.DataFrame:
        """Claim links (evidence and claim-to-claim relations); ``claim_id`` may be an alias."""
        where = Where()
        claim_id = [self.resolve_claim(c) for c in as_list(claim_id) or []]
        for value, column in ((claim_id, "claim_id"), (study_id, "study_id"), (relation, "relation")):
            values = as_list(value)
            if values:
                where.any_of(column, values)
        return self._frame(f"SELECT * FROM claim_links{where.sql()} ORDER BY id", where.params, "claim_links")

    def syntheses(self, synthesis_id=None, response=None) -> pd.DataFrame:
        """Saved syntheses (their definitions; :mod:`kb.claims.syntheses` runs them), with
        ``filters`` as JSON text and the number of claims citing each (``n_claims``)."""
        where = Where()
        for value, column in ((synthesis_id, "s.id"), (response, "s.response")):
            if as_list(value):
                where.any_of(column, as_list(value))
        sql = ("SELECT s.*, (SELECT count(*) FROM synthesis_links l WHERE l.synthesis_id = s.id) "
               f"AS n_claims FROM syntheses s{where.sql()} ORDER BY s.rowid")
        return self._frame(sql, where.params, "syntheses")

    def synthesis(self, synthesis_id: str) -> dict:
        """One saved synthesis, its ``filters`` as a mapping (empty: every study)."""
        record = self.get("syntheses", synthesis_id)
        record["filters"] = json.loads(record["filters"]) if record["filters"] else {}
        return record

    def synthesis_links(self, claim_id=None, synthesis_id=None, relation=None) -> pd.DataFrame:
        """Claim ↔ synthesis links (a synthesis cited as a claim's evidence from data);
        ``claim_id`` may be an alias."""
        where = Where()
        claim_id = [self.resolve_claim(c) for c in as_list(claim_id) or []]
        for value, column in ((claim_id, "claim_id"), (synthesis_id, "synthesis_id"),
                              (relation, "relation")):
            if as_list(value):
                where.any_of(column, as_list(value))
        return self._frame(f"SELECT * FROM synthesis_links{where.sql()} ORDER BY id", where.params,
                           "synthesis_links")

    def sources(self, limit: int | None = None, year=None, text=None, key=None, doi=None,
                verification=None) -> pd.DataFrame:
        """Sources (the bibliography), filtered by year range, text, key, DOI or verification."""
        where = Where()
        if year:
            from .query import _range

            where.within("year", _range("year", year))
        if fts_query(self.db, text):
            where.add("rowid IN (SELECT rowid FROM sources_fts WHERE sources_fts MATCH ?)",
                      fts_query(self.db, text))
        for value, column in ((key, "key"), (verification, "verification")):
            if as_list(value):
                where.any_of(column, as_list(value))
        if doi:
            where.add("lower(doi) = lower(?)", doi)
        return self._frame(f"SELECT * FROM sources{where.sql()} ORDER BY key{_limit(limit)}",
                           where.params, "sources")

    def changes(self, table: str | None = None, key=None) -> pd.DataFrame:
        """The audit trail, newest last."""
        where = Where()
        if table:
            where.add("table_name = ?", table)
        if key is not None:
            where.add("record_key = ?", str(key))
        return self._frame(f"SELECT * FROM changes{where.sql()} ORDER BY id", where.params, "changes")

    def vocabulary(self, name: str) -> pd.DataFrame:
        """One vocabulary table (name, label, description, synonyms, extras)."""
        if name not in self.db.table_names() or name in PK or name == "changes":
            from .vocab import VOCABULARIES

            raise KBError(f"unknown vocabulary '{name}'; expected one of {', '.join(VOCABULARIES)}")
        return self._frame(f'SELECT * FROM "{name}" ORDER BY position', [], name)

    def citation(self, key: str, backend: str = "text") -> str:
        """A formatted reference (pybtex "plain" style) for a source."""
        return format_reference(self.get("sources", key)["bibtex"], backend)

    def _frame(self, sql: str, params: list, table: str) -> pd.DataFrame:
        try:
            cursor = self.db.execute(sql, params)
        except sqlite3.Error as exc:
            raise StoreError(schema.storage_problem(self.path, exc)) from None
        columns = [d[0] for d in cursor.description]
        frame = pd.DataFrame(cursor.fetchall(), columns=columns)
        for column in INTEGER_COLUMNS.get(table, set()).intersection(frame.columns):
            # nullable integers: a missing year stays missing instead of turning 2016 into 2016.0
            frame[column] = frame[column].astype("Int64")
        return frame

    # -- files --------------------------------------------------------------------------

    def import_bib(self, path, progress=None) -> int:
        """Add every entry of a .bib file as a source (all or nothing); return how many."""
        records = read_bib_file(path)
        return self.add_records({"sources": records}, where=str(path), progress=progress).get("sources", 0)

    def add_file(self, *paths, table: str | None = None, progress=None) -> dict[str, int]:
        """Add the records of YAML/JSON/CSV files (all files in one transaction)."""
        from .files import read_record_files

        records, origins = read_record_files(paths, table)
        return self.add_records(records, progress=progress, origins=origins)

    def export_records(self) -> dict[str, list[dict]]:
        """Everything stored, as record-file data that ``add_records`` accepts."""
        from .files import export_records

        return export_records(self)

    def export(self, path, format: str) -> Path:
        """Write the knowledge base as csv (a folder), json, yaml or bib; return the path."""
        from .files import export

        return export(self, Path(path), format)


def _filter(filters: dict) -> StudyFilter:
    from .query import FILTER_NAMES

    unknown = sorted(set(filters) - set(FILTER_NAMES))
    if unknown:
        raise KBError(f"unknown filter '{unknown[0]}'; filters are {', '.join(FILTER_NAMES)}")
    return StudyFilter(**filters)


def _check_filter(store, vocab: str, value: str, name: str) -> None:
    try:
        check_term(store, vocab, value)
    except RecordError as exc:
        raise KBError(f"{name}: {exc.problem}; {exc.allowed}") from None


def _with_mechanism_lists(frame: pd.DataFrame) -> pd.DataFrame:
    if "mechanisms" in frame:
        frame["mechanisms"] = [m.split(";") if isinstance(m, str) else [] for m in frame["mechanisms"]]
    return frame


def _limit(limit: int | None) -> str:
    """`` LIMIT n`` for a positive whole ``limit``; None means every row."""
    if limit is None:
        return ""
    if isinstance(limit, bool) or not isinstance(limit, numbers.Integral) or limit < 1:
        raise KBError(f"limit: {str(limit)[:40]!r} is not a positive number of rows; "
                      "give 1 or more, or no limit for every row")
    return f" LIMIT {int(limit)}"


SEARCH_LIMIT = 500  # characters of a search text: a search box, not a document
_DOI_PREFIX = ("https://doi.org/", "http://doi.org/", "https://dx.doi.org/", "http://dx.doi.org/", "doi:")


def _search_words(text: str | None) -> list[str]:
    """The lower-case words of a search text; a pasted DOI link searches for its DOI."""
    if not text:
        return []
    if not isinstance(text, str):
        raise KBError(f"search text: {str(text)[:40]!r} is not text")
    if len(text) > SEARCH_LIMIT:
        raise KBError(f"search text: {len(text):,} characters ({text[:20]!r}…); "
                      f"search with at most {SEARCH_LIMIT}")
    words = []
    for word in text.lower().split():
        for prefix in _DOI_PREFIX:
            word = word.removeprefix(prefix)
        if word:
            words.append(word)
    return words


def _all_words(words: list[str], fields: tuple[str, ...]) -> tuple[str, list[str]]:
    """SQL that holds when every word is in one of ``fields`` (any case), and its parameters."""
    one = "(" + " OR ".join(f"instr(lower(coalesce({f}, '')), ?) > 0" for f in fields) + ")"
    return " AND ".join([one] * len(words)), [w for w in words for _ in fields]


def _json(record: dict | None) -> str | None:
    return None if record is None else json.dumps(record, ensure_ascii=False, default=str)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"

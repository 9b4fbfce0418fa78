"""Importers that turn public raw data into knowledge-base records, and ship them as seed files.

Each importer reads a folder of raw files and returns an :class:`Imported`: the records
(``sources``, ``studies``, ``effects``) and a summary whose counts add up. The records can
go two ways, both deterministic:

* into a database with :func:`add_new` — records whose key already exists are left alone,
  so a second run adds nothing and says so; the rest land in one transaction;
* into a reviewable YAML seed file with :func:`seed_text` / :func:`write_seed` — fixed key
  order, fixed float formatting, so regenerating from the same raw files is byte-identical.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml

from ..batch import PK

#: Record tables an importer fills, in the order they must be added.
IMPORT_TABLES = ("sources", "studies", "effects")


@dataclass
class Imported:
    """What an importer produced: records per table and summary lines (label, count)."""

    records: dict[str, list[dict]]
    summary: list[tuple[str, int]] = field(default_factory=list)

    def count(self, table: str) -> int:
        return len(self.records.get(table, []))


def _clean(record: dict) -> dict:
    """Drop empty values: seed files never hold nulls."""
    return {k: v for k, v in record.items() if v is not None and v != "" and v != []}


def seed_text(records: dict[str, list[dict]], header: str) -> str:
    """The seed file text: a comment header, then ``sources``/``studies``/``effects`` lists.

    Records keep their own key order (the importer builds them in a fixed order); YAML
    settings are pinned so that the same records always give the same bytes.
    """
    data = {t: [_clean(r) for r in records.get(t, [])] for t in IMPORT_TABLES if records.get(t)}
    body = yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100,
                          default_flow_style=False)
    comments = "".join(f"# {line}".rstrip() + "\n" for line in header.strip().splitlines())
    return comments + body


def write_seed(records: dict[str, list[dict]], path: str | Path, header: str) -> Path:
    """Write the seed file (UTF-8, ``\\n`` line endings); return its path."""
    path = Path(path)
    path.write_text(seed_text(records, header), encoding="utf-8", newline="\n")
    return path


def new_records(kb, records: dict[str, list[dict]]) -> tuple[dict[str, list[dict]], int]:
    """The records whose key is not stored yet, and how many were already there.

    Idempotence rule: a record is identified by its key (source key, study id, effect id);
    an existing key means the record was imported before and is left as it is.
    """
    fresh: dict[str, list[dict]] = {}
    present = 0
    for table in IMPORT_TABLES:
        rows = [_clean(r) for r in records.get(table, [])]
        stored = kb.existing_keys(table, [r[PK[table]] for r in rows])
        fresh[table] = [r for r in rows if r[PK[table]] not in stored]
        present += len(rows) - len(fresh[table])
    return fresh, present


def add_new(kb, records: dict[str, list[dict]], progress=None) -> tuple[dict[str, int], int]:
    """Add the records not stored yet in one transaction; return (added per table, present)."""
    fresh, present = new_records(kb, records)
    if not any(fresh.values()):
        return {}, present
    return kb.add_records(fresh, progress=progress), present

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

import csv
import io
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from ..batch import PK
from ..errors import FileFormatError
from ..files import row_width

#: Record tables an importer fills, in the order they must be added.
IMPORT_TABLES = ("sources", "studies", "effects")


@dataclass
class Imported:
    """What an importer produced: records per table and summary lines (label, count)."""

    records: dict[str, list[dict]]
    summary: list[tuple[str, int]] = field(default_factory=list)

    def count(self, table: str) -> int:
        return len(self.records.get(table, []))


# -- reading raw files: every problem is one FileFormatError naming file, line and column ------

_UNDECODABLE = re.compile("[\udc80-\udcff]")  # bytes that were not UTF-8 (surrogateescape)


def read_text(path: Path, encoding: str = "utf-8", hint: str = "") -> tuple[str, Callable | None]:
    """The text of a raw file and, if some of its bytes are wrong for ``encoding``, a finder.

    The finder takes a piece of text (a field) and returns what is wrong in it, or None, so
    the caller can name the line and column. A missing file is refused here (``hint`` says
    what folder was expected).
    """
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise FileFormatError(f"{path}: no such file{hint}") from None
    if encoding == "utf-8":
        text = data.decode("utf-8", "surrogateescape")
        return text, (_not_utf8 if _UNDECODABLE.search(text) else None)
    # A single-byte encoding (Mac Roman) decodes any byte: a wrong file shows up as one
    # that is valid UTF-8 with non-ASCII text instead (e.g. re-saved by an editor).
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode(encoding), None
    if text.isascii():
        return text, None
    return text, lambda value: (None if value.isascii()
                                else f"{value!r} is UTF-8 text, but the file must be {encoding}")


def _not_utf8(value: str) -> str | None:
    found = _UNDECODABLE.search(value)
    if not found:
        return None
    return f"byte 0x{ord(found.group()) - 0xDC00:02x} is not UTF-8 (the file must be UTF-8)"


def read_csv(path: Path, required=(), encoding: str = "utf-8",
             hint: str = "") -> Iterator[tuple[int, dict]]:
    """(line the row starts on, row) of a CSV file with a header line, checked as it goes.

    Refused, naming file, line and column: a missing required column, a row whose number
    of values differs from the header, bytes that are wrong for the encoding, and what
    the csv module cannot parse.
    """
    text, wrong = read_text(path, encoding, hint)
    reader = csv.DictReader(io.StringIO(text, newline=""))
    try:
        header = reader.fieldnames or []
        _check_fields(path, 1, dict(zip(header, header, strict=True)), wrong)
        missing = [c for c in required if c not in header]
        if missing:
            raise FileFormatError(f"{path.name} line 1: column {missing[0]} is missing "
                                  f"(needed: {', '.join(required)})")
        end = 1
        for row in reader:
            start, end = end + 1, reader.line_num
            if None in row or None in row.values():
                raise FileFormatError(f"{path.name} line {start}: {row_width(row)} values, "
                                      f"but the header has {len(header)} columns")
            _check_fields(path, start, row, wrong)
            yield start, row
    except csv.Error as exc:
        raise FileFormatError(f"{path.name} line {reader.line_num}: {exc}") from None


def _check_fields(path: Path, line: int, row: dict, wrong) -> None:
    if wrong is None:
        return
    for column, value in row.items():
        problem = wrong(value)
        if problem:
            raise FileFormatError(f"{path.name} line {line}, column {column}: {problem}")


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


def seed_doi_owner() -> Callable[[str], str | None]:
    """DOI -> key of the shipped ``references.bib``: a seed file must load on top of it,
    so an importer writing one reuses those sources instead of adding them again."""
    from importlib.resources import as_file, files

    from ..bib import read_bib_file

    with as_file(files("kb") / "seed" / "references.bib") as path:
        owners = {r["doi"].lower(): r["key"] for r in read_bib_file(path) if r.get("doi")}
    return lambda doi: owners.get(doi.lower())

"""Record files in and out: YAML/JSON mappings of tables, one-table CSVs, BibTeX export.

A YAML or JSON record file is a mapping with any of the keys ``sources``, ``studies``,
``effects``, ``claims``, ``claim_links``, ``syntheses``, ``synthesis_links``, each a list of
records whose fields are the column names (a study's ``mechanisms`` and a claim's ``aliases``
as lists, a synthesis's ``filters`` as a mapping). A CSV file holds one table's records; the
table is named by ``--table`` or by the file name (``studies.csv``), ``mechanisms`` and
``aliases`` are separated by ``;`` and ``filters`` is JSON text (``{"origin": ["srdb"]}``).

Reading is bounded: files, nesting, text and numbers have the limits named in
:mod:`kb.records` (``MAX_FILE_BYTES``, ``MAX_YAML_BYTES``, ``MAX_NESTING``, ...), YAML is read
without anchors, aliases or tags, and a repeated key is refused, never silently dropped.
An export is refused (naming the record) rather than written when it could not be added
back: a non-finite number, or a file larger than a record file may be.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import math
import re
from collections.abc import Hashable
from pathlib import Path

import yaml

from .bib import bibliography, read_bib_file
from .errors import FileFormatError
from .records import (
    MAX_FILE_BYTES,
    MAX_NESTING,
    MAX_NUMBER_CHARS,
    MAX_TEXT_CHARS,
    MAX_YAML_BYTES,
    TABLES,
    shown,
)
from .schema import COLUMNS

RECORD_SUFFIXES = {".yaml", ".yml", ".json", ".csv", ".bib"}
_LIST_SEPARATOR = ";"
#: table -> its list field, one ``;``-separated cell in a CSV file
LIST_FIELDS = {"studies": "mechanisms", "claims": "aliases"}


def read_record_files(paths, table: str | None = None):
    """Read files into one batch: (table -> records, origins for messages)."""
    records: dict[str, list[dict]] = {t: [] for t in TABLES}
    origins: dict[str, list[tuple[str, str]]] = {t: [] for t in TABLES}
    for path in _expand(paths):
        for name, rows, places in _read_one(Path(path), table):
            records[name].extend(rows)
            origins[name].extend(places)
    return records, origins


def _expand(paths) -> list[Path]:
    files: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            files.extend(sorted(p for p in path.iterdir() if p.suffix.lower() in RECORD_SUFFIXES))
        elif not path.exists():
            raise FileFormatError(f"{path}: no such file")
        else:
            files.append(path)
    return files


def _read_one(path: Path, table: str | None):
    suffix = path.suffix.lower()
    if suffix == ".csv":
        name = table or path.stem
        rows, lines = _read_csv(path, name)
        return [(name, rows, [(str(path), f"line {n}") for n in lines])]
    if suffix == ".bib":
        _check_size(path, path.stat().st_size)
        rows = read_bib_file(path)
        return [("sources", rows, [(str(path), f"[{i}]") for i in range(len(rows))])]
    if suffix in {".yaml", ".yml", ".json"}:
        data = read_mapping(path)
        return [(name, rows, [(str(path), f"[{i}]") for i in range(len(rows))])
                for name, rows in data.items()]
    raise FileFormatError(f"{path}: unknown file type {shown(suffix)}; use .yaml, .yml, .json, .csv or .bib")


def _size_limit(path: Path) -> tuple[int, str]:
    if path.suffix.lower() in {".yaml", ".yml", ".bib"}:
        return MAX_YAML_BYTES, "MAX_YAML_BYTES"
    return MAX_FILE_BYTES, "MAX_FILE_BYTES"


def _check_size(path: Path, size: int) -> None:
    limit, name = _size_limit(path)
    if size > limit:
        raise FileFormatError(f"{path}: larger than the {limit // 2**20} MiB a {path.suffix} record "
                              f"file may hold ({name}); split it into several files and add them "
                              "together (one transaction)")


def read_mapping(path: Path) -> dict[str, list]:
    """A YAML/JSON record file, checked for shape: table names mapping to lists of mappings."""
    text = _text(path)
    data = _parse_json(path, text) if path.suffix.lower() == ".json" else _parse_yaml(path, text)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise FileFormatError(f"{path}: the file must be a mapping of table names to lists "
                              f"of records ({', '.join(TABLES)}), "
                              f"not a {type(data).__name__}")
    for name, rows in data.items():
        if name not in TABLES:
            raise FileFormatError(f"{path}: unknown table {shown(name)}; expected any of {', '.join(TABLES)}")
        if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
            raise FileFormatError(f"{path}: '{name}' must be a list of records (field: value mappings)")
    return data


def _text(path: Path) -> str:
    """The file's text: at most the size limit, UTF-8 (a BOM is fine), without NUL bytes."""
    chunks, size = [], 0
    with open(path, "rb") as handle:
        while chunk := handle.read(2**20):  # never much more than the limit in memory
            size += len(chunk)
            _check_size(path, size)
            chunks.append(chunk)
    data = b"".join(chunks)
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise FileFormatError(f"{path}: UTF-16 text; save the file as UTF-8")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise FileFormatError(f"{path}: not UTF-8 text (byte {exc.start}); save the file as UTF-8") from None
    nul = text.find("\x00")
    if nul >= 0:
        raise FileFormatError(f"{path} line {text.count(chr(10), 0, nul) + 1}: a NUL byte; a record "
                              "file is UTF-8 text (a UTF-16 file? save it as UTF-8)")
    return text


# -- YAML ----------------------------------------------------------------------------------
# Record files are plain data, read with a loader that keeps them plain: no anchors or
# aliases (a few hundred bytes of nested aliases expand to gigabytes), no tags, at most
# MAX_NESTING levels, no repeated keys, and YAML 1.2 scalars (yes/no/on/off stay words,
# 010 is ten, 1:30 is text) instead of YAML 1.1's silent conversions.

_YAML_BASE = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when installed: 10x faster
_REPLACED_TAGS = {f"tag:yaml.org,2002:{t}" for t in ("bool", "int", "float", "merge", "timestamp")}


class _RecordLoader(_YAML_BASE):
    yaml_implicit_resolvers = {
        first: [(tag, rx) for tag, rx in resolvers if tag not in _REPLACED_TAGS]
        for first, resolvers in _YAML_BASE.yaml_implicit_resolvers.items()}

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            seen = set()
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=deep)
                if isinstance(key, Hashable) and key in seen:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"repeated key {shown(key)} in one mapping; each field "
                        "appears once", key_node.start_mark)
                if isinstance(key, Hashable):
                    seen.add(key)
        return super().construct_mapping(node, deep=deep)


_RecordLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))
_RecordLoader.add_implicit_resolver(
    "tag:yaml.org,2002:int", re.compile(r"^[-+]?[0-9]{1,30}$"), list("-+0123456789"))
_RecordLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^(?:[-+]?(?:[0-9][0-9_]*\.[0-9_]*|\.[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)?"
               r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"), list("-+0123456789."))
_RecordLoader.add_constructor("tag:yaml.org,2002:int", lambda loader, node: int(loader.construct_scalar(node)))


def _parse_yaml(path: Path, text: str):
    try:
        _check_yaml_events(path, text)
        return yaml.load(text, Loader=_RecordLoader)  # a safe loader, made stricter
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path} line {mark.line + 1}" if mark else str(path)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        if "maximum nesting depth" in problem:  # libyaml's own bound, met before ours in [[[...
            raise _too_deep(where) from None
        kind = "YAML error" if isinstance(exc, yaml.constructor.ConstructorError) else "YAML syntax error"
        raise FileFormatError(f"{where}: {kind}: {problem[:200]}") from None
    except (ValueError, OverflowError) as exc:
        raise FileFormatError(f"{path}: YAML value not understood: {shown(str(exc))}") from None


def _check_yaml_events(path: Path, text: str) -> None:
    """Refuse aliases, anchors, tags and deep nesting before anything is built (one fast pass)."""
    loader = _RecordLoader(text)
    depth = 0
    try:
        while loader.check_event():
            event = loader.get_event()
            where = f"{path} line {event.start_mark.line + 1}"
            if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
                raise FileFormatError(f"{where}: YAML anchors and aliases (&name, *name) are not "
                                      "allowed in record files; write each value out")
            if getattr(event, "tag", None) and not isinstance(event, yaml.DocumentStartEvent):
                raise FileFormatError(f"{where}: YAML tags ({shown(event.tag)}) are not allowed in "
                                      "record files; write plain values")
            if isinstance(event, yaml.CollectionStartEvent):
                depth += 1
                if depth > MAX_NESTING:
                    raise FileFormatError(f"{where}: nested deeper than {MAX_NESTING} levels "
                                          "(MAX_NESTING); a record file needs 4")
            elif isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
    finally:
        loader.dispose()


# -- JSON ----------------------------------------------------------------------------------

def _parse_json(path: Path, text: str):
    try:
        data = json.loads(text, object_pairs_hook=_unique_keys, parse_constant=_no_constant,
                          parse_float=_finite_float, parse_int=_short_int)
    except json.JSONDecodeError as exc:
        raise FileFormatError(f"{path} line {exc.lineno}: JSON syntax error: {exc.msg}") from None
    except RecursionError:
        raise _too_deep(path) from None
    except _JSONValueError as exc:
        raise FileFormatError(f"{path}: {exc}") from None
    _check_nesting(path, data)
    return data


class _JSONValueError(ValueError):
    """A JSON value a record file may not hold (raised inside the decoder's hooks)."""


def _unique_keys(pairs: list) -> dict:
    data = dict(pairs)
    if len(data) < len(pairs):
        seen = set()
        key = next(k for k, _ in pairs if k in seen or seen.add(k))
        raise _JSONValueError(f"repeated key {shown(key)} in one JSON object; each field appears once")
    return data


def _no_constant(name: str):
    raise _JSONValueError(f"{name} is not a number; numbers must be finite (leave the field out "
                          "when the value is missing)")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _JSONValueError(f"{shown(text)} is too large for a number; numbers must be finite")
    return value


def _short_int(text: str) -> int:
    if len(text) > MAX_NUMBER_CHARS:
        raise _JSONValueError(f"{shown(text)} has more than {MAX_NUMBER_CHARS} digits "
                              "(MAX_NUMBER_CHARS)")
    return int(text)


def _check_nesting(path: Path, data) -> None:
    """Refuse data nested deeper than :data:`MAX_NESTING` (walks the containers only)."""
    level = [data] if isinstance(data, dict | list) else []
    for _ in range(MAX_NESTING):
        level = [child for container in level
                 for child in (container.values() if isinstance(container, dict) else container)
                 if isinstance(child, dict | list)]
    if level:
        raise _too_deep(path)


def _too_deep(where) -> FileFormatError:
    return FileFormatError(f"{where}: nested deeper than {MAX_NESTING} levels (MAX_NESTING); "
                           "a record file needs 4")


# -- CSV -----------------------------------------------------------------------------------

def read_csv(path: Path, table: str) -> list[dict]:
    """One table's records from a CSV file with a header row of column names."""
    return _read_csv(path, table)[0]


def _read_csv(path: Path, table: str) -> tuple[list[dict], list[int]]:
    """The records, and the line each starts on (a quoted field may span lines)."""
    if table not in TABLES:
        raise FileFormatError(f"{path}: cannot tell which table the CSV holds ({shown(table)}); "
                              f"name it after the table (e.g. studies.csv) or pass --table "
                              f"{'|'.join(TABLES)}")
    reader = csv.DictReader(io.StringIO(_text(path), newline=""))
    rows, lines, start = [], [], 1
    try:
        _check_header(path, table, reader.fieldnames)
        start = reader.line_num + 1
        for row in reader:
            if None in row or any(v is None for v in row.values()):
                raise FileFormatError(f"{path} line {start}: {row_width(row)} values for "
                                      f"{len(reader.fieldnames)} columns; check the commas and quotes")
            rows.append(_csv_record(row))
            lines.append(start)
            start = reader.line_num + 1
    except csv.Error as exc:
        raise FileFormatError(f"{path} line {start}: {_csv_problem(exc)}") from None
    return rows, lines


def _csv_problem(exc: csv.Error) -> str:
    if "field larger than field limit" in str(exc):
        return (f"a field is longer than {csv.field_size_limit():,} characters, the CSV reader's "
                f"limit; a text field holds at most {MAX_TEXT_CHARS:,} (MAX_TEXT_CHARS)")
    return f"CSV error: {shown(str(exc))}"


def _check_header(path: Path, table: str, header) -> None:
    if not header:
        raise FileFormatError(f"{path}: empty file; the first line must name the columns")
    allowed = set(COLUMNS[table]) | ({LIST_FIELDS[table]} if table in LIST_FIELDS else set())
    unknown = [h for h in header if h not in allowed]
    if unknown:
        raise FileFormatError(f"{path} line 1: unknown column {shown(unknown[0])} for table "
                              f"{table}; allowed: {', '.join(sorted(allowed))}")
    repeated = [h for i, h in enumerate(header) if h in header[:i]]
    if repeated:
        raise FileFormatError(f"{path} line 1: column '{repeated[0]}' appears twice; each column once")


def row_width(row: dict) -> int:
    """How many values a ``csv.DictReader`` row really had (short rows hold None, long ones a None key)."""
    return len([v for k, v in row.items() if k is not None and v is not None]) + len(row.get(None) or [])


def _csv_record(row: dict) -> dict:
    record = {k: v for k, v in row.items() if v is not None and v.strip() != ""}
    for name in LIST_FIELDS.values():
        if name in record:
            record[name] = [m.strip() for m in record[name].split(_LIST_SEPARATOR) if m.strip()]
    return record


# -- export ----------------------------------------------------------------------------


def export_records(store) -> dict[str, list[dict]]:
    """Every stored record, table by table, as record-file data."""
    data = {}
    for table in TABLES:
        rows = [dict(zip(COLUMNS[table], r, strict=True)) for r in
                store.db.execute(f'SELECT {", ".join(COLUMNS[table])} FROM "{table}" ORDER BY rowid')]
        if table == "studies":
            mechanisms = _mechanisms_by_study(store)
            for row in rows:
                row["mechanisms"] = mechanisms.get(row["id"], [])
        if table == "claims":
            aliases = _aliases_by_claim(store)
            for row in rows:
                row["aliases"] = aliases.get(row["id"], [])
        if table == "syntheses":  # stored as canonical JSON text; a mapping in the file
            for row in rows:
                row["filters"] = json.loads(row["filters"]) if row["filters"] else None
        data[table] = [{k: v for k, v in row.items() if v is not None and v != []} for row in rows]
    return data


def _mechanisms_by_study(store) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for study_id, mechanism in store.db.execute(
            "SELECT study_id, mechanism FROM study_mechanisms ORDER BY study_id, mechanism"):
        found.setdefault(study_id, []).append(mechanism)
    return found


def _aliases_by_claim(store) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for alias, claim_id in store.claim_aliases().itertuples(index=False):
        found.setdefault(claim_id, []).append(alias)
    return found


def export(store, path: Path, format: str) -> Path:
    """Write csv (a folder of one file per table), json, yaml or bib.

    What is written can be added back: every number is finite (checked first, the message
    naming the record) and every file is within the size a record file may hold.
    """
    if format not in {"csv", "json", "yaml", "bib"}:
        raise FileFormatError(f"unknown export format {shown(format)}; use csv, json, yaml or bib")
    data = export_records(store)
    _check_finite(data)
    if format == "csv":
        _export_csv(data, path)
        return path
    if format == "json":
        text = json.dumps(data, ensure_ascii=False, indent=1, allow_nan=False) + "\n"
    elif format == "yaml":
        text = yaml.safe_dump(data, allow_unicode=True, sort_keys=False, width=100)
    else:
        text = bibliography([s["bibtex"] for s in data["sources"]])
    _check_export_size(path, text, format)
    path.write_text(text, encoding="utf-8")
    return path


def _check_finite(data: dict) -> None:
    for table, rows in data.items():
        for row in rows:
            bad = next((k for k, v in row.items() if isinstance(v, float) and not math.isfinite(v)), None)
            if bad:
                key = row.get("key", row.get("id"))
                raise FileFormatError(f"{table} {shown(key)}: field '{bad}' holds {row[bad]}, which a "
                                      "record file cannot hold (numbers must be finite); correct or "
                                      "clear it with 'soc-kb update' before exporting")


def _check_export_size(path: Path, text: str, format: str) -> None:
    limit, name = _size_limit(Path(f"export.{format}"))
    size = len(text.encode("utf-8"))
    if size > limit:
        instead = ("export json or csv" if format in ("yaml", "bib") else
                   "export csv (one file per table)" if format == "json" else
                   "export the records in parts (soc-kb query ... --format csv)")
        raise FileFormatError(f"{path}: the export is {size / 2**20:.0f} MiB, more than the "
                              f"{limit // 2**20} MiB a {format} record file may hold ({name}), so "
                              f"it could not be added back; {instead}")


def _export_csv(data: dict, folder: Path) -> None:
    if folder.exists() and not folder.is_dir():
        raise FileFormatError(f"{folder}: CSV export writes one file per table into a folder; "
                              "give a folder path")
    texts = {}
    for table, rows in data.items():
        columns = list(COLUMNS[table]) + ([LIST_FIELDS[table]] if table in LIST_FIELDS else [])
        out = io.StringIO(newline="")
        writer = csv.DictWriter(out, fieldnames=columns)
        writer.writeheader()
        for row in rows:
            writer.writerow(_csv_row(row))
        texts[table] = out.getvalue()
        _check_export_size(folder / f"{table}.csv", texts[table], "csv")
    folder.mkdir(parents=True, exist_ok=True)
    for table, text in texts.items():
        (folder / f"{table}.csv").write_text(text, encoding="utf-8", newline="")


def _csv_row(row: dict) -> dict:
    for name in LIST_FIELDS.values():
        if name in row:
            return row | {name: _LIST_SEPARATOR.join(row[name])}
    if isinstance(row.get("filters"), dict):  # a synthesis's filters: one JSON cell
        return row | {"filters": json.dumps(row["filters"], sort_keys=True, ensure_ascii=False)}
    return row

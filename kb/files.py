"""Record files in and out: YAML/JSON mappings of tables, one-table CSVs, BibTeX export.

A YAML or JSON record file is a mapping with any of the keys ``sources``, ``studies``,
``effects``, ``claims``, ``claim_links``, each a list of records whose fields are the
column names (``mechanisms`` as a list). A CSV file holds one table's records; the table
is named by ``--table`` or by the file name (``studies.csv``), and ``mechanisms`` are
separated by ``;``.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import yaml

from .bib import bibliography, read_bib_file
from .errors import FileFormatError
from .records import TABLES
from .schema import COLUMNS

RECORD_SUFFIXES = {".yaml", ".yml", ".json", ".csv", ".bib"}
_LIST_SEPARATOR = ";"


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
        rows = read_csv(path, name)
        return [(name, rows, [(str(path), f"line {i + 2}") for i in range(len(rows))])]
    if suffix == ".bib":
        rows = read_bib_file(path)
        return [("sources", rows, [(str(path), f"[{i}]") for i in range(len(rows))])]
    if suffix in {".yaml", ".yml", ".json"}:
        data = read_mapping(path)
        return [(name, rows, [(str(path), f"[{i}]") for i in range(len(rows))])
                for name, rows in data.items()]
    raise FileFormatError(f"{path}: unknown file type '{suffix}'; use .yaml, .yml, .json, .csv or .bib")


def read_mapping(path: Path) -> dict[str, list]:
    """A YAML/JSON record file, checked for shape: table names mapping to lists of mappings."""
    text = _text(path)
    data = _parse_json(path, text) if path.suffix.lower() == ".json" else _parse_yaml(path, text)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise FileFormatError(f"{path}: the file must be a mapping of table names to lists "
                              f"of records (sources, studies, effects, claims, claim_links), "
                              f"not a {type(data).__name__}")
    for name, rows in data.items():
        if name not in TABLES:
            raise FileFormatError(f"{path}: unknown table '{name}'; expected any of {', '.join(TABLES)}")
        if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
            raise FileFormatError(f"{path}: '{name}' must be a list of records (field: value mappings)")
    return data


def _text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise FileFormatError(f"{path}: not UTF-8 text (byte {exc.start}); save the file as UTF-8") from None


def _parse_yaml(path: Path, text: str):
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path} line {mark.line + 1}" if mark else str(path)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise FileFormatError(f"{where}: YAML syntax error: {problem}") from None


def _parse_json(path: Path, text: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise FileFormatError(f"{path} line {exc.lineno}: JSON syntax error: {exc.msg}") from None


def read_csv(path: Path, table: str) -> list[dict]:
    """One table's records from a CSV file with a header row of column names."""
    if table not in TABLES:
        raise FileFormatError(f"{path}: cannot tell which table the CSV holds ('{table}'); "
                              f"name it after the table (e.g. studies.csv) or pass --table "
                              f"{'|'.join(TABLES)}")
    reader = csv.DictReader(io.StringIO(_text(path), newline=""))
    _check_header(path, table, reader.fieldnames)
    rows = []
    for line, row in enumerate(reader, start=2):
        if None in row or any(v is None for v in row.values()):
            raise FileFormatError(f"{path} line {line}: {row_width(row)} values for "
                                  f"{len(reader.fieldnames)} columns; check the commas and quotes")
        rows.append(_csv_record(row))
    return rows


def _check_header(path: Path, table: str, header) -> None:
    if not header:
        raise FileFormatError(f"{path}: empty file; the first line must name the columns")
    allowed = set(COLUMNS[table]) | ({"mechanisms"} if table == "studies" else set())
    unknown = [h for h in header if h not in allowed]
    if unknown:
        raise FileFormatError(f"{path} line 1: unknown column '{unknown[0]}' for table "
                              f"{table}; allowed: {', '.join(sorted(allowed))}")


def row_width(row: dict) -> int:
    """How many values a ``csv.DictReader`` row really had (short rows hold None, long ones a None key)."""
    return len([v for k, v in row.items() if k is not None and v is not None]) + len(row.get(None) or [])


def _csv_record(row: dict) -> dict:
    record = {k: v for k, v in row.items() if v is not None and v.strip() != ""}
    if "mechanisms" in record:
        record["mechanisms"] = [m.strip() for m in record["mechanisms"].split(_LIST_SEPARATOR) if m.strip()]
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
        data[table] = [{k: v for k, v in row.items() if v is not None and v != []} for row in rows]
    return data


def _mechanisms_by_study(store) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for study_id, mechanism in store.db.execute(
            "SELECT study_id, mechanism FROM study_mechanisms ORDER BY study_id, mechanism"):
        found.setdefault(study_id, []).append(mechanism)
    return found


def export(store, path: Path, format: str) -> Path:
    """Write csv (a folder of one file per table), json, yaml or bib."""
    data = export_records(store)
    if format == "json":
        path.write_text(json.dumps(data, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    elif format == "yaml":
        path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False, width=100),
                        encoding="utf-8")
    elif format == "bib":
        path.write_text(bibliography([s["bibtex"] for s in data["sources"]]), encoding="utf-8")
    elif format == "csv":
        _export_csv(data, path)
    else:
        raise FileFormatError(f"unknown export format '{format}'; use csv, json, yaml or bib")
    return path


def _export_csv(data: dict, folder: Path) -> None:
    if folder.exists() and not folder.is_dir():
        raise FileFormatError(f"{folder}: CSV export writes one file per table into a folder; "
                              "give a folder path")
    folder.mkdir(parents=True, exist_ok=True)
    for table, rows in data.items():
        columns = list(COLUMNS[table]) + (["mechanisms"] if table == "studies" else [])
        with open(folder / f"{table}.csv", "w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=columns)
            writer.writeheader()
            for row in rows:
                writer.writerow(_csv_row(row))


def _csv_row(row: dict) -> dict:
    if "mechanisms" in row:
        return row | {"mechanisms": _LIST_SEPARATOR.join(row["mechanisms"])}
    return row

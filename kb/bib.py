"""BibTeX in and out through pybtex: parse with file/line errors, keep each raw entry, format references.

pybtex is strict but misparses some broken input silently (an entry without a key is
read with the key ``title={x``; plain prose yields no entries). Each entry is therefore
also located in the raw text, and the two readings must agree.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

from pybtex.database import BibliographyData, Entry, Person, parse_string
from pybtex.exceptions import PybtexError
from pybtex.plugin import find_plugin
from pybtex.richtext import Text

from .errors import BibError
from .records import KEY_PATTERN, may_lack

_ENTRY_START = re.compile(r"@\s*(\w+)\s*[{(]", re.MULTILINE)
_NON_ENTRIES = {"comment", "preamble", "string"}
_FIELDS = ("title", "journal", "volume", "number", "pages", "publisher", "url", "doi", "note")


def read_bib_file(path: str | Path) -> list[dict]:
    """Source records from a .bib file; raises :class:`BibError` naming file and line."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise BibError(f"{path}: not UTF-8 text (byte {exc.start}); save the file as UTF-8") from None
    return parse_bib(text, str(path))


def parse_bib(text: str, where: str = "<bibtex>") -> list[dict]:
    """Source records (dicts with the ``sources`` columns) from BibTeX text."""
    raw_entries = _raw_entries(text, where)
    if not raw_entries:
        raise BibError(f"{where}: no BibTeX entries found (an entry starts with @article{{key, ...)")
    parsed = _parse(text, where, {key.lower(): line for key, _, line in raw_entries})
    return [_entry_record(key, parsed.entries[key], raw, line, where)
            for key, raw, line in raw_entries]


def _parse(text: str, where: str, lines: dict[str, int]) -> BibliographyData:
    try:
        return parse_string(text, "bibtex")
    except PybtexError as exc:
        # some pybtex errors carry no line; they name the entry key instead
        named = re.search(r"key (\S+)", str(exc))
        line = getattr(exc, "lineno", None) or (lines.get(named.group(1).lower()) if named else None)
        at = f"{where} line {line}" if line else where
        raise BibError(f"{at}: {_bare(exc)}") from None


def _bare(exc: Exception) -> str:
    return re.sub(r"^syntax error in line \d+: ", "syntax error: ", str(exc))


def _raw_entries(text: str, where: str) -> list[tuple[str, str, int]]:
    """(key, raw text, line) for each entry, found by brace matching in the raw text."""
    found, seen = [], {}
    for match in _ENTRY_START.finditer(text):
        if match.group(1).lower() in _NON_ENTRIES:
            continue
        line = text.count("\n", 0, match.start()) + 1
        raw = _balanced(text, match.start(), match.end() - 1, where, line)
        key = _entry_key(raw, where, line)
        if key.lower() in seen:
            raise BibError(f"{where} line {line}: repeated entry key '{key}' "
                           f"(first at line {seen[key.lower()]}); keys must be unique")
        seen[key.lower()] = line
        found.append((key, raw, line))
    return found


def _balanced(text: str, start: int, open_at: int, where: str, line: int) -> str:
    closer = "}" if text[open_at] == "{" else ")"
    depth = 0
    for i in range(open_at, len(text)):
        depth += {"{": 1, "}": -1}.get(text[i], 0)
        if depth == 0 and text[i] == closer:
            return text[start:i + 1]
    raise BibError(f"{where} line {line}: entry is not closed (unbalanced braces); "
                   "check the braces of every field")


def _entry_key(raw: str, where: str, line: int) -> str:
    key = re.split(r"[{(]", raw, maxsplit=1)[1].split(",", 1)[0].strip()
    if "=" in key or not re.match(KEY_PATTERN, key):
        raise BibError(f"{where} line {line}: entry has no valid key (read {key!r}); "
                       "write @article{Smith2020, title = {...}, ...}")
    return key


def _entry_record(key: str, entry: Entry, raw: str, line: int, where: str) -> dict:
    fields = {name.lower(): value for name, value in entry.fields.items()}
    at = f"{where} line {line}: entry '{key}'"
    verification = fields.get("x-verification")
    unverified = fields.get("x-unverified-fields")
    for name, example in (("title", "title = {...}"), ("year", "year = {2020}")):
        if not fields.get(name, "").strip() and not may_lack(name, verification, unverified):
            raise BibError(f"{at}: has no {name}; add {example} (only entries marked "
                           "x-verification = {none}, or {partial} naming it in "
                           "x-unverified-fields, may lack one)")
    year = fields.get("year", "").strip()
    if year and not re.fullmatch(r"\d{4}", year):
        raise BibError(f"{at}: year {year!r} is not a four-digit year")
    record = {"key": key, "entry_type": entry.type.lower(), "year": int(year) if year else None,
              "bibtex": raw.strip(), "verification": verification,
              "verified_from": fields.get("x-verified-from"), "unverified_fields": unverified}
    record.update(_people(entry))
    record.update({f: _clean(fields[f]) for f in _FIELDS if fields.get(f)})
    record["doi"] = _doi(record.get("doi"))
    return {k: v for k, v in record.items() if v is not None}


def _people(entry: Entry) -> dict:
    people = entry.persons.get("author") or entry.persons.get("editor") or []
    if not people:
        return {}
    names = [_clean(str(p)) for p in people]
    first = " ".join(people[0].last_names) or names[0]
    return {"authors": " and ".join(names), "first_author": _clean(first)}


def _clean(value: str) -> str:
    """LaTeX markup to plain text: ``{CO$_2$} fluxes`` -> ``CO$_2$ fluxes``, ``M{\\"u}ller`` -> ``Müller``."""
    try:
        return Text.from_latex(value).render_as("text").strip()
    except PybtexError:
        return value.strip()


def _doi(doi: str | None) -> str | None:
    if not doi:
        return None
    return re.sub(r"^(https?://(dx\.)?doi\.org/|doi:\s*)", "", doi.strip(), flags=re.I)


def record_bibtex(record: dict) -> str:
    """A BibTeX entry for a source record that came without one (built with pybtex)."""
    fields = {f: str(record[f]) for f in _FIELDS if record.get(f) is not None}
    if record.get("year") is not None:
        fields["year"] = str(record["year"])
    if record.get("verification"):
        fields["x-verification"] = record["verification"]
    persons = {"author": [Person(name) for name in record["authors"].split(" and ")]} \
        if record.get("authors") else {}
    entry = Entry(record.get("entry_type", "article"), fields=fields, persons=persons)
    return BibliographyData({record["key"]: entry}).to_string("bibtex").strip()


def bibliography(bibtex_entries: list[str]) -> str:
    """One .bib text from raw entries, one blank line apart."""
    return "\n\n".join(entry.strip() for entry in bibtex_entries) + "\n"


@cache
def _style():
    return find_plugin("pybtex.style.formatting", "plain")()


def format_reference(bibtex: str, backend: str = "text") -> str:
    """A formatted reference for display ("plain" style); falls back to the raw fields.

    ``backend`` is one of text, markdown, html, latex.
    """
    data = parse_string(bibtex, "bibtex")
    key, entry = next(iter(data.entries.items()))
    if "title" in entry.fields:  # braces keep the style from lower-casing the title
        entry.fields["title"] = "{" + entry.fields["title"] + "}"
    if entry.fields.get("doi"):
        entry.fields["doi"] = _doi(entry.fields["doi"])
    try:
        formatted = _style().format_entry(key, entry)
        return formatted.text.render(find_plugin("pybtex.backends", backend)()).strip()
    except (PybtexError, KeyError):
        authors = " and ".join(str(p) for p in entry.persons.get("author", []))
        return f"{authors} ({entry.fields.get('year', 'n.d.')}). {entry.fields.get('title', '[title not verified]')}."

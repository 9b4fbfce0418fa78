"""BibTeX in and out. A source's stored entry is the one truth: its columns are read from it.

pybtex parses a .bib file (strict, with file/line errors). It misparses some broken input
silently (an entry without a key is read with the key ``title={x``; plain prose yields no
entries), so each entry is also located in the raw text and the two readings must agree.
The raw entry is stored as written (re-written with macros expanded when the file defines
``@string`` macros, so that every stored entry stands alone).

:func:`entry_columns` is the one reading of an entry into ``sources`` columns, used on
import, after an update and to check every entry this module writes:

- title, journal, volume, number, publisher, note and each author name: LaTeX read as plain
  text (:func:`plain_text`: braces dropped, accents and escapes to Unicode, ``--`` to an
  en dash, ``$...$`` kept as written);
- pages and the checked bibliography's ``x-`` fields: as written (``107--115`` stays, the
  BibTeX range separator); url and doi as written with ``\\_`` etc. unescaped, the doi
  without a resolver prefix;
- authors: the names as written (never reordered: "Tu Chun" stays "Tu Chun"), joined by
  " and "; first_author: ``x-first-author`` if the entry has one, else the first name up
  to its first comma ("Last, First"), or all of it when it has no comma, so that no word
  is guessed to be the surname.

Writing (:func:`record_bibtex` for sources that come without an entry,
:func:`rerender_source` after an update) is the inverse of that reading, and every entry
written is read back: a value that would not come back exactly (a line break, a repeated
space) is refused with one line instead of being changed quietly.
"""

from __future__ import annotations

import re
import unicodedata
from functools import cache
from pathlib import Path

from pybtex.bibtex.utils import split_name_list, split_tex_string
from pybtex.database import BibliographyData, Entry, parse_string
from pybtex.exceptions import PybtexError
from pybtex.plugin import find_plugin

from .errors import BibError, RecordError
from .records import KEY_PATTERN, may_lack, shown

_ENTRY_START = re.compile(r"@\s*(\w+)\s*[{(]")
_STRING_DEFINITION = re.compile(r"@\s*string\s*[{(]", re.IGNORECASE)
_NON_ENTRIES = {"comment", "preamble", "string"}
_BRACES = re.compile(r"[{}]")
_BRACES_OR_PAREN = re.compile(r"[{})]")
_YEAR = re.compile(r"\d{4}")
_AND = re.compile(" [Aa][Nn][Dd] ")  # pybtex's name separator
_ESCAPED = re.compile(r"\\([_%&#~$])")
_SPACES = re.compile(r" {2,}")

#: The ``sources`` columns an entry gives, in the order the written entry holds them.
BIB_COLUMNS = ("entry_type", "authors", "first_author", "title", "journal", "year", "volume",
               "number", "pages", "publisher", "url", "doi", "note", "verified_from",
               "verification", "unverified_fields")
#: column -> BibTeX field, for the columns written as fields (authors: author or editor).
_FIELD = {"authors": "author", "title": "title", "journal": "journal", "year": "year",
          "volume": "volume", "number": "number", "pages": "pages", "publisher": "publisher",
          "url": "url", "doi": "doi", "note": "note", "first_author": "x-first-author",
          "verified_from": "x-verified-from", "verification": "x-verification",
          "unverified_fields": "x-unverified-fields"}
_PROSE = {"title", "journal", "volume", "number", "publisher", "note"}
_AS_WRITTEN = {"pages": "pages", "verification": "x-verification",
               "verified_from": "x-verified-from", "unverified_fields": "x-unverified-fields"}


class _Unreadable(ValueError):
    """An entry field that has no column value: (column, problem)."""

    def __init__(self, column: str, problem: str):
        super().__init__(problem)
        self.column = column


# -- reading a file ----------------------------------------------------------------------


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
    expand = _STRING_DEFINITION.search(text) is not None
    return [_entry_record(key, parsed.entries[key], raw, line, where, expand)
            for key, raw, line in raw_entries]


def _parse(text: str, where: str, lines: dict[str, int]) -> BibliographyData:
    try:
        # names stay one field, as written: the columns keep them unreordered
        return parse_string(text, "bibtex", person_fields=())
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
    line, counted, position = 1, 0, 0
    while match := _ENTRY_START.search(text, position):
        line += text.count("\n", counted, match.start())
        counted = position = match.start()
        if match.group(1).lower() in _NON_ENTRIES:
            position = match.end()
            continue
        end = _entry_end(text, match.end() - 1)
        if end is None:
            raise BibError(f"{where} line {line}: entry is not closed (unbalanced braces); "
                           "check the braces of every field")
        raw = text[match.start():end]
        key = _entry_key(raw, where, line)
        if key.lower() in seen:
            raise BibError(f"{where} line {line}: repeated entry key '{key}' "
                           f"(first at line {seen[key.lower()]}); keys must be unique")
        seen[key.lower()] = line
        found.append((key, raw, line))
        position = end
    return found


def _entry_end(text: str, open_at: int) -> int | None:
    """Where the entry opened at ``open_at`` ends (after its closing brace or parenthesis)."""
    by_brace = text[open_at] == "{"
    depth = 0
    for match in (_BRACES if by_brace else _BRACES_OR_PAREN).finditer(text, open_at + by_brace):
        char = match.group()
        if char == "{":
            depth += 1
        elif depth == 0:  # "}" or ")" closing the entry
            return match.end() if char == ("}" if by_brace else ")") else None
        else:
            depth -= 1
    return None


def _entry_key(raw: str, where: str, line: int) -> str:
    key = re.split(r"[{(]", raw, maxsplit=1)[1].split(",", 1)[0].strip()
    if "=" in key or not re.match(KEY_PATTERN, key):
        raise BibError(f"{where} line {line}: entry has no valid key (read {shown(key)}); "
                       "write @article{Smith2020, title = {...}, ...}")
    return key


def _entry_record(key: str, entry: Entry, raw: str, line: int, where: str, expand: bool) -> dict:
    fields = {name.lower(): value for name, value in entry.fields.items()}
    at = f"{where} line {line}: entry '{key}'"
    verification = fields.get("x-verification")
    unverified = fields.get("x-unverified-fields")
    for name, example in (("title", "title = {...}"), ("year", "year = {2020}")):
        if not fields.get(name, "").strip() and not may_lack(name, verification, unverified):
            raise BibError(f"{at}: has no {name}; add {example} (only entries marked "
                           "x-verification = {none}, or {partial} naming it in "
                           "x-unverified-fields, may lack one)")
    try:
        columns = entry_columns(entry.type, fields)
    except _Unreadable as exc:
        raise BibError(f"{at}: {exc}") from None
    bibtex = _write_entry(entry.original_type, key, entry.fields.items()) if expand else raw.strip()
    return {"key": key, **columns, "bibtex": bibtex}


# -- one entry -> columns ------------------------------------------------------------------


def entry_columns(entry_type: str, fields: dict[str, str]) -> dict:
    """The ``sources`` columns of one entry (``fields``: lower-case names -> values as pybtex
    reads them, names not split into persons); raises ``_Unreadable``."""
    columns: dict = {"entry_type": entry_type.lower()}
    year = fields.get("year", "").strip()
    if year:
        if not _YEAR.fullmatch(year):
            raise _Unreadable("year", f"year {shown(year)} is not a four-digit year")
        columns["year"] = int(year)
    people = fields.get("author") or fields.get("editor")
    if people:
        names = _names(people)
        columns["authors"] = " and ".join(plain_text(name) for name in names)
        columns["first_author"] = _first_author(names)
    if fields.get("x-first-author"):
        columns["first_author"] = fields["x-first-author"]
    for column in _PROSE:
        if fields.get(column):
            columns[column] = plain_text(fields[column])
    for column, field in _AS_WRITTEN.items():
        if fields.get(field):
            columns[column] = fields[field]
    for column in ("url", "doi"):
        if fields.get(column):
            columns[column] = _unescaped(fields[column])
    if "doi" in columns:
        columns["doi"] = _doi(columns["doi"])
    return {k: v for k, v in columns.items() if v not in (None, "")}


def _names(value: str) -> list[str]:
    names = split_name_list(value) if "{" in value else [n.strip() for n in _AND.split(value)]
    for name in names:
        commas = name.count(",") if "{" not in name else len(split_tex_string(name, ",")) - 1
        if commas > 2:
            raise _Unreadable("authors", f"name {shown(name)} has {commas} commas; write each "
                                         "name as 'Last, First' or 'Last, Jr, First', names "
                                         "joined by ' and '")
    return names


def _first_author(names: list[str]) -> str:
    first = names[0]
    surname = first.split(",", 1)[0] if "{" not in first else split_tex_string(first, ",")[0]
    return plain_text(surname)


def _doi(doi: str | None) -> str | None:
    if not doi:
        return None
    return re.sub(r"^(https?://(dx\.)?doi\.org/|doi:\s*)", "", doi.strip(), flags=re.I)


def _unescaped(value: str) -> str:
    """A URL or DOI as written, with LaTeX-escaped ``\\_ \\% \\& \\# \\~ \\$`` unescaped."""
    return _ESCAPED.sub(r"\1", value) if "\\" in value else value


# -- LaTeX <-> plain text -------------------------------------------------------------------

_MARKUP = re.compile(r"[\\{}$~]|--|``|''|[!?]`")
_TOKEN = re.compile(r"""
    (?P<accent>\\["'`^~=.](?:\{\s*(?:\\[ij]|[A-Za-z])\s*\}|\\[ij](?![A-Za-z])|[A-Za-z]))
  | (?P<letter_accent>\\[uvHckrdb](?:\s*\{\s*(?:\\[ij]|[A-Za-z])\s*\}|\s+(?:\\[ij](?![A-Za-z])|[A-Za-z])))
  | (?P<word>\\[A-Za-z]+\s*)
  | (?P<symbol>\\[^A-Za-z])
  | (?P<math>\$(?:[^$\\]|\\.)*\$)
  | (?P<open>\{) | (?P<close>\})
  | (?P<ligature>---|--|``|''|[!?]`|~)
  | (?P<text>[^\\{}$~`'!?-]+|.)
""", re.VERBOSE | re.DOTALL)
_ACCENTS = {'"': "\u0308", "'": "\u0301", "`": "\u0300", "^": "\u0302", "~": "\u0303",
            "=": "\u0304", ".": "\u0307", "u": "\u0306", "v": "\u030c", "H": "\u030b",
            "c": "\u0327", "k": "\u0328", "r": "\u030a", "d": "\u0323", "b": "\u0331"}
_WORDS = {
    "ss": "ß", "o": "ø", "O": "Ø", "aa": "å", "AA": "Å", "ae": "æ", "AE": "Æ", "oe": "œ",
    "OE": "Œ", "l": "ł", "L": "Ł", "i": "ı", "j": "ȷ", "dh": "ð", "DH": "Ð", "th": "þ",
    "TH": "Þ", "ng": "ŋ", "NG": "Ŋ", "dj": "đ", "DJ": "Đ",
    "textbackslash": "\\", "textbraceleft": "{", "textbraceright": "}",
    "textasciitilde": "~", "textasciicircum": "^", "textunderscore": "_", "textbar": "|",
    "textless": "<", "textgreater": ">", "textendash": "–", "textemdash": "—",
    "textquoteleft": "‘", "textquoteright": "’", "textquotedblleft": "“",
    "textquotedblright": "”", "textdegree": "°", "texttimes": "×", "textpm": "±",
    "textmu": "µ", "textperthousand": "‰", "ldots": "…", "dots": "…", "textellipsis": "…",
    "S": "§", "P": "¶", "copyright": "©", "textregistered": "®", "texttrademark": "™",
    "pounds": "£", "euro": "€",
    # formatting commands: their argument (a group) is kept as text
    "emph": "", "textit": "", "textbf": "", "textsc": "", "textrm": "", "textsf": "",
    "texttt": "", "textup": "", "textsl": "", "textmd": "", "textnormal": "", "mbox": "",
    "text": "", "textsubscript": "", "textsuperscript": "", "NoCaseChange": "", "url": "",
    "relax": "",
}
_SYMBOLS = {"&": "&", "%": "%", "$": "$", "#": "#", "_": "_", "{": "{", "}": "}", " ": " ",
            "-": "", "/": "", "@": "", ",": "\u2009"}
_LIGATURES = {"---": "—", "--": "–", "``": "“", "''": "”", "!`": "¡", "?`": "¿", "~": "\xa0"}


def plain_text(value: str) -> str:
    r"""LaTeX markup to plain text: ``{CO$_2$} fluxes`` -> ``CO$_2$ fluxes``, ``M{\"u}ller`` -> ``Müller``.

    Braces are dropped, accents, special letters and escapes become Unicode, ``--``/``---``
    become dashes and ``~`` a no-break space; ``$...$`` and commands it does not know are
    kept as written (the braces of their argument too).
    """
    if not _MARKUP.search(value):
        return value.strip()
    out: list[str] = []
    kept: list[bool] = []  # per open group: are its braces kept (argument of an unknown command)?
    unknown_before = False
    for match in _TOKEN.finditer(value):
        kind, token = match.lastgroup, match.group()
        unknown = False
        if kind in ("accent", "letter_accent"):
            out.append(_accented(token))
        elif kind == "word":
            name = token[1:].rstrip()
            if name in _WORDS:
                out.append(_WORDS[name])  # TeX ends a command word at the spaces after it
            else:
                out.append(token)
                unknown = True
        elif kind == "symbol":
            out.append(_SYMBOLS.get(token[1], token))
        elif kind == "open":
            kept.append(unknown_before)
            out.append("{" if unknown_before else "")
        elif kind == "close":
            out.append("}" if kept and kept.pop() else "")
        elif kind == "ligature":
            out.append(_LIGATURES[token])
        else:
            out.append(token)
        unknown_before = unknown
    return _SPACES.sub(" ", "".join(out)).strip()


def _accented(token: str) -> str:
    mark = _ACCENTS[token[1]]
    base = token[2:].strip(" {}")
    base = base[1] if base.startswith("\\") else base  # \i, \j: the dotless letters
    return unicodedata.normalize("NFC", base + mark)


_ESCAPE_CHARS = {"\\": r"\textbackslash{}", "{": r"\textbraceleft{}", "}": r"\textbraceright{}",
                 "~": r"\textasciitilde{}", "\xa0": "~", "%": r"\%", "&": r"\&", "#": r"\#",
                 "_": r"\_", "$": r"\$"}
_NEEDS_ESCAPE = re.compile(r"[\\{}~\xa0%&#_$]|--|``|''|[!?]`")
_MATH = re.compile(r"\$(?:[^$\\]|\\.)*\$", re.DOTALL)


def latex_text(text: str) -> str:
    """Plain text as BibTeX: the inverse of :func:`plain_text` (``$...$`` stays math)."""
    if not _NEEDS_ESCAPE.search(text):
        return text
    parts, start = [], 0
    for math in _MATH.finditer(text):
        parts += [_escaped(text[start:math.start()]), math.group()]
        start = math.end()
    parts.append(_escaped(text[start:]))
    return "".join(parts)


def _escaped(text: str) -> str:
    text = re.sub(r"[\\{}~\xa0%&#_$]", lambda m: _ESCAPE_CHARS[m.group()], text)
    # an empty group between the characters keeps TeX from joining them into a ligature
    return re.sub(r"-(?=-)|`(?=`)|'(?=')|[!?](?=`)", lambda m: m.group() + "{}", text)


# -- columns -> one entry ------------------------------------------------------------------


def _field_value(column: str, value) -> str:
    if column in _PROSE or column == "authors":
        return latex_text(str(value))
    return str(value)


def _write_entry(entry_type: str, key: str, fields) -> str:
    """``@type{key,`` then one ``name = {value}`` line per (name, value), as references.bib."""
    body = ",\n".join(f"  {name} = {{{value}}}" for name, value in fields)
    return f"@{entry_type}{{{key},\n{body}\n}}" if body else f"@{entry_type}{{{key}\n}}"


def record_bibtex(record: dict, label: str | None = None) -> str:
    """The BibTeX entry of a source record that came without one.

    Read back with :func:`entry_columns`, the entry gives exactly the record's columns;
    a value it cannot give back (a line break, repeated spaces) raises :class:`RecordError`
    naming ``label`` (where the record came from).
    """
    wanted = {c: record[c].strip() if isinstance(record[c], str) else record[c]
              for c in BIB_COLUMNS if record.get(c) not in (None, "")}
    wanted.setdefault("entry_type", "article")
    if wanted.get("authors") and "first_author" not in wanted:
        # as the store completes a record without one (kb.batch)
        wanted["first_author"] = wanted["authors"].split(" and ")[0].split(",")[0].strip()
    fields = [(_FIELD[c], _field_value(c, wanted[c])) for c in BIB_COLUMNS
              if c in wanted and c not in ("entry_type", "first_author")]
    fields = _with_first_author(fields, wanted.get("first_author"))
    text, _ = _check_reads_back(record["key"], fields, wanted["entry_type"], wanted, wanted, label)
    return text


def _with_first_author(fields: list[tuple[str, str]], first_author: str | None) -> list:
    """``fields`` with an ``x-first-author`` field only where the names do not imply it."""
    fields = [(n, v) for n, v in fields if n.lower() != "x-first-author"]
    people = next((v for n, v in fields if n.lower() in ("author", "editor")), None)
    implied = _first_author(split_name_list(people)) if people else None
    if first_author is None or first_author == implied:
        return fields
    at = next((i for i, (n, _) in enumerate(fields) if n.lower().startswith("x-")), len(fields))
    return [*fields[:at], ("x-first-author", first_author), *fields[at:]]


def _check_reads_back(key: str, fields: list[tuple[str, str]], entry_type: str, wanted: dict,
                      edited, label: str | None = None) -> tuple[str, dict]:
    """The entry of ``fields`` and the columns it gives; a column in ``edited`` that does not
    read back as ``wanted`` raises :class:`RecordError`."""
    label = label or f"sources '{key}'"
    for name, value in fields:
        if not _balanced(value):
            raise RecordError(f"{shown(value)}: its braces do not pair up, so it cannot be "
                              "written as BibTeX",
                              table="sources", record=label, field=_column_of(name),
                              value=value, allowed="every { needs a matching }")
    text = _write_entry(entry_type, key, fields)
    try:
        entry = parse_string(text, "bibtex", person_fields=()).entries[key]
        columns = entry_columns(entry.type, {n.lower(): v for n, v in entry.fields.items()})
    except _Unreadable as exc:
        raise RecordError(str(exc), table="sources", record=label, field=exc.column) from None
    except PybtexError as exc:
        raise RecordError(f"cannot be written as BibTeX ({_bare(exc)})", table="sources",
                          record=label) from None
    for column in edited:
        if columns.get(column) != wanted.get(column):
            raise RecordError(_why_not_kept(wanted.get(column), columns.get(column)),
                              table="sources", record=label, field=column,
                              value=wanted.get(column))
    return text, columns


def _balanced(value: str) -> bool:
    depth = 0
    for char in _BRACES.findall(value):
        depth += 1 if char == "{" else -1
        if depth < 0:
            return False
    return depth == 0


def _column_of(field: str) -> str:
    return next((c for c, f in _FIELD.items() if f == field.lower()), field)


def _why_not_kept(wanted, read) -> str:
    if isinstance(wanted, str) and re.search(r"\s\s|[\t\n\r]", wanted):
        return (f"{shown(wanted)}: line breaks, tabs and repeated spaces cannot be kept in a "
                "BibTeX entry; write the value on one line with single spaces")
    return (f"{shown(wanted)} would read back from the BibTeX entry as {shown(read)}; "
            "write it as it should read")


# -- updates -------------------------------------------------------------------------------


def rerender_source(before: dict, after: dict, changes: dict) -> dict:
    """The source after an update, with its stored entry rewritten to hold every edit.

    ``before`` is the stored source, ``after`` the validated updated record and
    ``changes`` what the caller asked for. Edited columns are written into the stored entry
    (its other fields, markup and custom fields kept); a new ``bibtex`` given in
    ``changes`` replaces the entry and the columns are read from it. Every column of the
    result is read from the entry it returns.
    """
    key = after["key"]
    if changes.get("bibtex") is not None and changes["bibtex"] != before.get("bibtex"):
        return _from_new_entry(key, changes)
    edited = [c for c in BIB_COLUMNS if after.get(c) != before.get(c)]
    if not edited:
        return _source(key, after, after["bibtex"])
    wanted = dict(after)
    if "authors" in edited and changes.get("first_author") is None:
        wanted.pop("first_author", None)  # follows the new names
    stored = parse_string(before["bibtex"], "bibtex", person_fields=()).entries[key]
    fields = _edited_fields(list(stored.fields.items()), wanted, edited)
    fields = _with_first_author(fields, wanted.get("first_author") if "first_author" in edited
                                else _stored_first_author(stored))
    entry_type = wanted["entry_type"] if "entry_type" in edited else stored.original_type
    text, columns = _check_reads_back(key, fields, entry_type, wanted,
                                      [c for c in edited if c in wanted])
    return _source(key, columns, text)


def _edited_fields(fields: list[tuple[str, str]], wanted: dict, edited: list[str]) -> list:
    names = {n.lower() for n, _ in fields}
    people = "editor" if "editor" in names and "author" not in names else "author"
    for column in edited:
        if column in ("entry_type", "first_author"):
            continue
        field = people if column == "authors" else _FIELD[column]
        value = wanted.get(column)
        at = next((i for i, (n, _) in enumerate(fields) if n.lower() == field), None)
        if value in (None, ""):
            fields = [f for i, f in enumerate(fields) if i != at]
        elif at is None:
            fields.append((field, _field_value(column, value)))
        else:
            fields[at] = (fields[at][0], _field_value(column, value))
    return fields


def _stored_first_author(entry: Entry) -> str | None:
    return next((v for n, v in entry.fields.items() if n.lower() == "x-first-author"), None)


def _from_new_entry(key: str, changes: dict) -> dict:
    records = parse_bib(str(changes["bibtex"]), f"sources '{key}': field 'bibtex'")
    if len(records) != 1 or records[0]["key"] != key:
        raise RecordError(f"must be one entry with the key '{key}' (got "
                          f"{', '.join(r['key'] for r in records)})", table="sources",
                          record=f"sources '{key}'", field="bibtex")
    record = records[0]
    for column in BIB_COLUMNS:
        given = changes.get(column)
        if given is not None and str(given) != str(record.get(column)):
            raise RecordError(f"{shown(given)} disagrees with the new BibTeX entry, which gives "
                              f"{shown(record.get(column))}; change one of them",
                              table="sources", record=f"sources '{key}'", field=column)
    return record


def _source(key: str, columns: dict, bibtex: str) -> dict:
    return {"key": key, **{c: columns[c] for c in BIB_COLUMNS if columns.get(c) is not None},
            "bibtex": bibtex}


# -- out -----------------------------------------------------------------------------------


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


# -- RIS and CSL-JSON ----------------------------------------------------------------------

#: BibTeX entry type -> RIS type (TY); anything else is GEN (generic)
RIS_TYPES = {"article": "JOUR", "book": "BOOK", "booklet": "PAMP", "inbook": "CHAP",
             "incollection": "CHAP", "inproceedings": "CPAPER", "conference": "CPAPER",
             "manual": "GEN", "mastersthesis": "THES", "phdthesis": "THES", "thesis": "THES",
             "techreport": "RPRT", "report": "RPRT", "unpublished": "UNPB", "online": "ELEC",
             "dataset": "DATA", "misc": "GEN"}
#: BibTeX entry type -> CSL type; anything else is "document"
CSL_TYPES = {"article": "article-journal", "book": "book", "booklet": "pamphlet",
             "inbook": "chapter", "incollection": "chapter", "inproceedings": "paper-conference",
             "conference": "paper-conference", "manual": "document", "mastersthesis": "thesis",
             "phdthesis": "thesis", "thesis": "thesis", "techreport": "report", "report": "report",
             "unpublished": "manuscript", "online": "webpage", "dataset": "dataset",
             "misc": "document"}
_PAGE_RANGE = re.compile(r"\s*(?:--|–|-)\s*")


def source_names(source: dict) -> tuple[str, list[dict]]:
    """("author" or "editor", the names of a source) from its stored entry, split as BibTeX
    splits them (braces respected): ``Last, First`` -> family and given (``Last, Jr, First``
    also a suffix); a name without a comma stays whole, as a literal, so that no word is
    guessed to be the surname; "others" (BibTeX's et al.) is left out: neither RIS nor
    CSL-JSON has a mark for a shortened list."""
    fields = _entry_fields(source)
    role = "author" if fields.get("author") else "editor"
    people = fields.get(role)
    if not people:
        return role, []
    return role, [_person(name) for name in _names(people) if name.strip() != "others"]


def _entry_fields(source: dict) -> dict[str, str]:
    if not source.get("bibtex"):  # a source is stored with its entry; a bare record has columns only
        return {"author": latex_text(source["authors"])} if source.get("authors") else {}
    entry = next(iter(parse_string(source["bibtex"], "bibtex", person_fields=()).entries.values()))
    return {name.lower(): value for name, value in entry.fields.items()}


def _person(name: str) -> dict:
    parts = [plain_text(p) for p in split_tex_string(name.strip(), ",")]
    if len(parts) == 1:
        return {"literal": parts[0]}
    person = {"family": parts[0], "given": parts[-1]}
    if len(parts) == 3:
        person["suffix"] = parts[1]
    return {k: v for k, v in person.items() if v}


def _person_text(person: dict) -> str:
    """A name as RIS writes it: ``Last, First`` (``Last, First, Jr``), or as written."""
    if "literal" in person:
        return person["literal"]
    return ", ".join(p for p in (person.get("family"), person.get("given"), person.get("suffix")) if p)


def _pages(pages) -> tuple[str, str | None]:
    """(first, last) page of ``107--115``; (``e2021MS002622``, None) for an article number."""
    first, *rest = _PAGE_RANGE.split(str(pages).strip(), maxsplit=1)
    return first, (rest[0] if rest else None)


def _one_line(value) -> str:
    return " ".join(str(value).split())


def to_ris(sources) -> str:
    """RIS records of sources (dicts with the ``sources`` columns and the stored ``bibtex``):
    type, id (the key), authors (or editors, as A2), title, journal (T2), year, volume,
    issue, first and last page, publisher, DOI, URL and note; what a source lacks is left out."""
    return "".join(_ris_record(source) for source in sources)


def _ris_record(source: dict) -> str:
    role, names = source_names(source)
    lines = [("TY", RIS_TYPES.get(str(source.get("entry_type") or "").lower(), "GEN")),
             ("ID", source["key"])]
    lines += [("AU" if role == "author" else "A2", _person_text(p)) for p in names]
    for tag, column in (("TI", "title"), ("T2", "journal"), ("PY", "year"), ("VL", "volume"),
                        ("IS", "number")):
        if source.get(column) not in (None, ""):
            lines.append((tag, int(source[column]) if column == "year" else source[column]))
    if source.get("pages"):
        first, last = _pages(source["pages"])
        lines += [("SP", first)] + ([("EP", last)] if last else [])
    for tag, column in (("PB", "publisher"), ("DO", "doi"), ("UR", "url"), ("N1", "note")):
        if source.get(column):
            lines.append((tag, source[column]))
    body = "".join(f"{tag}  - {_one_line(value)}\n" for tag, value in lines)
    return f"{body}ER  - \n\n"


def to_csl_json(sources) -> list[dict]:
    """CSL-JSON items of sources (as :func:`to_ris`): id (the key), type,
    author or editor ({family, given} or {literal}), title, container-title, issued
    (date-parts), volume, issue, page (``107-115``), publisher, DOI, URL and note."""
    return [_csl_item(source) for source in sources]


def _csl_item(source: dict) -> dict:
    role, names = source_names(source)
    item = {"id": source["key"],
            "type": CSL_TYPES.get(str(source.get("entry_type") or "").lower(), "document")}
    if names:
        item[role] = names
    for field, column in (("title", "title"), ("container-title", "journal"), ("volume", "volume"),
                          ("issue", "number"), ("publisher", "publisher"), ("DOI", "doi"),
                          ("URL", "url"), ("note", "note")):
        if source.get(column) not in (None, ""):
            item[field] = _one_line(source[column])
    if source.get("year") not in (None, ""):
        item["issued"] = {"date-parts": [[int(source["year"])]]}
    if source.get("pages"):
        first, last = _pages(source["pages"])
        item["page"] = f"{first}-{last}" if last else first
    return item

"""The one table renderer: a DataFrame as an aligned text table, CSV, JSON, Markdown, LaTeX,
HTML or XLSX, for the CLI, the explorer's downloads, the synthesis tables and the report.

CSV and JSON are data: full precision, ids as stored, missing values empty (``null``). The
other formats are for reading (a terminal, a paper, a spreadsheet):

- numbers to fixed decimals per column (``rounding``), p-values as ``0.012`` or ``< 0.001``
  (``pvalues``), whole numbers without decimals, every missing value as "—" (an empty cell
  in XLSX, so that a number column stays numeric);
- ``headers`` rename columns (units in the header, "Estimate (lnRR)") and ``labels`` show a
  vocabulary's label for an id (``{"biome": {"temperate": "Temperate"}}``); the text table
  keeps column and value ids, the names ``--columns`` and the filters take;
- ``notes`` follow the table as its footnotes (a table note in LaTeX, a notes sheet in
  XLSX), ``caption`` heads it;
- markup is escaped for its format (HTML entities; every LaTeX special character, and the
  non-ASCII symbols of the synthesis tables as LaTeX commands, so the table compiles with
  pdflatex and booktabs alone); control characters from records are shown, never obeyed.
"""

from __future__ import annotations

import io
import json
import re
import unicodedata
from html import escape

import numpy as np
import pandas as pd

FORMATS = ("table", "csv", "json", "markdown", "latex", "html", "xlsx")
#: formats that are bytes, not text: :func:`table_bytes` writes them
BINARY_FORMATS = ("xlsx",)
CELL_WIDTH = 48  # characters of a text-table cell before it is cut with "…"
MISSING = "—"  # a missing value in a format for reading
PVALUE_FLOOR = 0.001  # p-values below it read "< 0.001"
WIDE_TEXT = 40  # characters: a LaTeX text column this wide wraps in a paragraph column
_NO_NOTES: tuple[str, ...] = ()


def render_table(frame: pd.DataFrame, fmt: str, columns: list[str] | None = None, *,
                 rounding: int | dict | None = None, pvalues: tuple[str, ...] = (),
                 headers: dict | None = None, labels: dict | None = None,
                 notes: list[str] | tuple[str, ...] = _NO_NOTES, caption: str | None = None) -> str:
    """``frame`` (``columns`` of it, in that order) as text in format ``fmt``.

    ``rounding`` is decimals for every float column (an int) or per column (a dict);
    ``pvalues`` name p-value columns; ``headers`` map column -> shown header; ``labels``
    map column -> {id: label}; ``notes`` are footnote lines and ``caption`` a title (CSV and
    JSON carry neither: a data file stays parseable). Lists (e.g. mechanisms) are joined
    with ", ". XLSX is bytes: use :func:`table_bytes`.
    """
    _check_format(fmt)
    if fmt in BINARY_FORMATS:
        raise ValueError(f"'{fmt}' is a binary format; write it with table_bytes")
    if fmt in ("csv", "json"):
        data = _joined_lists(_chosen(frame, columns))
        if fmt == "csv":
            return data.to_csv(index=False)
        return json.dumps(records(data), ensure_ascii=False, indent=1, allow_nan=False) + "\n"
    table = _Readable(frame, columns, rounding, pvalues, headers if fmt != "table" else None,
                      labels if fmt != "table" else None)
    if table.empty and fmt in ("table", "markdown"):
        return "(no matching records)\n"
    render = {"table": _text, "markdown": _markdown, "latex": _latex, "html": _html}[fmt]
    return render(table, list(notes), caption)


def table_bytes(frame: pd.DataFrame, fmt: str, columns: list[str] | None = None, **options) -> bytes:
    """The table in ``fmt`` as the bytes of a file (text formats UTF-8 encoded); the
    options are :func:`render_table`'s."""
    _check_format(fmt)
    if fmt == "xlsx":
        return _xlsx(frame, columns, **options)
    return render_table(frame, fmt, columns, **options).encode("utf-8")


def notes_text(lines: list[str], fmt: str) -> str:
    """Note lines as they follow a table already rendered in ``fmt`` without notes: a list
    in Markdown, paragraphs in HTML, a small paragraph in LaTeX, lines otherwise."""
    if not lines:
        return ""
    if fmt == "latex":
        return _latex_notes(lines)
    if fmt == "html":
        return "".join(f'<p class="table-note">{escape(line)}</p>\n' for line in lines)
    if fmt == "markdown":  # a list, so Markdown keeps one note per line
        return "\n" + "".join(f"- {_markdown_text(line)}\n" for line in lines)
    return "\n" + "".join(f"{line}\n" for line in lines)


def readable_cells(frame: pd.DataFrame, columns: list[str] | None = None, *, rounding=None,
                   pvalues: tuple[str, ...] = (), headers: dict | None = None,
                   labels: dict | None = None) -> tuple[list[str], list[list[str]], list[bool]]:
    """(headers, rows of cell texts, which columns are numbers) as the formats for reading
    show them, for a layout of one's own (the PDF report)."""
    table = _Readable(frame, columns, rounding, pvalues, headers, labels)
    return table.headers, list(table.rows()), table.numeric


def records(frame: pd.DataFrame) -> list[dict]:
    """Rows as dicts of plain Python values, missing values as None (JSON-ready)."""
    return [{k: plain_value(v) for k, v in row.items()} for row in frame.to_dict(orient="records")]


def plain_value(value):
    """A NumPy/pandas scalar as a plain Python value; NaN, NA and None as None."""
    if _missing(value):
        return None
    return value.item() if hasattr(value, "item") else value


def format_pvalue(p) -> str:
    """A p-value as a paper prints it: ``0.012``, ``< 0.001``; "—" when missing."""
    if _missing(p):
        return MISSING
    return f"< {PVALUE_FLOOR:g}" if p < PVALUE_FLOOR else f"{p:.3f}"


def format_number(value, decimals: int | None = None) -> str:
    """A number with ``decimals`` fixed decimals (never "-0.000"), a whole number without
    any, another float with six significant digits; "—" when missing."""
    if _missing(value):
        return MISSING
    if isinstance(value, bool | np.bool_):
        return "yes" if value else "no"
    if isinstance(value, int | np.integer):
        return str(int(value))
    value = float(value)
    if decimals is not None:
        text = f"{value:.{decimals}f}"
        return text[1:] if re.fullmatch(r"-0\.?0*", text) else text
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.6g}"


# -- the readable cells -------------------------------------------------------------------


class _Readable:
    """The cells of a table for reading: text (None when missing), which columns are
    numbers (right-aligned) and the headers."""

    def __init__(self, frame, columns, rounding, pvalues, headers, labels):
        data = _joined_lists(_labelled(_chosen(frame, columns), labels or {}))
        self.columns = list(data.columns)
        self.headers = [str((headers or {}).get(c, c)) for c in self.columns]
        self.numeric = [_is_number_column(data[c]) or c in pvalues for c in self.columns]
        self.cells = [[_cell(v, _decimals(rounding, c, data[c]), c in pvalues) for v in data[c]]
                      for c in self.columns]
        self.empty = data.empty

    def rows(self, missing: str = MISSING):
        for row in zip(*self.cells, strict=True) if self.cells else []:
            yield [missing if v is None else v for v in row]


def _chosen(frame: pd.DataFrame, columns) -> pd.DataFrame:
    return frame.loc[:, list(columns)] if columns is not None else frame


def _check_format(fmt: str) -> None:
    if fmt not in FORMATS:
        raise ValueError(f"unknown table format '{fmt}'; use one of {', '.join(FORMATS)}")


def _missing(value) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    return isinstance(value, float | np.floating) and np.isnan(value)


def _labelled(frame: pd.DataFrame, labels: dict) -> pd.DataFrame:
    """Ids shown as their vocabulary labels (inside lists too); unknown ids as they are."""
    chosen = [c for c in frame.columns if labels.get(c)]
    if not chosen:
        return frame
    frame = frame.copy()
    for column in chosen:
        names = labels[column]
        frame[column] = [[names.get(x, x) for x in v] if isinstance(v, list)
                         else names.get(v, v) if isinstance(v, str) else v for v in frame[column]]
    return frame


def _joined_lists(frame: pd.DataFrame) -> pd.DataFrame:
    listed = [c for c in frame.columns if frame[c].map(lambda v: isinstance(v, list)).any()]
    if not listed:
        return frame
    frame = frame.copy()
    for column in listed:
        frame[column] = [", ".join(map(str, v)) if isinstance(v, list) else v for v in frame[column]]
    return frame


def _is_number_column(series: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)


def _decimals(rounding, column: str, series: pd.Series) -> int | None:
    if not pd.api.types.is_float_dtype(series):
        return None  # whole numbers (counts) never get decimals
    return rounding.get(column) if isinstance(rounding, dict) else rounding


def _cell(value, decimals: int | None, pvalue: bool) -> str | None:
    if _missing(value):
        return None
    if pvalue:
        return format_pvalue(float(value))
    if isinstance(value, str):
        return value.translate(_CONTROLS)
    if isinstance(value, int | float | np.number | bool | np.bool_):
        return format_number(value, decimals)
    return str(value).translate(_CONTROLS)


# control characters (but tab and newline) as visible escapes, so a terminal never obeys
# one that reached a record before soc-kb refused them
_CONTROLS = {c: f"\\x{c:02x}" for c in [*range(0, 9), *range(11, 32), 127, *range(128, 160)]}


# -- text, Markdown, HTML -----------------------------------------------------------------


def _text(table: _Readable, notes: list[str], caption: str | None) -> str:
    shown = pd.DataFrame([[_short(v) for v in row] for row in table.rows()], columns=table.headers)
    head = f"{caption}\n\n" if caption else ""
    return head + shown.to_string(index=False) + "\n" + notes_text(notes, "table")


def _short(value: str, width: int = CELL_WIDTH) -> str:
    return value[:width - 1] + "…" if len(value) > width else value


def _markdown(table: _Readable, notes: list[str], caption: str | None) -> str:
    from tabulate import tabulate

    rows = [[_markdown_cell(v) for v in row] for row in table.rows()]
    # disable_numparse: "0.100" stays as written instead of being re-read as 0.1
    text = tabulate(rows, [_markdown_cell(h) for h in table.headers], tablefmt="pipe",
                    disable_numparse=True,
                    colalign=["right" if n else "left" for n in table.numeric])
    head = f"**{_markdown_text(caption)}**\n\n" if caption else ""
    return head + text + "\n" + notes_text(notes, "markdown")


_TAG_START = re.compile(r"<(?=[A-Za-z/!?])")


def _markdown_cell(text: str) -> str:
    """A cell that stays one cell and is never read as markup: ``|`` escaped, and what
    :func:`_markdown_text` escapes."""
    return _markdown_text(text.replace("\\", "\\\\").replace("|", "\\|"))


def _markdown_text(text: str) -> str:
    """One line never read as HTML: a tag's ``<`` escaped, line breaks as spaces."""
    return _TAG_START.sub("&lt;", text.replace("\r", " ").replace("\n", " "))


def _html(table: _Readable, notes: list[str], caption: str | None) -> str:
    # every text is escaped: cells and headers come from users and files, never markup
    right = ' style="text-align: right"'
    lines = ['<table class="soc-kb-table">']
    if caption:
        lines.append(f"<caption>{escape(caption)}</caption>")
    lines.append("<thead><tr>" + "".join(
        f"<th{right if n else ''}>{escape(h)}</th>" for h, n in zip(table.headers, table.numeric,
                                                                     strict=True)) + "</tr></thead>")
    lines.append("<tbody>")
    for row in table.rows():
        lines.append("<tr>" + "".join(f"<td{right if n else ''}>{escape(v)}</td>"
                                      for v, n in zip(row, table.numeric, strict=True)) + "</tr>")
    lines += ["</tbody>", "</table>"]
    return "\n".join(lines) + "\n" + notes_text(notes, "html")


# -- LaTeX ---------------------------------------------------------------------------------

#: text-mode escapes of the characters TeX reads as commands (and of those the default OT1
#: fonts print as other glyphs: < > |)
_LATEX_SPECIAL = {"\\": r"\textbackslash{}", "{": r"\{", "}": r"\}", "_": r"\_", "%": r"\%",
                  "&": r"\&", "#": r"\#", "$": r"\$", "~": r"\textasciitilde{}",
                  "^": r"\textasciicircum{}", "<": r"\ensuremath{<}", ">": r"\ensuremath{>}",
                  "|": r"\ensuremath{|}", "\n": " ", "\r": " ", "\t": " "}
#: non-ASCII symbols as LaTeX that pdflatex prints with its base fonts
_LATEX_SYMBOLS = {
    "—": "---", "–": "--", "−": r"\ensuremath{-}", "²": r"\ensuremath{^{2}}",
    "³": r"\ensuremath{^{3}}", "¹": r"\ensuremath{^{1}}", "≥": r"\ensuremath{\geq}",
    "≤": r"\ensuremath{\leq}", "±": r"\ensuremath{\pm}", "×": r"\ensuremath{\times}",
    "·": r"\ensuremath{\cdot}", "°": r"\ensuremath{^{\circ}}", "…": r"\dots{}", "≈": r"\ensuremath{\approx}",
    "→": r"\ensuremath{\rightarrow}", "≠": r"\ensuremath{\neq}", "√": r"\ensuremath{\surd}",
    "‰": r"\ensuremath{^{0}\!/_{00}}", "“": "``", "”": "''", "‘": "`", "’": "'",
    "\xa0": "~", "\u2009": r"\,", "\u202f": r"\,", "ß": r"\ss{}", "æ": r"\ae{}", "Æ": r"\AE{}",
    "œ": r"\oe{}", "Œ": r"\OE{}", "ø": r"\o{}", "Ø": r"\O{}", "ł": r"\l{}", "Ł": r"\L{}",
    "ı": r"\i{}", "å": r"\aa{}", "Å": r"\AA{}", "µ": r"\ensuremath{\mu}", "•": r"\ensuremath{\bullet}",
    "€": "EUR", "§": r"\S{}", "¶": r"\P{}", "©": r"\copyright{}",
}
#: combining marks -> the accent command that puts them on a letter
_LATEX_ACCENTS = {"\u0301": "'", "\u0300": "`", "\u0302": "^", "\u0308": '"', "\u0303": "~",
                  "\u0304": "=", "\u0307": ".", "\u0327": "c", "\u030c": "v", "\u030b": "H",
                  "\u030a": "r", "\u0306": "u", "\u0328": "k", "\u0323": "d"}
_GREEK = re.compile(r"GREEK (SMALL|CAPITAL) LETTER (\w+)$")
#: Greek capitals that look like Latin ones have no command of their own in LaTeX
_LATIN_CAPITAL = {"ALPHA": "A", "BETA": "B", "EPSILON": "E", "ZETA": "Z", "ETA": "H", "IOTA": "I",
                  "KAPPA": "K", "MU": "M", "NU": "N", "OMICRON": "O", "RHO": "P", "TAU": "T",
                  "CHI": "X"}


def latex_escape(text: str) -> str:
    """Plain text as LaTeX text that pdflatex compiles with its base fonts: specials
    escaped, accented letters as accent commands, Greek letters and symbols in math. A
    character with no such form is shown as its code point, ``[U+4E2D]``, never dropped."""
    return "".join(_latex_char(c) for c in text)


def _latex_char(c: str) -> str:
    if c in _LATEX_SPECIAL:
        return _LATEX_SPECIAL[c]
    if c.isascii():
        return c
    if c in _LATEX_SYMBOLS:
        return _LATEX_SYMBOLS[c]
    greek = _GREEK.match(unicodedata.name(c, ""))
    if greek:
        return _greek(greek.group(1) == "CAPITAL", greek.group(2))
    base, *marks = unicodedata.normalize("NFD", c)
    if base.isascii() and base.isalpha() and marks and all(m in _LATEX_ACCENTS for m in marks):
        for mark in marks:
            base = f"\\{_LATEX_ACCENTS[mark]}{{{base}}}"
        return base
    return f"[U+{ord(c):04X}]"


def _greek(capital: bool, name: str) -> str:
    name = "LAMBDA" if name == "LAMDA" else name  # Unicode spells it without the b
    if capital:
        return _LATIN_CAPITAL.get(name) or rf"\ensuremath{{\{name.capitalize()}}}"
    return "o" if name == "OMICRON" else rf"\ensuremath{{\{name.lower()}}}"


def _latex_value(text: str, numeric: bool) -> str:
    if numeric and text.startswith("-"):
        return r"\ensuremath{-}" + latex_escape(text[1:])  # a minus sign, not a hyphen
    return latex_escape(text)


def _latex(table: _Readable, notes: list[str], caption: str | None) -> str:
    widths = [max([len(h), *(len(v) for v in col if v)], default=0)
              for h, col in zip(table.headers, table.cells, strict=True)]
    spec = "".join("r" if n else (r"p{5cm}" if w > WIDE_TEXT else "l")
                   for n, w in zip(table.numeric, widths, strict=True))
    lines = [r"% soc-kb table: needs \usepackage{booktabs} in the preamble",
             r"\begin{table}[htbp]", r"\centering", r"\small"]
    if caption:
        lines.append(rf"\caption{{{latex_escape(caption)}}}")
    lines += [rf"\begin{{tabular}}{{{spec}}}", r"\toprule",
              " & ".join(latex_escape(h) for h in table.headers) + r" \\", r"\midrule"]
    lines += [" & ".join(_latex_value(v, n) for v, n in zip(row, table.numeric, strict=True)) + r" \\"
              for row in table.rows()]
    lines += [r"\bottomrule", r"\end{tabular}"]
    if notes:
        lines.append(_latex_notes(notes).rstrip("\n"))
    lines.append(r"\end{table}")
    return "\n".join(lines) + "\n"


def _latex_notes(lines: list[str]) -> str:
    body = r" \\ ".join(latex_escape(line) for line in lines)
    return ("\\par\\smallskip\n\\parbox{\\linewidth}{\\footnotesize\\raggedright "
            f"\\textit{{Notes.}} {body}}}\n")


# -- XLSX ------------------------------------------------------------------------------------


def _xlsx(frame: pd.DataFrame, columns=None, *, rounding=None, pvalues=(), headers=None,
          labels=None, notes=_NO_NOTES, caption=None) -> bytes:
    """A workbook: the table (numbers stay numbers, shown with the table's decimals;
    missing values as empty cells, so a column sums and sorts) and a notes sheet."""
    from openpyxl import Workbook
    from openpyxl.styles import Font

    data = _joined_lists(_labelled(_chosen(frame, columns), labels or {}))
    book = Workbook()
    sheet = book.active
    sheet.title = "Table"
    sheet.append([str((headers or {}).get(c, c)) for c in data.columns])
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    formats = [_xlsx_format(data[c], _decimals(rounding, c, data[c]), c in pvalues)
               for c in data.columns]
    for row in data.itertuples(index=False):
        sheet.append([_xlsx_value(v) for v in row])
        for cell, number_format in zip(sheet[sheet.max_row], formats, strict=True):
            if number_format and isinstance(cell.value, int | float):
                cell.number_format = number_format
    sheet.freeze_panes = "A2"
    notes_sheet = book.create_sheet("Notes")
    for line in [*([caption] if caption else []), *notes,
                 "An empty cell is a value that is not available."]:
        notes_sheet.append([line.translate(_CONTROLS)])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _xlsx_format(series: pd.Series, decimals: int | None, pvalue: bool) -> str | None:
    if pvalue:  # the number stays, shown as a paper prints it
        return f'[<{PVALUE_FLOOR:g}]"< {PVALUE_FLOOR:g}";0.000'
    if decimals is not None:
        return "0" if decimals == 0 else "0." + "0" * decimals
    return "0" if pd.api.types.is_integer_dtype(series) else None


def _xlsx_value(value):
    if _missing(value):
        return None
    if isinstance(value, bool | np.bool_):
        return "yes" if value else "no"
    if isinstance(value, np.integer | np.floating):
        return value.item()
    if isinstance(value, str):
        return value.translate(_CONTROLS)  # XML refuses control characters; show them
    return value if isinstance(value, int | float) else str(value).translate(_CONTROLS)

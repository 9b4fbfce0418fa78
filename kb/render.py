"""The one table renderer: a DataFrame as an aligned text table, CSV, JSON, Markdown, LaTeX
or HTML, for the CLI, the explorer's downloads and the synthesis tables alike.

CSV and JSON keep full precision (they are data); the other formats are for reading, so
numbers are rounded (``rounding``) and long cells of the text table are shortened.
"""

from __future__ import annotations

import json

import pandas as pd

FORMATS = ("table", "csv", "json", "markdown", "latex", "html")
CELL_WIDTH = 48  # characters of a text-table cell before it is cut with "…"


def render_table(frame: pd.DataFrame, fmt: str, columns: list[str] | None = None, *,
                 rounding: int | dict | None = None, pvalues: tuple[str, ...] = ()) -> str:
    """``frame`` (``columns`` of it, in that order) as text in format ``fmt``.

    ``rounding`` is decimals for every number (an int) or per column (a dict); ``pvalues``
    name columns shown with three significant digits. Lists (e.g. mechanisms) are joined
    with ", ". Missing values are empty cells (``null`` in JSON).
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown table format '{fmt}'; use one of {', '.join(FORMATS)}")
    frame = _joined_lists(frame.loc[:, list(columns)] if columns is not None else frame)
    if fmt == "csv":
        return frame.to_csv(index=False)
    if fmt == "json":
        return json.dumps(records(frame), ensure_ascii=False, indent=1, allow_nan=False) + "\n"
    if frame.empty and fmt in ("table", "markdown"):
        return "(no matching records)\n"
    shown = _visible(_rounded(frame, rounding, pvalues))
    if fmt == "latex":
        return shown.to_latex(index=False, na_rep="", float_format="%g")
    if fmt == "html":
        return _html(shown)
    shown = shown.astype(object).where(shown.notna(), "")
    if fmt == "markdown":
        return shown.to_markdown(index=False) + "\n"
    return shown.map(_short).to_string(index=False) + "\n"


def records(frame: pd.DataFrame) -> list[dict]:
    """Rows as dicts of plain Python values, missing values as None (JSON-ready)."""
    return [{k: plain_value(v) for k, v in row.items()} for row in frame.to_dict(orient="records")]


def plain_value(value):
    """A NumPy/pandas scalar as a plain Python value; NaN, NA and None as None."""
    if value is None or value is pd.NA or (isinstance(value, float) and pd.isna(value)):
        return None
    return value.item() if hasattr(value, "item") else value


def _joined_lists(frame: pd.DataFrame) -> pd.DataFrame:
    listed = [c for c in frame.columns if frame[c].map(lambda v: isinstance(v, list)).any()]
    if not listed:
        return frame
    frame = frame.copy()
    for column in listed:
        frame[column] = [", ".join(map(str, v)) if isinstance(v, list) else v for v in frame[column]]
    return frame


def _rounded(frame: pd.DataFrame, rounding, pvalues) -> pd.DataFrame:
    shown = frame.round(rounding) if rounding is not None else frame.copy()
    for column in pvalues:
        if column in shown:
            shown[column] = shown[column].map(lambda p: None if pd.isna(p) else float(f"{p:.3g}"))
    return shown


def _html(frame: pd.DataFrame) -> str:
    # escape=True: cell text and headers come from users and files, never markup
    return frame.to_html(index=False, na_rep="", border=0, escape=True) + "\n"


def _short(value, width: int = CELL_WIDTH):
    if isinstance(value, str) and len(value) > width:
        return value[:width - 1] + "…"
    return value


# control characters (but tab and newline) as visible escapes, so a terminal never obeys
# one that reached a record before soc-kb refused them
_CONTROLS = {c: f"\\x{c:02x}" for c in [*range(0, 9), *range(11, 32), 127, *range(128, 160)]}


def _visible(frame: pd.DataFrame) -> pd.DataFrame:
    text = [c for c in frame.columns if not pd.api.types.is_numeric_dtype(frame[c])]
    if not text:
        return frame
    return frame.assign(**{c: frame[c].map(lambda v: v.translate(_CONTROLS) if isinstance(v, str) else v)
                           for c in text})

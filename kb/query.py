"""Filters for studies, effects, claims and sources, turned into SQL with bound parameters.

Every filter is optional; several values for one filter mean "any of them"; ranges are
``(low, high)`` with ``None`` for an open end. Vocabulary values are checked so a typo
gets the allowed values and the nearest match instead of an empty result.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, fields

from sqlite_utils.db import Database

from .errors import KBError
from .records import shown
from .vocab import FACET_VOCABULARY

Range = tuple[float | None, float | None]


@dataclass(frozen=True)
class StudyFilter:
    """What to select; field names are the keyword arguments of ``KnowledgeBase.studies``."""

    biome: str | Iterable[str] | None = None
    ecosystem: str | Iterable[str] | None = None
    mechanism: str | Iterable[str] | None = None
    depth_class: str | Iterable[str] | None = None
    depth_range: Range | None = None
    direction: str | Iterable[str] | None = None
    respiration_direction: str | Iterable[str] | None = None
    study_type: str | Iterable[str] | None = None
    warming: Range | None = None
    year: Range | None = None
    duration: Range | None = None
    response: str | Iterable[str] | None = None
    text: str | None = None
    source_key: str | Iterable[str] | None = None
    origin: str | Iterable[str] | None = None
    study_id: str | Iterable[str] | None = None
    include_missing: bool = False  # a range filter keeps studies that have no value for it


FILTER_NAMES = tuple(f.name for f in fields(StudyFilter))
#: range filter -> what it is about, for "leaves out N studies that state no …"
RANGE_FILTERS = {"depth_range": "sampled depth", "warming": "warming magnitude",
                 "year": "publication year", "duration": "duration"}

#: filter -> vocabulary its values are checked against
_VOCAB = {name: FACET_VOCABULARY[name] for name in FILTER_NAMES if name in FACET_VOCABULARY}


def as_list(value) -> list | None:
    if value is None:
        return None
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    return list(value)


class Where:
    """A growing list of SQL conditions and their parameters."""

    def __init__(self):
        self.clauses: list[str] = []
        self.params: list = []

    def add(self, clause: str, *params) -> None:
        self.clauses.append(clause)
        self.params.extend(params)

    def any_of(self, column: str, values: list) -> None:
        marks = ", ".join("?" * len(values))
        self.add(f"{column} IN ({marks})", *values)

    def within(self, column: str, bounds: Range) -> None:
        low, high = bounds
        if low is not None:
            self.add(f"{column} >= ?", low)
        if high is not None:
            self.add(f"{column} <= ?", high)

    def sql(self) -> str:
        return " WHERE " + " AND ".join(self.clauses) if self.clauses else ""


def study_conditions(store, flt: StudyFilter, alias: str = "s", warming_column: str | None = None) -> Where:
    """Conditions on the studies table (aliased ``alias``) for a filter."""
    where = Where()
    lists = {name: _checked(store, name, as_list(getattr(flt, name))) for name in _VOCAB}
    for name, column in (("biome", "biome"), ("ecosystem", "ecosystem"),
                         ("depth_class", "depth_class"), ("direction", "soc_direction"),
                         ("respiration_direction", "respiration_direction"),
                         ("study_type", "study_type")):
        if lists[name]:
            where.any_of(f"{alias}.{column}", lists[name])
    for name, column in (("source_key", "source_key"), ("origin", "origin"), ("study_id", "id")):
        values = as_list(getattr(flt, name))
        if values:
            where.any_of(f"{alias}.{column}", values)
    if lists["mechanism"]:
        marks = ", ".join("?" * len(lists["mechanism"]))
        where.add(f"{alias}.id IN (SELECT study_id FROM study_mechanisms WHERE mechanism IN ({marks}))",
                  *lists["mechanism"])
    if lists["response"]:
        marks = ", ".join("?" * len(lists["response"]))
        where.add(f"{alias}.id IN (SELECT study_id FROM effects WHERE response IN ({marks}))",
                  *lists["response"])
    for name in RANGE_FILTERS:
        bounds = getattr(flt, name)
        if bounds is not None:
            condition, params = range_condition(name, bounds, alias, warming_column)
            missing = missing_condition(name, alias, warming_column)
            where.add(f"({condition} OR {missing})" if flt.include_missing else condition, *params)
    if flt.text:
        _text(store.db, where, flt.text, alias)
    return where


def _layer(alias: str) -> tuple[str, str]:
    """SQL for the top and bottom (cm) of a study's sampled layer: its own interval, else the
    bounds of its depth class (an open class end is far away), else NULL (not stated)."""
    top = (f"coalesce({alias}.depth_top_cm, (SELECT coalesce(top_cm, CASE WHEN bottom_cm IS NOT "
           f"NULL THEN -1e9 END) FROM depth_classes WHERE name = {alias}.depth_class))")
    bottom = (f"coalesce({alias}.depth_bottom_cm, (SELECT coalesce(bottom_cm, CASE WHEN top_cm IS "
              f"NOT NULL THEN 1e9 END) FROM depth_classes WHERE name = {alias}.depth_class))")
    return top, bottom


def _value(name: str, alias: str, warming_column: str | None) -> str:
    return {"warming": warming_column or f"{alias}.warming_c", "year": "src.year",
            "duration": f"{alias}.duration_years"}[name]


def range_condition(name: str, bounds, alias: str = "s",
                    warming_column: str | None = None) -> tuple[str, list]:
    """SQL (and its parameters) for one range filter; a study without a value fails it."""
    low, high = _range(name, bounds)
    if name == "depth_range":  # the sampled layer overlaps the asked range
        top, bottom = _layer(alias)
        parts = [(f"{top} < ?", high), (f"{bottom} > ?", low)]
    else:
        value = _value(name, alias, warming_column)
        parts = [(f"{value} >= ?", low), (f"{value} <= ?", high)]
    chosen = [(sql, v) for sql, v in parts if v is not None] or [("1", None)]
    return " AND ".join(sql for sql, _ in chosen), [v for _, v in chosen if v is not None]


def missing_condition(name: str, alias: str = "s", warming_column: str | None = None) -> str:
    """SQL true for a study that states no value for a range filter."""
    if name == "depth_range":
        top, bottom = _layer(alias)
        return f"({top} IS NULL OR {bottom} IS NULL)"
    return f"{_value(name, alias, warming_column)} IS NULL"


def fts_query(db: Database, text: str | None) -> str | None:
    """A user's search text as a safe FTS5 query, or None when it holds no word to search
    for (only spaces, quotes or punctuation): then there is no text filter at all, since
    ``MATCH ''`` is an error and matching nothing would hide every record."""
    if not text or not any(ch.isalnum() for ch in text):
        return None
    return db.quote_fts(text) or None


def _text(db: Database, where: Where, text: str, alias: str) -> None:
    query = fts_query(db, text)
    if query is None:
        return
    where.add(f"({alias}.rowid IN (SELECT rowid FROM studies_fts WHERE studies_fts MATCH ?) "
              f"OR {alias}.source_key IN (SELECT key FROM sources WHERE rowid IN "
              "(SELECT rowid FROM sources_fts WHERE sources_fts MATCH ?)))", query, query)


def _range(name: str, bounds) -> Range:
    if isinstance(bounds, str):
        bounds = parse_range(bounds, name)
    low, high = bounds
    for end in (low, high):
        if end is not None and not math.isfinite(end):
            raise KBError(f"{name}: {end!r} is not a finite number; write LOW:HIGH with numbers")
    if low is not None and high is not None and low > high:
        raise KBError(f"{name}: range {low:g}:{high:g} is empty; write LOW:HIGH with LOW ≤ HIGH")
    return low, high


def parse_range(text: str, name: str = "range") -> Range:
    """``"1.5:3"`` -> (1.5, 3.0); ``":3"`` and ``"1.5:"`` leave an end open; ``"2"`` is exactly 2."""
    low, sep, high = text.partition(":")
    try:
        values = (float(low) if low.strip() else None, float(high) if high.strip() else None)
    except ValueError:
        raise KBError(f"{name}: {shown(text)} is not a range; write LOW:HIGH, LOW: or :HIGH "
                      "with numbers, e.g. 1.5:3") from None
    return _range(name, values if sep else (values[0], values[0]))


def _checked(store, name: str, values: list | None) -> list | None:
    if not values:
        return values
    from .batch import check_term
    from .errors import RecordError

    for value in values:
        try:
            check_term(store, _VOCAB[name], value)
        except RecordError as exc:
            raise KBError(f"{name}: {exc.problem}; {exc.allowed}") from None
    return values

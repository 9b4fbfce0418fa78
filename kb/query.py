"""Filters for studies, effects, claims and sources, turned into SQL with bound parameters.

Every filter is optional; several values for one filter mean "any of them"; ranges are
``(low, high)`` with ``None`` for an open end. Vocabulary values are checked so a typo
gets the allowed values and the nearest match instead of an empty result.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, fields

from sqlite_utils.db import Database

from .errors import KBError
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
    response: str | Iterable[str] | None = None
    text: str | None = None
    source_key: str | Iterable[str] | None = None
    origin: str | Iterable[str] | None = None
    study_id: str | Iterable[str] | None = None


FILTER_NAMES = tuple(f.name for f in fields(StudyFilter))

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
    _ranges(where, flt, alias, warming_column or f"{alias}.warming_c")
    if flt.text:
        _text(store.db, where, flt.text, alias)
    return where


def _ranges(where: Where, flt: StudyFilter, alias: str, warming_column: str) -> None:
    if flt.warming:
        where.within(warming_column, _range("warming", flt.warming))
    if flt.year:
        where.within("src.year", _range("year", flt.year))
    if flt.depth_range:
        low, high = _range("depth_range", flt.depth_range)
        # a study matches when its sampled layer overlaps the asked range
        if high is not None:
            where.add(f"{alias}.depth_top_cm < ?", high)
        if low is not None:
            where.add(f"{alias}.depth_bottom_cm > ?", low)


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
    if low is not None and high is not None and low > high:
        raise KBError(f"{name}: range {low:g}:{high:g} is empty; write LOW:HIGH with LOW ≤ HIGH")
    return low, high


def parse_range(text: str, name: str = "range") -> Range:
    """``"1.5:3"`` -> (1.5, 3.0); ``":3"`` and ``"1.5:"`` leave an end open; ``"2"`` is exactly 2."""
    low, sep, high = text.partition(":")
    try:
        values = (float(low) if low.strip() else None, float(high) if high.strip() else None)
    except ValueError:
        raise KBError(f"{name}: {text!r} is not a range; write LOW:HIGH, LOW: or :HIGH "
                      "with numbers, e.g. 1.5:3") from None
    return values if sep else (values[0], values[0])


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

"""Turn a batch of raw records into rows ready to insert, or refuse it with one line.

Checks that need the database happen here, inside the write transaction that inserts the
batch: vocabularies, unknown source/study/claim keys, duplicate ids and DOIs (within the
batch and against what is stored). Nothing is written until the whole batch passes.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from .bib import record_bibtex
from .errors import DuplicateError, KBError, RecordError
from .records import MAX_LINK_ID, TABLES, record_label, shown, validate
from .vocab import FACET_VOCABULARY, FIELD_VOCABULARY, nearest

#: the groups of ``group_by: warming_bin`` (as evidence.synthesis.WARMING_LABELS)
WARMING_GROUPS = ("<1 °C", "1–2 °C", "2–4 °C", "≥4 °C", "not_reported")

PK = {"sources": "key", "studies": "id", "effects": "id", "claims": "id", "claim_links": "id",
      "syntheses": "id", "synthesis_links": "id"}

#: (table, field) -> (referenced table, what to tell the user)
REFERENCES = {
    ("studies", "source_key"): ("sources", "add the source first (soc-kb import-bib FILE) or fix the key"),
    ("claims", "source_key"): ("sources", "add the source first or fix the key"),
    ("effects", "study_id"): ("studies", "add the study first or fix the id"),
    ("claim_links", "claim_id"): ("claims", "add the claim first or fix the id"),
    ("claim_links", "other_claim_id"): ("claims", "add the claim first or fix the id"),
    ("claim_links", "study_id"): ("studies", "add the study first or fix the id"),
    ("synthesis_links", "claim_id"): ("claims", "add the claim first or fix the id"),
    ("synthesis_links", "synthesis_id"): ("syntheses", "add the synthesis first or fix the id"),
}


_SINGULAR = {"sources": "source", "studies": "study", "claims": "claim", "syntheses": "synthesis"}


@dataclass
class Batch:
    """Validated rows per table, in insertion order, plus study–mechanism pairs and
    (alias, claim id) pairs."""

    rows: dict[str, list[dict]] = field(default_factory=lambda: {t: [] for t in TABLES})
    labels: dict[str, list[str]] = field(default_factory=lambda: {t: [] for t in TABLES})
    mechanisms: list[tuple[str, str]] = field(default_factory=list)
    aliases: list[tuple[str, str]] = field(default_factory=list)

    def count(self) -> dict[str, int]:
        return {table: len(rows) for table, rows in self.rows.items() if rows}


def prepare(store, records: dict[str, Iterable[dict]], where: str = "",
            origins: dict[str, list[tuple[str, str]]] | None = None) -> Batch:
    """Validate ``records`` (table -> raw dicts) against the models and the store.

    ``origins`` gives, per table, the (file, position) each record came from, for messages.
    """
    batch = Batch()
    try:
        _validate_all(store, records, batch, origins or {})
        _check_against_store(store, batch)
    except RecordError as exc:
        raise exc.located(where) from None
    return batch


def _validate_all(store, records, batch: Batch, origins: dict) -> None:
    unknown = set(records) - set(TABLES)
    if unknown:
        raise RecordError(f"unknown table '{sorted(unknown)[0]}'",
                          allowed="expected any of " + ", ".join(TABLES))
    now = datetime.now(UTC).isoformat(timespec="seconds")
    for table in TABLES:
        places = origins.get(table) or []
        for index, raw in enumerate(records.get(table) or []):
            label = record_label(table, index, raw, places[index] if index < len(places) else None)
            row = _complete(store, table, validate(table, raw, label), now, label)
            batch.rows[table].append(row)
            batch.labels[table].append(label)
    _collect_mechanisms(batch)
    collect_aliases(batch)


def _complete(store, table: str, row: dict, now: str, label: str | None = None) -> dict:
    if table == "sources":
        if "bibtex" not in row:
            row["bibtex"] = record_bibtex(row, label)
        if row.get("authors") and "first_author" not in row:
            row["first_author"] = row["authors"].split(" and ")[0].split(",")[0].strip()
    elif table == "studies":
        row.setdefault("added_at", now)
        if store.curator:
            row.setdefault("curator", store.curator)
        row.setdefault("depth_class", depth_class_for(row.get("depth_top_cm"), row.get("depth_bottom_cm")))
    elif table == "effects":
        from .effects import complete_effect

        row = complete_effect(row, label)
    return {k: v for k, v in row.items() if v is not None}


def depth_class_for(top: float | None, bottom: float | None) -> str | None:
    """The depth class a sampled range falls in; None when the range is not given."""
    if top is None or bottom is None:
        return None
    if bottom <= 0:
        return "organic_layer"
    if bottom <= 30:
        return "topsoil"
    if top >= 100:
        return "deep_subsoil"
    return "subsoil" if top >= 30 else "whole_profile"


def _collect_mechanisms(batch: Batch) -> None:
    for row in batch.rows["studies"]:
        for mechanism in dict.fromkeys(row.pop("mechanisms", [])):
            batch.mechanisms.append((row["id"], mechanism))


def collect_aliases(batch: Batch) -> None:
    """Move each claim's ``aliases`` out of its row into ``batch.aliases`` (alias, claim id)."""
    for row in batch.rows["claims"]:
        batch.aliases.extend((alias, row["id"]) for alias in row.pop("aliases", []))


def _check_against_store(store, batch: Batch) -> None:
    _assign_effect_ids(store, batch)
    _assign_link_ids(store, batch)
    _assign_link_ids(store, batch, "synthesis_links")
    check_aliases(store, batch)
    _resolve_claim_aliases(store, batch)
    for table in TABLES:
        _check_vocabularies(store, batch, table)
        _check_duplicate_keys(store, batch, table)
        _check_references(store, batch, table)
    _check_mechanisms(store, batch)
    _check_dois(store, batch)
    _check_duplicate_links(store, batch)
    check_syntheses(store, batch)
    _check_duplicate_synthesis_links(store, batch)


def _check_vocabularies(store, batch: Batch, table: str) -> None:
    checks = [(f, vocab) for (t, f), vocab in FIELD_VOCABULARY.items() if t == table and f != "mechanisms"]
    for row, label in zip(batch.rows[table], batch.labels[table], strict=True):
        for name, vocab in checks:
            if name in row:
                check_term(store, vocab, row[name], table=table, record=label, field=name)


def _check_mechanisms(store, batch: Batch) -> None:
    labels = dict(zip((r["id"] for r in batch.rows["studies"]), batch.labels["studies"], strict=True))
    for study_id, mechanism in batch.mechanisms:
        check_term(store, "mechanisms", mechanism, table="studies", record=labels[study_id],
                   field="mechanisms")


def check_term(store, vocab: str, value: str, **where) -> None:
    """Refuse a value that is not in a vocabulary, listing the allowed values and the nearest."""
    allowed = store.vocabulary_names(vocab)
    if value in allowed:
        return
    hint = nearest(vocab, value)
    hint = hint if hint in allowed else None
    suggestion = f"did you mean '{hint}'? " if hint else ""
    raise RecordError(f"{shown(value)} is not an allowed value of {vocab}", value=value,
                      allowed=f"{suggestion}allowed: {', '.join(allowed)}", **where)


def _check_duplicate_keys(store, batch: Batch, table: str) -> None:
    pk = PK[table]
    seen: dict = {}
    for row, label in zip(batch.rows[table], batch.labels[table], strict=True):
        key = row.get(pk)
        if key is None:
            continue
        if key in seen:
            raise DuplicateError(f"'{key}' is repeated (also at {seen[key]})",
                                 table=table, record=label, field=pk, value=key,
                                 allowed="each record needs its own id")
        seen[key] = label
    stored = store.existing_keys(table, list(seen))
    if stored:
        key = next(k for k in seen if k in stored)
        raise DuplicateError(f"'{key}' already exists ({table} '{key}' is stored)",
                             table=table, record=seen[key], field=pk, value=key,
                             allowed="choose another id, or update the stored record instead")


def _check_references(store, batch: Batch, table: str) -> None:
    for (t, name), (target, fix) in REFERENCES.items():
        if t != table:
            continue
        wanted = {row[name] for row in batch.rows[table] if name in row}
        known = {row[PK[target]] for row in batch.rows[target]} | store.existing_keys(target, list(wanted))
        for row, label in zip(batch.rows[table], batch.labels[table], strict=True):
            if name in row and row[name] not in known:
                raise RecordError(f"{shown(row[name])} is not a known {_SINGULAR[target]} key",
                                  table=table, record=label, field=name, value=row[name], allowed=fix)


def check_aliases(store, batch: Batch, updating: str | None = None) -> None:
    """An alias is a retired claim id: never the id of a claim (stored or in the batch) and
    the alias of one claim only; a new claim may not take an alias as its id. ``updating``
    is the claim whose aliases an update rewrites (its own stored aliases are no conflict)."""
    labels = dict(zip((r["id"] for r in batch.rows["claims"]), batch.labels["claims"], strict=True))
    new_ids = set(labels)
    names = [a for a, _ in batch.aliases] + list(new_ids)
    stored = {a: c for a, c in store.claim_alias_targets(names).items() if c != updating}
    claims = store.existing_keys("claims", [a for a, _ in batch.aliases])
    seen: dict[str, str] = {}
    for alias, claim_id in batch.aliases:
        where = {"table": "claims", "record": labels[claim_id], "field": "aliases", "value": alias}
        if alias in new_ids or alias in claims:
            raise DuplicateError(f"'{alias}' is the id of a claim, not a retired id",
                                 allowed="an alias names a claim merged into this one; remove "
                                         "that claim first or leave the alias out", **where)
        owner = seen.get(alias) or stored.get(alias)
        if owner is not None:
            raise DuplicateError(f"'{alias}' is already an alias of claim '{owner}'",
                                 allowed="a retired id names one claim", **where)
        seen[alias] = claim_id
    for claim_id, label in labels.items():
        if claim_id in stored:
            raise DuplicateError(f"'{claim_id}' is an alias of claim '{stored[claim_id]}' (a "
                                 "retired id)", table="claims", record=label, field="id",
                                 value=claim_id, allowed="a retired id is never reused; choose another id")


#: (table, field) of every reference to a claim that may name an alias
CLAIM_REFERENCES = (("claim_links", "claim_id"), ("claim_links", "other_claim_id"),
                    ("synthesis_links", "claim_id"))


def _resolve_claim_aliases(store, batch: Batch) -> None:
    """A link may name a claim by an alias (stored or in this batch): it is stored under the
    canonical id. A link that an alias turns into a link of a claim to itself is refused."""
    batch_ids = {row["id"] for row in batch.rows["claims"]}
    wanted = {row[name] for table, name in CLAIM_REFERENCES for row in batch.rows[table]
              if name in row and row[name] not in batch_ids}
    wanted -= store.existing_keys("claims", list(wanted))
    if not wanted:
        return
    targets = {**store.claim_alias_targets(list(wanted)), **dict(batch.aliases)}
    for table, name in CLAIM_REFERENCES:
        for row in batch.rows[table]:
            if row.get(name) in wanted and row[name] in targets:
                row[name] = targets[row[name]]
    for row, label in zip(batch.rows["claim_links"], batch.labels["claim_links"], strict=True):
        if row.get("other_claim_id") == row["claim_id"]:
            raise RecordError(f"links claim '{row['claim_id']}' to itself (one id is an alias of "
                              "the other)", table="claim_links", record=label, field="other_claim_id",
                              allowed="link two different claims")


def _check_dois(store, batch: Batch) -> None:
    seen: dict[str, str] = {}
    for row, label in zip(batch.rows["sources"], batch.labels["sources"], strict=True):
        doi = row.get("doi")
        if not doi:
            continue
        owner = seen.get(doi.lower()) or store.source_with_doi(doi)
        if owner:
            raise DuplicateError(f"DOI '{doi}' already belongs to source '{owner}'",
                                 table="sources", record=label, field="doi", value=doi,
                                 allowed="a work is entered once; cite the existing source key")
        seen[doi.lower()] = row["key"]


def _check_duplicate_links(store, batch: Batch) -> None:
    seen = set()
    for row, label in zip(batch.rows["claim_links"], batch.labels["claim_links"], strict=True):
        ident = (row["claim_id"], row.get("study_id"), row.get("other_claim_id"), row["relation"])
        if ident in seen or store.link_exists(*ident):
            target = row.get("study_id") or row.get("other_claim_id")
            raise DuplicateError(f"'{row['claim_id']}' is already linked to '{target}' as "
                                 f"'{row['relation']}'", table="claim_links", record=label,
                                 field="claim_id", allowed="a link is recorded once")
        seen.add(ident)


def check_syntheses(store, batch: Batch) -> None:
    """A synthesis's response, filters and group value against the store's vocabularies, and
    its filters by the rules ``KnowledgeBase.studies(**filters)`` applies (so a saved query
    that would fail when it runs is refused when it is saved)."""
    from .query import StudyFilter, study_conditions

    for row, label in zip(batch.rows["syntheses"], batch.labels["syntheses"], strict=True):
        check_term(store, "responses", row["response"], table="syntheses", record=label,
                   field="response")
        filters = json.loads(row["filters"]) if row.get("filters") else {}
        try:
            study_conditions(store, StudyFilter(**filters))
        except KBError as exc:
            raise RecordError(str(exc), table="syntheses", record=label, field="filters") from None
        if row.get("group_by"):
            _check_group(store, row["group_by"], row["group_value"], label)


def _check_group(store, facet: str, value: str, label: str) -> None:
    where = {"table": "syntheses", "record": label, "field": "group_value"}
    if facet in FACET_VOCABULARY:
        check_term(store, FACET_VOCABULARY[facet], value, **where)
        return
    allowed = (WARMING_GROUPS if facet == "warming_bin" else
               sorted(set(store.vocabulary("study_types")["evidence_kind"].dropna())))
    if value not in allowed:
        raise RecordError(f"{shown(value)} is not a group of {facet}", value=value,
                          allowed="allowed: " + ", ".join(allowed), **where)


def _check_duplicate_synthesis_links(store, batch: Batch) -> None:
    seen = set()
    for row, label in zip(batch.rows["synthesis_links"], batch.labels["synthesis_links"], strict=True):
        pair = (row["claim_id"], row["synthesis_id"])
        if pair in seen or store.synthesis_link_exists(*pair):
            raise DuplicateError(f"'{pair[0]}' already cites synthesis '{pair[1]}'",
                                 table="synthesis_links", record=label, field="synthesis_id",
                                 allowed="a claim cites a synthesis once, in one relation; "
                                         "update that link instead")
        seen.add(pair)


def _assign_effect_ids(store, batch: Batch) -> None:
    """Effects without an id get ``<study_id>/e<n>``, numbered after the highest number in use.

    Numbering from the highest number, not from the count, keeps ids free after a removal
    (``S/e1`` removed from ``S/e1, S/e2``: the next is ``S/e3``, not a second ``S/e2``).
    """
    counters: dict[str, int] = {}
    given = [row["id"] for row in batch.rows["effects"] if "id" in row]
    for row in batch.rows["effects"]:
        if "id" in row:
            continue
        study = row["study_id"]
        if study not in counters:
            counters[study] = _highest_effect_number(store, study, given)
        counters[study] += 1
        row["id"] = f"{study}/e{counters[study]}"


def _highest_effect_number(store, study: str, given: list[str]) -> int:
    stored = [r[0] for r in store.db.execute("SELECT id FROM effects WHERE study_id = ?", [study])]
    pattern = re.compile(re.escape(study) + r"/e([0-9]+)")
    numbers = [int(m.group(1)) for i in (*stored, *given) if (m := pattern.fullmatch(i))]
    return max(numbers, default=0)


def _assign_link_ids(store, batch: Batch, table: str = "claim_links") -> None:
    """Links without an id get the next free integers, so the batch knows its ids before insert.

    After the highest id in use while that stays within :data:`MAX_LINK_ID`; past it (a
    base that stored a huge id before ids were bounded) the lowest unused ids instead.
    ``table`` is ``claim_links`` or ``synthesis_links`` (each numbers its own links).
    """
    rows = [row for row in batch.rows[table] if "id" not in row]
    if not rows:
        return
    given = {row["id"] for row in batch.rows[table] if "id" in row}
    stored = (store.max_link_id() if table == "claim_links"
              else store.db.execute(f'SELECT coalesce(max(id), 0) FROM "{table}"').fetchone()[0])
    highest = max([stored, *given])
    if highest + len(rows) <= MAX_LINK_ID:
        free = iter(range(highest + 1, highest + len(rows) + 1))
    else:
        used = given | {r[0] for r in store.db.execute(f'SELECT id FROM "{table}"')}
        free = (i for i in range(1, MAX_LINK_ID + 1) if i not in used)
    for row in rows:
        row["id"] = next(free)

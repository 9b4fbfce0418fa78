"""Record models: what one source, study, effect, claim or link may hold, checked before any write.

Field-level rules (types, ranges, DOI syntax, depth order, positive means for a log ratio)
live here as pydantic models; rules that need the database (vocabularies, unknown keys,
duplicates) live in :mod:`kb.checks`. Every failure becomes one :class:`RecordError` line.
"""

from __future__ import annotations

import difflib
import math
import re
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    model_validator,
)

from .errors import RecordError

TABLES = ("sources", "studies", "effects", "claims", "claim_links")

DOI_PATTERN = r"^10\.\d{4,9}/\S+$"
ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:/+-]*$"
KEY_PATTERN = r"^[A-Za-z][A-Za-z0-9_:.+-]*$"

Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
Id = Annotated[str, StringConstraints(strip_whitespace=True, pattern=ID_PATTERN, max_length=200)]
Key = Annotated[str, StringConstraints(strip_whitespace=True, pattern=KEY_PATTERN, max_length=200)]
Doi = Annotated[str, StringConstraints(strip_whitespace=True, pattern=DOI_PATTERN)]
Depth = Annotated[float, Field(ge=-100, le=2000)]
Count = Annotated[int, Field(ge=1, le=1_000_000)]
NonNegative = Annotated[float, Field(ge=0, allow_inf_nan=False)]
Finite = Annotated[float, Field(allow_inf_nan=False)]

#: ``quality_flag`` prefix of an effect that is a finer breakdown of another stored effect.
PART_OF = "part of "


def part_of_flag(effect_id: str, why: str | None = None) -> str:
    """``part of <effect id>`` (with `` (<why>)`` when given): the flag of a sub-period breakdown.

    An effect "part of" another is a finer breakdown of the same data (e.g. one month of
    a season effect, from the same chambers): it is shown with its study but never pooled
    or vote-counted together with the effect it is part of, which would count the same
    data twice and treat the breakdown as independent studies. Syntheses leave out every
    effect whose flag starts with :data:`PART_OF` (:func:`is_part_of`).
    """
    return f"{PART_OF}{effect_id}" + (f" ({why})" if why else "")


def is_part_of(flag) -> bool:
    """Whether a ``quality_flag`` marks a breakdown of another effect (:func:`part_of_flag`)."""
    return isinstance(flag, str) and flag.startswith(PART_OF)


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class SourceRecord(_Record):
    key: Key
    entry_type: Literal["article", "book", "inbook", "incollection", "inproceedings",
                        "techreport", "phdthesis", "mastersthesis", "misc", "report",
                        "online", "dataset", "unpublished", "manual"] = "article"
    title: Text | None = None
    authors: Text | None = None
    first_author: Text | None = None
    year: Annotated[int, Field(ge=1500, le=2100)] | None = None
    journal: Text | None = None
    volume: Text | None = None
    number: Text | None = None
    pages: Text | None = None
    publisher: Text | None = None
    url: Text | None = None
    doi: Doi | None = None
    verification: Literal["full", "partial", "none"] | None = None
    verified_from: Text | None = None
    unverified_fields: Text | None = None
    note: Text | None = None
    bibtex: Text | None = None

    @model_validator(mode="after")
    def _title_and_year_unless_unverified(self):
        for name in ("title", "year"):
            if getattr(self, name) is None and not may_lack(name, self.verification,
                                                             self.unverified_fields):
                raise ValueError(f"{name}: a source needs a {name} (only a source marked "
                                 "verification 'none', or 'partial' with the field named in "
                                 "unverified_fields, may lack one)")
        return self


class StudyRecord(_Record):
    id: Id
    source_key: Key | None = None
    study_type: Text | None = None
    biome: Text | None = None
    ecosystem: Text | None = None
    site: Text | None = None
    country: Text | None = None
    lat: Annotated[float, Field(ge=-90, le=90)] | None = None
    lon: Annotated[float, Field(ge=-180, le=180)] | None = None
    elevation_m: Annotated[float, Field(ge=-500, le=9000)] | None = None
    mat_c: Annotated[float, Field(ge=-40, le=40)] | None = None
    map_mm: Annotated[float, Field(ge=0, le=15000)] | None = None
    depth_top_cm: Depth | None = None
    depth_bottom_cm: Depth | None = None
    depth_class: Text | None = None
    warming_method: Text | None = None
    warming_c: Annotated[float, Field(gt=0, le=25)] | None = None
    warming_medium: Literal["air", "soil", "air_and_soil"] | None = None
    duration_years: Annotated[float, Field(gt=0, le=1000)] | None = None
    start_year: Annotated[int, Field(ge=1800, le=2100)] | None = None
    soc_direction: Text
    respiration_direction: Text | None = None
    mechanisms: list[Text] = []
    summary: Text | None = None
    evidence_quote: Text | None = None
    quote_location: Text | None = None
    origin: Text | None = None
    curator: Text | None = None
    added_at: Text | None = None
    notes: Text | None = None

    @model_validator(mode="after")
    def _depth_order(self):
        _check_depths(self.depth_top_cm, self.depth_bottom_cm)
        return self


class EffectRecord(_Record):
    id: Id | None = None
    study_id: Id
    response: Text
    period: Text | None = None
    depth_top_cm: Depth | None = None
    depth_bottom_cm: Depth | None = None
    warming_c: Annotated[float, Field(gt=0, le=25)] | None = None
    duration_years: Annotated[float, Field(gt=0, le=1000)] | None = None
    other_factors: Text | None = None
    mean_t: Finite | None = None
    sd_t: NonNegative | None = None
    n_t: Count | None = None
    mean_c: Finite | None = None
    sd_c: NonNegative | None = None
    n_c: Count | None = None
    units: Text | None = None
    measure: Literal["ROM", "SMD", "MD"] | None = None
    yi: Finite | None = None
    vi: Annotated[float, Field(gt=0, allow_inf_nan=False)] | None = None
    direction: Text | None = None
    variance_note: Text | None = None
    source_location: Text | None = None
    quality_flag: Text | None = None
    notes: Text | None = None

    @model_validator(mode="after")
    def _consistent(self):
        _check_depths(self.depth_top_cm, self.depth_bottom_cm)
        _check_effect_numbers(self)
        return self


class ClaimRecord(_Record):
    id: Id
    text: Text
    section: Text | None = None
    source_key: Key | None = None
    scope_biome: Text | None = None
    scope_ecosystem: Text | None = None
    scope_mechanism: Text | None = None
    scope_depth_class: Text | None = None
    quote: Text | None = None
    origin: Text | None = None
    notes: Text | None = None


class ClaimLinkRecord(_Record):
    id: Annotated[int, Field(ge=1)] | None = None
    claim_id: Id
    study_id: Id | None = None
    other_claim_id: Id | None = None
    relation: Text
    quote: Text | None = None
    note: Text | None = None

    @model_validator(mode="after")
    def _one_target(self):
        if (self.study_id is None) == (self.other_claim_id is None):
            raise ValueError("study_id: a link needs exactly one of study_id (evidence) "
                             "or other_claim_id (claim-to-claim relation)")
        if self.other_claim_id == self.claim_id:
            raise ValueError(f"other_claim_id: a claim cannot be linked to itself ('{self.claim_id}')")
        return self


def may_lack(field: str, verification: str | None, unverified_fields: str | None) -> bool:
    """Whether a bibliographic field may be missing: only where the entry says it was not verified."""
    if verification == "none":
        return True
    return verification == "partial" and field in (unverified_fields or "")


MODELS: dict[str, type[_Record]] = {
    "sources": SourceRecord, "studies": StudyRecord, "effects": EffectRecord,
    "claims": ClaimRecord, "claim_links": ClaimLinkRecord,
}


def _check_depths(top, bottom) -> None:
    if top is not None and bottom is not None and not top < bottom:
        raise ValueError(f"depth_top_cm: top ({top:g} cm) must be above bottom "
                         f"({bottom:g} cm), i.e. depth_top_cm < depth_bottom_cm")


def _check_effect_numbers(effect: EffectRecord) -> None:
    means = (effect.mean_t, effect.mean_c)
    if effect.measure == "ROM":
        for name, value in zip(("mean_t", "mean_c"), means, strict=True):
            if value is not None and value <= 0:
                raise ValueError(f"{name}: {value:g} must be > 0 for a log response ratio "
                                 "(measure ROM); use measure MD or SMD for values that can be ≤ 0")
    if effect.vi is not None and effect.yi is None:
        raise ValueError("vi: a sampling variance needs its effect size yi")
    has_numbers = any(v is not None for v in (*means, effect.yi, effect.sd_t, effect.sd_c))
    if has_numbers and effect.source_location is None:
        raise ValueError("source_location: every number needs its provenance (table, figure, "
                         "page or dataset record numbers)")
    if not has_numbers and effect.direction is None:
        raise ValueError("direction: an effect without numbers needs a direction "
                         "(increase, decrease, no_change, mixed)")


def validate(table: str, raw: dict, label: str) -> dict:
    """Check one raw record against its model; return the cleaned dict (None values dropped).

    Raises :class:`RecordError` naming ``label`` (e.g. ``studies[3] 'chen2023'``), the
    field, the bad value and what is allowed.
    """
    model = MODELS[table]
    try:
        record = model.model_validate(_drop_empty(raw))
    except ValidationError as exc:
        raise _record_error(exc, table, model, raw, label) from None
    return record.model_dump(exclude_none=True)


def _drop_empty(raw: dict) -> dict:
    if not isinstance(raw, dict):
        raise RecordError(f"a record must be a mapping of field: value, got {type(raw).__name__}")
    return {k: v for k, v in raw.items() if v is not None and not _is_empty(v)}


def _is_empty(value) -> bool:
    kind = type(value)
    if kind is float:
        return math.isnan(value)
    return kind is str and not value.strip()


def _record_error(exc: ValidationError, table, model, raw, label) -> RecordError:
    err = exc.errors(include_url=False)[0]
    field = str(err["loc"][0]) if err["loc"] else ""
    message = err["msg"]
    if err["type"] == "extra_forbidden":
        hint = difflib.get_close_matches(field, list(model.model_fields), n=1)
        allowed = f"did you mean '{hint[0]}'?" if hint else "allowed fields: " + ", ".join(model.model_fields)
        return RecordError(f"unknown field '{field}'", table=table, record=label, allowed=allowed)
    if err["type"] == "missing":
        return RecordError("is required but missing", table=table, record=label, field=field)
    if err["type"] == "value_error":
        field, _, message = message.removeprefix("Value error, ").partition(": ")
        return RecordError(message, table=table, record=label, field=field, value=raw.get(field))
    value = raw.get(field) if isinstance(raw, dict) else None
    return RecordError(f"{_shown(value)} is invalid: {_plain(message, err)}", table=table,
                       record=label, field=field, value=value)


def _shown(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _plain(message: str, err: dict) -> str:
    if err["type"] == "string_pattern_mismatch":
        pattern = err.get("ctx", {}).get("pattern", "")
        return {DOI_PATTERN: "a DOI looks like 10.1038/nature20150 (no https://doi.org/ prefix)",
                ID_PATTERN: "use letters, digits and _ . : / + - (no spaces), starting with a letter or digit",
                KEY_PATTERN: "a key starts with a letter and has no spaces"}.get(pattern, message)
    return re.sub(r"^Input should be", "must be", message)


def record_label(table: str, index: int, raw, origin: tuple[str, str] | None = None) -> str:
    """Where a record sits: ``studies[3] 'chen2023'`` or ``new.csv: studies line 5 'x'``.

    ``origin`` is (file, position) when the record came from a file.
    """
    pk = {"sources": "key"}.get(table, "id")
    ident = raw.get(pk) if isinstance(raw, dict) else None
    suffix = f" '{ident}'" if ident not in (None, "") else ""
    if origin is None:
        return f"{table}[{index}]{suffix}"
    file, position = origin
    joiner = "" if position.startswith("[") else " "
    return f"{file}: {table}{joiner}{position}{suffix}"

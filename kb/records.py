"""Record models: what one source, study, effect, claim, link or saved synthesis may hold,
checked before any write.

Field-level rules (types, ranges, lengths, characters, DOI and URL syntax, depth order,
positive means for a log ratio) live here as pydantic models; rules that need the database
(vocabularies, unknown keys, duplicates) live in :mod:`kb.batch`. Every failure becomes one
:class:`RecordError` line. The input limits (file sizes, nesting, text lengths, link ids,
how much of a bad value a message shows) are the named constants below: the one place
that sets them, and every message that enforces one names it.
"""

from __future__ import annotations

import difflib
import json
import math
import re
import reprlib
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    model_validator,
)

from .errors import RecordError

TABLES = ("sources", "studies", "effects", "claims", "claim_links", "syntheses", "synthesis_links")

# -- input limits ------------------------------------------------------------------------
# Every input is bounded so that no file or record can take unbounded time or memory, and
# no message can grow with the input. Each limit is far above anything real data needs
# (the shipped seed's longest text is 1,100 characters, its files 0.33 MB at most).

#: Bytes of a JSON or CSV record file (and of each file a CSV export writes): room for
#: about 10⁵ studies; a larger base is added as several files, which ``add`` takes together.
MAX_FILE_BYTES = 64 * 2**20
#: Bytes of a YAML or BibTeX file: their parsers build a tree about 20 times the file's size.
MAX_YAML_BYTES = 16 * 2**20
#: Levels of mappings and lists in a YAML/JSON record file: a record file needs 4
#: (tables → list of records → record → list of mechanisms).
MAX_NESTING = 8
#: Characters of an id, key, DOI or vocabulary term.
MAX_ID_CHARS = 200
#: Characters of a one-line text field (title, site, units, URL, ...).
MAX_LINE_CHARS = 2_000
#: Characters of a free-text field (summary, quote, notes, BibTeX entry, author list);
#: below the csv module's 131,072-character field limit, so a CSV never hits that first.
MAX_TEXT_CHARS = 100_000
#: Items of a list field (mechanisms of one study).
MAX_LIST_ITEMS = 50
#: Characters of a number written as text (a CSV cell, a command-line value).
MAX_NUMBER_CHARS = 40
#: Largest claim link id: links are numbered 1, 2, 3, ...; the bound keeps every next id
#: far from SQLite's 2⁶³ − 1.
MAX_LINK_ID = 2**31 - 1
#: Characters of a bad value quoted in an error message (cut before it is escaped).
MAX_SHOWN_CHARS = 60

#: Characters of an effect id: a study id and the "/e<n>" of a generated effect id.
MAX_EFFECT_ID_CHARS = MAX_ID_CHARS + 20

LIMIT_NAMES = {MAX_EFFECT_ID_CHARS: "MAX_EFFECT_ID_CHARS", MAX_ID_CHARS: "MAX_ID_CHARS", MAX_LINE_CHARS: "MAX_LINE_CHARS",
               MAX_TEXT_CHARS: "MAX_TEXT_CHARS", MAX_LIST_ITEMS: "MAX_LIST_ITEMS"}

_DOI_SUFFIX = r"(?:[-._;()/:A-Za-z0-9\[\]+>]|<[0-9])+"
# Crossref's recommended DOI characters plus [ ] + and the "<digit ... >" of old SICI DOIs:
# no quote, space, backslash, ampersand or "<" that could open markup.
DOI_PATTERN = rf"^10\.[0-9]{{4,9}}/{_DOI_SUFFIX}$"
URL_PATTERN = (r"^(?:[Hh][Tt][Tt][Pp][Ss]?://[^\x00-\x20\x7f-\x9f\"'<>\\^`{|}]+"
               rf"|doi:10\.[0-9]{{4,9}}/{_DOI_SUFFIX})$")
ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:/+-]*$"
KEY_PATTERN = r"^[A-Za-z][A-Za-z0-9_:.+-]*$"

# Control characters print as terminal escapes or hide text: one-line fields allow none,
# free text allows tab and line breaks (a carriage return only before a line feed).
_LINE_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_TEXT_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]|\r(?!\n)")


def _no_control(pattern: re.Pattern, what: str):
    def check(value: str) -> str:
        found = pattern.search(value)
        if found:
            raise ValueError(f"{shown(value)} holds the control character {found.group()!r} at "
                             f"position {found.start()}; {what}")
        return value
    return AfterValidator(check)


def _number_input(value):
    """Refuse what pydantic would quietly turn into a number, or what is no number at all."""
    if isinstance(value, bool):
        raise ValueError(f"{value} is not a number (YAML reads yes/no/on/off/true/false as "
                         "true/false); write the number")
    if isinstance(value, str) and len(value) > MAX_NUMBER_CHARS:
        raise ValueError(f"{shown(value)} is not a number ({len(value):,} characters; a number "
                         f"has at most {MAX_NUMBER_CHARS}, MAX_NUMBER_CHARS)")
    number = value
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            return value  # pydantic names the problem
    if isinstance(number, float) and not math.isfinite(number):
        raise ValueError(f"{shown(value)} is not a finite number; numbers must be finite "
                         "(leave the field out when the value is missing)")
    return value


_NUMBER = BeforeValidator(_number_input)
_ONE_LINE = _no_control(_LINE_CONTROL, "one-line fields allow no control characters")
_FREE_TEXT = _no_control(_TEXT_CONTROL, "text may hold tabs and line breaks but no other "
                                        "control characters (e.g. terminal escapes)")

Line = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_LINE_CHARS),
                 _ONE_LINE]
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_TEXT_CHARS),
                 _FREE_TEXT]
Term = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_ID_CHARS),
                 _ONE_LINE]
Id = Annotated[str, StringConstraints(strip_whitespace=True, pattern=ID_PATTERN, max_length=MAX_ID_CHARS)]
EffectId = Annotated[str, StringConstraints(strip_whitespace=True, pattern=ID_PATTERN,
                                            max_length=MAX_EFFECT_ID_CHARS)]
Key = Annotated[str, StringConstraints(strip_whitespace=True, pattern=KEY_PATTERN, max_length=MAX_ID_CHARS)]
Doi = Annotated[str, StringConstraints(strip_whitespace=True, pattern=DOI_PATTERN, max_length=MAX_ID_CHARS)]
Url = Annotated[str, StringConstraints(strip_whitespace=True, pattern=URL_PATTERN, max_length=MAX_LINE_CHARS)]


def _real(**bounds):
    return Annotated[float, Field(allow_inf_nan=False, **bounds), _NUMBER]


def _whole(**bounds):
    return Annotated[int, Field(**bounds), _NUMBER]


Depth = _real(ge=-100, le=2000)
Count = _whole(ge=1, le=1_000_000)
NonNegative = _real(ge=0)
Finite = _real()
Warming = _real(gt=0, le=25)
Duration = _real(gt=0, le=1000)

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
    first_author: Line | None = None
    year: _whole(ge=1500, le=2100) | None = None
    journal: Line | None = None
    volume: Line | None = None
    number: Line | None = None
    pages: Line | None = None
    publisher: Line | None = None
    url: Url | None = None
    doi: Doi | None = None
    verification: Literal["full", "partial", "none"] | None = None
    verified_from: Text | None = None
    unverified_fields: Line | None = None
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
    study_type: Term | None = None
    biome: Term | None = None
    ecosystem: Term | None = None
    site: Line | None = None
    country: Line | None = None
    lat: _real(ge=-90, le=90) | None = None
    lon: _real(ge=-180, le=180) | None = None
    elevation_m: _real(ge=-500, le=9000) | None = None
    mat_c: _real(ge=-40, le=40) | None = None
    map_mm: _real(ge=0, le=15000) | None = None
    depth_top_cm: Depth | None = None
    depth_bottom_cm: Depth | None = None
    depth_class: Term | None = None
    warming_method: Term | None = None
    warming_c: Warming | None = None
    warming_medium: Literal["air", "soil", "air_and_soil"] | None = None
    duration_years: Duration | None = None
    start_year: _whole(ge=1800, le=2100) | None = None
    soc_direction: Term
    respiration_direction: Term | None = None
    mechanisms: Annotated[list[Term], Field(max_length=MAX_LIST_ITEMS)] = []
    summary: Text | None = None
    evidence_quote: Text | None = None
    quote_location: Line | None = None
    origin: Line | None = None
    curator: Line | None = None
    added_at: Line | None = None
    notes: Text | None = None
    # a site descriptor: the site's SOC stock (g C m-2) down to site_soc_depth_cm — a
    # covariate, never a response (it is the same on warmed and control records)
    site_soc_stock_g_m2: _real(ge=0, le=1_000_000) | None = None
    site_soc_depth_cm: _real(gt=0, le=2000) | None = None
    # a global warming level of a model or scenario study (°C above pre-industrial), not an
    # experiment's warming increment
    warming_level_c: _real(gt=0, le=10) | None = None

    @model_validator(mode="after")
    def _depth_order(self):
        _check_depths(self.depth_top_cm, self.depth_bottom_cm)
        return self


class EffectRecord(_Record):
    id: EffectId | None = None
    study_id: Id
    response: Term
    period: Line | None = None
    depth_top_cm: Depth | None = None
    depth_bottom_cm: Depth | None = None
    warming_c: Warming | None = None
    duration_years: Duration | None = None
    other_factors: Line | None = None
    mean_t: Finite | None = None
    sd_t: NonNegative | None = None
    n_t: Count | None = None
    mean_c: Finite | None = None
    sd_c: NonNegative | None = None
    n_c: Count | None = None
    units: Line | None = None
    measure: Literal["ROM", "SMD", "MD"] | None = None
    yi: Finite | None = None
    vi: _real(gt=0) | None = None
    direction: Term | None = None
    variance_note: Text | None = None
    source_location: Text | None = None
    quality_flag: Line | None = None
    notes: Text | None = None

    @model_validator(mode="after")
    def _consistent(self):
        _check_depths(self.depth_top_cm, self.depth_bottom_cm)
        _check_effect_numbers(self)
        return self


class ClaimRecord(_Record):
    id: Id
    text: Text
    section: Line | None = None
    source_key: Key | None = None
    scope_biome: Term | None = None
    scope_ecosystem: Term | None = None
    scope_mechanism: Term | None = None
    scope_depth_class: Term | None = None
    quote: Text | None = None
    origin: Line | None = None
    notes: Text | None = None
    # the retired ids of claims merged into this one: each keeps naming this claim
    aliases: Annotated[list[Id], Field(max_length=MAX_LIST_ITEMS)] = []

    @model_validator(mode="after")
    def _aliases_are_other_ids(self):
        if self.id in self.aliases:
            raise ValueError(f"aliases: '{self.id}' is the claim's own id; an alias is the "
                             "retired id of a claim merged into this one")
        repeated = next((a for i, a in enumerate(self.aliases) if a in self.aliases[:i]), None)
        if repeated is not None:
            raise ValueError(f"aliases: '{repeated}' is listed twice; each alias once")
        return self


# -- syntheses ----------------------------------------------------------------------------
# A synthesis is a saved query: a response, the study filters of KnowledgeBase.studies, an
# optional group (one facet = one value) and the model. Its result is never stored: it is
# computed on the data of the moment (kb/claims/syntheses.py), so it moves with the data.

#: facets a synthesis may be grouped by (the ``--by`` facets of ``soc-kb synth``)
SYNTHESIS_GROUPS = ("biome", "ecosystem", "mechanism", "depth_class", "warming_bin", "study_type",
                    "evidence_kind")
#: models and, per model, the estimators it accepts (as evidence.synthesis.MODEL_METHODS)
SYNTHESIS_MODELS = ("multilevel", "independent", "robust")
_ESTIMATORS = ("REML", "ML", "DL", "PM", "FE", "HS", "SJ", "HE", "EB")
SYNTHESIS_METHODS = {"multilevel": ("REML", "ML"), "independent": _ESTIMATORS, "robust": _ESTIMATORS}
#: study filters a synthesis may save: those of KnowledgeBase.studies, less ``response``
#: (the synthesis's own field) — by kind of value
LIST_FILTERS = ("biome", "ecosystem", "mechanism", "depth_class", "direction",
                "respiration_direction", "study_type", "source_key", "origin", "study_id")
RANGE_FILTER_NAMES = ("depth_range", "warming", "year", "duration")
SYNTHESIS_FILTERS = (*LIST_FILTERS, *RANGE_FILTER_NAMES, "text", "include_missing")


def canonical_filters(value) -> str | None:
    """Saved filters as one canonical JSON text (sorted keys, lists, ranges as [low, high]),
    or None for no filter; given as a mapping (YAML, JSON) or as JSON text (a CSV cell, a
    stored row). Field-level checks only: vocabularies and empty ranges are checked
    against the store (kb.batch)."""
    if isinstance(value, str):
        value = _filters_from_text(value)
    if not isinstance(value, dict):
        raise ValueError(f"{shown(value)} is not a mapping of study filters; write e.g. "
                         "{origin: [srdb], ecosystem: [forest]}")
    clean = {}
    for name, given in value.items():
        if name not in SYNTHESIS_FILTERS:
            hint = difflib.get_close_matches(str(name), SYNTHESIS_FILTERS, n=1)
            own = "; response is the synthesis's own field" if name == "response" else ""
            raise ValueError(f"{shown(name)} is not a study filter{own}; "
                             + (f"did you mean '{hint[0]}'?" if hint else
                                "filters are " + ", ".join(SYNTHESIS_FILTERS)))
        if given is None or given == [] or given == "":
            continue
        clean[name] = _filter_value(name, given)
    return json.dumps(clean, sort_keys=True, ensure_ascii=False) if clean else None


def _filters_from_text(text: str):
    if len(text) > MAX_TEXT_CHARS:
        raise ValueError(f"too long ({len(text):,} characters); at most {MAX_TEXT_CHARS:,} "
                         "(MAX_TEXT_CHARS)")
    try:
        return json.loads(text, parse_constant=_no_json_constant)
    except (json.JSONDecodeError, ValueError):
        raise ValueError(f"{shown(text)} is not JSON filters; write e.g. "
                         '{"origin": ["srdb"]}') from None


def _no_json_constant(name):
    raise ValueError(f"{name} is not a number")


def _filter_value(name: str, given):
    if name == "include_missing":
        if not isinstance(given, bool):
            raise ValueError(f"include_missing: {shown(given)} must be true or false")
        return given
    if name == "text":
        if not isinstance(given, str) or len(given) > MAX_LINE_CHARS or _LINE_CONTROL.search(given):
            raise ValueError(f"text: {shown(given)} must be one line of search words")
        return given
    if name in RANGE_FILTER_NAMES:
        return _range_value(name, given)
    values = [v.strip() for v in given.split(",")] if isinstance(given, str) else given
    if (not isinstance(values, list) or len(values) > MAX_LIST_ITEMS
            or not all(isinstance(v, str) and v and len(v) <= MAX_ID_CHARS
                       and not _LINE_CONTROL.search(v) for v in values)):
        raise ValueError(f"{name}: {shown(given)} must be a term or a list of at most "
                         f"{MAX_LIST_ITEMS} terms (MAX_LIST_ITEMS)")
    return list(dict.fromkeys(values))


def _range_value(name: str, given) -> list:
    if isinstance(given, str):
        low, sep, high = given.partition(":")
        given = [low.strip() or None, high.strip() or None] if sep else [given, given]
    if not isinstance(given, list) or len(given) != 2:
        raise ValueError(f"{name}: {shown(given)} is not a range; write [LOW, HIGH] or "
                         "'LOW:HIGH' (null or an empty side for an open end)")
    bounds = []
    for end in given:
        try:
            number = None if end is None else float(_number_input(end))
        except (TypeError, ValueError):
            raise ValueError(f"{name}: {shown(end)} is not a number; write [LOW, HIGH] with "
                             "numbers or null") from None
        if number is not None and not math.isfinite(number):
            raise ValueError(f"{name}: {shown(end)} is not a finite number")
        bounds.append(number)
    if bounds[0] is not None and bounds[1] is not None and bounds[0] > bounds[1]:
        raise ValueError(f"{name}: range {bounds[0]:g}:{bounds[1]:g} is empty; LOW ≤ HIGH")
    return bounds


Filters = Annotated[str | None, BeforeValidator(canonical_filters)]


class SynthesisRecord(_Record):
    id: Id
    title: Line
    response: Term
    filters: Filters = None
    group_by: Literal[SYNTHESIS_GROUPS] | None = None
    group_value: Term | None = None
    model: Literal[SYNTHESIS_MODELS] = "multilevel"
    method: Literal[_ESTIMATORS] = "REML"
    curator: Line | None = None
    origin: Line | None = None
    notes: Text | None = None

    @model_validator(mode="after")
    def _group_and_method(self):
        if (self.group_by is None) != (self.group_value is None):
            raise ValueError("group_by: a group needs both group_by (a facet) and group_value "
                             "(one of its values), or neither for all rows")
        if self.method not in SYNTHESIS_METHODS[self.model]:
            raise ValueError(f"method: the {self.model} model takes "
                             f"{', '.join(SYNTHESIS_METHODS[self.model])}, not {self.method!r}")
        return self


class SynthesisLinkRecord(_Record):
    id: _whole(ge=1, le=MAX_LINK_ID) | None = None
    claim_id: Id
    synthesis_id: Id
    relation: Literal["supports", "contradicts", "qualifies"]
    expects: Literal["increase", "decrease"] | None = None
    note: Text
    curator: Line | None = None
    origin: Line | None = None

    @model_validator(mode="after")
    def _direction_to_check(self):
        if self.relation != "qualifies" and self.expects is None:
            raise ValueError(f"expects: a '{self.relation}' link says which way the claim "
                             "expects the synthesis's response to go (increase or decrease), "
                             "so the data's sign can be checked; or relation qualifies")
        return self


class ClaimLinkRecord(_Record):
    id: _whole(ge=1, le=MAX_LINK_ID) | None = None
    claim_id: Id
    study_id: Id | None = None
    other_claim_id: Id | None = None
    relation: Term
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
    "syntheses": SynthesisRecord, "synthesis_links": SynthesisLinkRecord,
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
    field, the bad value (shortened) and what is allowed.
    """
    model = MODELS[table]
    try:
        record = model.model_validate(_drop_empty(raw))
    except ValidationError as exc:
        raise _record_error(exc, table, model, raw, label) from None
    return record.model_dump(exclude_none=True)


def _drop_empty(raw: dict) -> dict:
    """``raw`` without missing values (None, blank text). NaN is no missing value: it is refused."""
    if not isinstance(raw, dict):
        raise RecordError(f"a record must be a mapping of field: value, got {type(raw).__name__}")
    return {k: v for k, v in raw.items() if v is not None and not (isinstance(v, str) and not v.strip())}


def _record_error(exc: ValidationError, table, model, raw, label) -> RecordError:
    err = exc.errors(include_url=False)[0]
    field = str(err["loc"][0]) if err["loc"] else ""
    value = raw.get(err["loc"][0]) if err["loc"] and isinstance(raw, dict) else None
    if err["type"] == "extra_forbidden":
        return _unknown_field(field, table, model, label)
    if err["type"] == "missing":
        return RecordError("is required but missing", table=table, record=label, field=field)
    if err["type"] == "value_error":
        message = err["msg"].removeprefix("Value error, ")
        if not err["loc"]:  # a model validator: "field: message"
            field, _, message = message.partition(": ")
            value = raw.get(field)
        return RecordError(message, table=table, record=label, field=field, value=value)
    return RecordError(f"{shown(value)} is invalid: {_plain(err, value)}", table=table,
                       record=label, field=field, value=value)


def _unknown_field(field: str, table: str, model, label) -> RecordError:
    names = list(model.model_fields)
    hint = difflib.get_close_matches(field, names, n=1) if len(field) <= MAX_ID_CHARS else []
    allowed = f"did you mean '{hint[0]}'?" if hint else "allowed fields: " + ", ".join(names)
    return RecordError(f"unknown field {shown(field)}", table=table, record=label, allowed=allowed)


class _Shown(reprlib.Repr):
    def repr_int(self, value, level):
        # repr of a huge int is slow (and refused beyond 4,300 digits): say how big it is
        return repr(value) if abs(value) < 10**30 else f"<an integer of {value.bit_length()} bits>"


_SHOWN = _Shown()
_SHOWN.maxstring = _SHOWN.maxother = MAX_SHOWN_CHARS
_SHOWN.maxlevel, _SHOWN.maxlist, _SHOWN.maxtuple, _SHOWN.maxdict = 2, 4, 4, 4


def shown(value) -> str:
    """A bad value as an error message quotes it: escaped (no control characters reach a
    terminal) and at most about :data:`MAX_SHOWN_CHARS` characters, in time that does not
    grow with the value (it is cut before it is escaped)."""
    if isinstance(value, str):
        text = repr(value[:MAX_SHOWN_CHARS])
        return text if len(value) <= MAX_SHOWN_CHARS else f"{text}... ({len(value):,} characters)"
    if isinstance(value, dict | list | tuple | set):
        return _SHOWN.repr(value)[:4 * MAX_SHOWN_CHARS]
    if isinstance(value, int) and not isinstance(value, bool):
        return _SHOWN.repr_int(value, 0)
    return _SHOWN.repr(value)[:4 * MAX_SHOWN_CHARS]


def _plain(err: dict, value) -> str:
    kind, ctx = err["type"], err.get("ctx", {})
    if kind == "string_pattern_mismatch":
        return {DOI_PATTERN: "a DOI looks like 10.1038/nature20150: '10.', 4 to 9 digits, '/', then "
                             "letters, digits and - . _ ; ( ) / : [ ] + (no https://doi.org/ prefix, "
                             "no spaces, quotes or markup)",
                URL_PATTERN: "a URL starts with http:// or https:// (or doi:10.…) and has no "
                             "spaces, quotes or < >",
                ID_PATTERN: "use letters, digits and _ . : / + - (no spaces), starting with a letter or digit",
                KEY_PATTERN: "a key starts with a letter and has no spaces"}.get(ctx.get("pattern"), err["msg"])
    if kind in ("string_too_long", "too_long"):
        limit = ctx.get("max_length")
        size = f"{len(value):,} " if hasattr(value, "__len__") else ""
        unit = "characters" if kind == "string_too_long" else "items"
        return f"too long ({size}{unit}); at most {limit:,} {unit} ({LIMIT_NAMES.get(limit, 'limit')})"
    if kind == "less_than_equal" and ctx.get("le") == MAX_LINK_ID:
        return f"link ids run from 1 to {MAX_LINK_ID:,} (MAX_LINK_ID); leave id out to get the next free one"
    return re.sub(r"^Input should be", "must be", err["msg"])


def _quoted(ident) -> str:
    return shown(ident) if isinstance(ident, str) else f"'{shown(ident)}'"


def record_label(table: str, index: int, raw, origin: tuple[str, str] | None = None) -> str:
    """Where a record sits: ``studies[3] 'chen2023'`` or ``new.csv: studies line 5 'x'``.

    ``origin`` is (file, position) when the record came from a file.
    """
    pk = {"sources": "key"}.get(table, "id")
    ident = raw.get(pk) if isinstance(raw, dict) else None
    suffix = f" {_quoted(ident)}" if ident is not None and ident != "" else ""
    if origin is None:
        return f"{table}[{index}]{suffix}"
    file, position = origin
    joiner = "" if position.startswith("[") else " "
    return f"{file}: {table}{joiner}{position}{suffix}"

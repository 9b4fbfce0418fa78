"""SRDB-V5 warming contrasts: warmed records paired with their controls, as log response ratios.

Reads ``srdb-data.csv`` (UTF-8) and ``srdb-studies.csv`` (Mac Roman, CR line endings) from
the Global Soil Respiration Database (github.com/bpbond/srdb) and builds sources, studies
and effects. The rules, in the order they apply:

Selection
    A record is a warmed arm when :func:`kb.vocab.treatment_factors` finds the ``warming``
    factor in its ``Manipulation`` (so "Heat Wave", "Hot Drought", "Organic farm" or "Open
    areas" are not). "Ambient [CO2]" is read as *no* CO2 treatment before the factors are
    found. A control is a record whose only factor is ``control`` ("None", "Control",
    "CK", "Conrol"); "Weed control" and "Vegetation control" are treatments, not controls.
Pairing (per response)
    Candidate controls share ``Study_number`` and ``Study_midyear``, carry neither warming
    nor a heat wave, and report the response. A warmed arm with other factors (e.g.
    "Warmed, drought") is paired with the control carrying exactly those other factors
    ("Drought"): a clean warming contrast. Only when no such control exists is it paired
    with the un-manipulated control, and the contrast is flagged ``confounded: <factors>``.
    Several candidates are narrowed, keeping a rule only if it leaves at least one, by:
    same Site_name; same coordinates; same Ecosystem_type; same Species; same Elevation;
    most words shared by Manipulation + Manipulation_level (warming words ignored);
    longest shared Site_ID prefix + suffix (Site_ID = country-site-treatment code).
    Candidates left that report the same value are duplicate entries: the lowest
    Record_number is used. Otherwise the pair is skipped as ambiguous.
Duplicates
    A warmed record marked ``Duplicate_record`` is skipped; a warmed record whose study,
    year, response, other factors and both values equal an earlier one's is skipped too.
Effects
    ROM = ln(warmed / control) of Rs_annual (``soil_respiration``), Rh_annual
    (``heterotrophic_respiration``) and Rs_growingseason (``soil_respiration_rate``,
    period "growing season"). Both values must be > 0.
Variance
    See :data:`VARIANCE_NOTE`. Only Rs_annual has an error column; effects without an
    error on both arms have yi and a direction but no vi (their ``variance_note`` says
    why), and still count in vote counting.
Confounded contrasts
    Stored with ``other_factors`` and ``quality_flag`` starting ``"confounded: "``; a
    synthesis of clean warming effects drops the rows whose quality_flag starts so.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from ..bib import record_bibtex
from ..errors import FileFormatError
from ..records import DOI_PATTERN
from ..vocab import lookup, treatment_factors
from . import Imported, read_csv

DATA_FILE = "srdb-data.csv"
STUDIES_FILE = "srdb-studies.csv"
DATA_COMMIT = "35a61e1"  # ../shared/data/srdb/README.md
STUDIES_COMMIT = "9d67250"

NUMERIC = ("Record_number", "Study_number", "Study_midyear", "Latitude", "Longitude",
           "Elevation", "MAT", "MAP", "Rs_annual", "Rs_annual_err", "Rh_annual",
           "Rs_growingseason")
REQUIRED = ("Record_number", "Study_number", "Study_midyear", "Manipulation",
            "Manipulation_level", "Site_name", "Site_ID", "Biome", "Ecosystem_type", "Species",
            "Quality_flag", "Duplicate_record", "Country", "Meas_method", *NUMERIC)

STUDY_COLUMNS = ("Study_number", "Authors", "Title", "Source", "Volume", "Issue", "BP", "EP",
                 "PubYear", "DOI")

#: SRDB column -> (our response, period, units, error column or None)
RESPONSES = {
    "Rs_annual": ("soil_respiration", "annual", "g C m-2 yr-1", "Rs_annual_err"),
    "Rh_annual": ("heterotrophic_respiration", "annual", "g C m-2 yr-1", None),
    "Rs_growingseason": ("soil_respiration_rate", "growing season", "umol CO2 m-2 s-1", None),
}

VARIANCE_NOTE = ("vi = (err_t/mean_t)^2 + (err_c/mean_c)^2 treats Rs_annual_err as a standard "
                 "error of each arm's mean (SRDB gives no n and does not say SD or SE); if it "
                 "is an SD, this vi is too large by the factor n (conservative: the effect is "
                 "down-weighted, never over-weighted); assumption, not data")

SKIP_REASONS = {
    "no_control": "no control in the same study and year",
    "no_control_value": "no control reporting this response",
    "ambiguous": "several controls remain after the narrowing rules",
    "not_positive": "a value <= 0 (a log ratio needs positive values)",
    "duplicate": "duplicate of an earlier warmed record",
    "known_duplicate": "warmed record marked Duplicate_record",
}

_WARMING_WORDS = {"warmed", "warming", "warm", "heated", "heating", "increased", "elevated",
                  "temperature", "experimental", "and", "plus", "with", "of", "the", "plot",
                  "+", "-", "c", "°c"}


# -- reading ---------------------------------------------------------------------------------

def read_data(path: Path) -> list[dict]:
    """The rows of srdb-data.csv with numbers parsed; refuses a bad value naming line and column.

    Every row is checked (not only warming rows): a corrupted file is refused as a whole.
    """
    return [_parsed(path, line, raw)
            for line, raw in read_csv(path, REQUIRED, "utf-8", _HINT)]


_HINT = f" (expected the SRDB folder with {DATA_FILE} and {STUDIES_FILE})"


def _parsed(path: Path, line: int, raw: dict) -> dict:
    row = {k: v.strip() for k, v in raw.items()}
    for column in NUMERIC:
        row[column] = _number(path, line, column, row[column])
    # Record_number stays text: a few are decimal ("3905.1") and are cited as written
    row["Record_number"] = raw["Record_number"].strip()
    if not re.fullmatch(r"\d+(\.\d+)?", row["Record_number"]):
        raise FileFormatError(f"{path.name} line {line}, column Record_number: "
                              f"{raw['Record_number']!r} is not a record number")
    if row["Study_number"] is None or row["Study_number"] != int(row["Study_number"]):
        raise FileFormatError(f"{path.name} line {line}, column Study_number: "
                              f"{raw['Study_number']!r} is not a whole number")
    row["Study_number"] = int(row["Study_number"])
    row["line"] = line
    return row


def _number(path: Path, line: int, column: str, text: str) -> float | None:
    if text in ("", "NA"):
        return None
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise FileFormatError(f"{path.name} line {line}, column {column}: {text!r} is not a number")
    return value


def read_studies(path: Path) -> dict[int, dict]:
    """srdb-studies.csv by Study_number (Mac Roman, CR line endings, as the README says)."""
    studies = {}
    for line, raw in read_csv(path, STUDY_COLUMNS, "mac_roman", _HINT):
        number = raw["Study_number"].strip()
        if not number.isdigit():
            raise FileFormatError(f"{path.name} line {line}, column Study_number: "
                                  f"{number!r} is not a whole number")
        year = raw["PubYear"].strip()
        if year and not re.fullmatch(r"\d{4}", year):
            raise FileFormatError(f"{path.name} line {line}, column PubYear: "
                                  f"{year!r} is not a four-digit year")
        studies[int(number)] = {k: v.strip() for k, v in raw.items()}
    return studies


# -- treatment factors and warming magnitude ---------------------------------------------------

# "Weed control" (herbicide/weeding, 27 rows) and "Vegetation control" (8 rows) are
# treatments, although the vocabulary's control pattern matches the word "control".
_NOT_CONTROL = re.compile(r"\b(weed|vegetation)\s+control\b", re.I)


def factors(manipulation: str) -> frozenset[str]:
    """Treatment factors of an SRDB Manipulation.

    "Ambient [CO2]" is not a CO2 treatment; "Weed control" and "Vegetation control" are a
    manipulation (factor ``other``), not an un-manipulated control.
    """
    text = re.sub(r"ambient\s*\[?co2\]?", "", manipulation or "", flags=re.I)
    found = treatment_factors(text if text.strip() else manipulation)
    if _NOT_CONTROL.search(manipulation or ""):
        found = (found - {"control"}) or frozenset({"other"})
    return found


def is_warmed(manipulation: str) -> bool:
    """Whether a record is a warmed arm (warming factor; a heat wave is not warming)."""
    return "warming" in factors(manipulation)


_NUM = r"(\d+(?:\.\d+)?)"
_UNIT = r"(?:\s*(?:°|º|deg(?:rees?)?\.?)\s*(?:C\b|celsius|celcius)|\s*°|\s*C\b)"
_TEMPERATURE = re.compile(rf"([>~<≈]?)\s*\+?\s*{_NUM}(\s*(?:-|–|to)\s*{_NUM})?(?={_UNIT})",
                          re.IGNORECASE)
_UNIT_AFTER = re.compile(_UNIT, re.IGNORECASE)


def parse_warming_c(level: str | None) -> float | None:
    """The warming in °C stated by a Manipulation_level text, or None where it does not say.

    Rules: a number followed by a Celsius unit ("+2.5 C", "2 °C", "5 degC", "2.6 degrees
    Celsius"; "~2 °C" counts as 2). None for: no Celsius unit ("150 W m-2", "1.83",
    "28% Warmer"), a range ("+0.2-2 C"), a bound ("> +2.5C"), or several different
    values ("+5 C day, +2 C night": the mean is not stated). Values outside (0, 25] are None.
    """
    values = set()
    for match in _TEMPERATURE.finditer(level or ""):
        if not _UNIT_AFTER.match(level, match.end()) or _is_lowercase_c(level, match.end()):
            continue
        if match.group(3) or match.group(1) in (">", "<"):
            return None
        values.add(float(match.group(2)))
    if len(values) != 1:
        return None
    value = values.pop()
    return value if 0 < value <= 25 else None


def _is_lowercase_c(text: str, end: int) -> bool:
    """A bare lower-case "c" after a number is not a unit ("5 cm" is caught by \\b already)."""
    rest = text[end:].lstrip()
    return rest[:1] == "c" and not rest.lower().startswith(("celsius", "celcius"))


# -- pairing -----------------------------------------------------------------------------------

@dataclass
class Pair:
    """One warmed–control contrast for one response."""

    warmed: dict
    control: dict
    column: str
    other: frozenset[str]
    confounded: bool
    candidates: int
    duplicates: list[int] = field(default_factory=list)


@dataclass
class Pairing:
    pairs: list[Pair]
    skipped: Counter
    warmed_records: int
    arm_responses: int
    no_response: int


def pair_all(rows: list[dict]) -> Pairing:
    """Pair every warmed record with its control for each response it reports."""
    by_year: dict[tuple, list[dict]] = {}
    for row in rows:
        by_year.setdefault((row["Study_number"], row["Study_midyear"]), []).append(row)
    warmed = [r for r in rows if is_warmed(r["Manipulation"])]
    pairs, skipped, seen, total = [], Counter(), {}, 0
    for row in warmed:
        for column in RESPONSES:
            if row[column] is None:
                continue
            total += 1
            outcome = _pair_one(row, column, by_year[(row["Study_number"], row["Study_midyear"])])
            outcome = _unless_duplicate(outcome, seen)
            if isinstance(outcome, Pair):
                pairs.append(outcome)
            else:
                skipped[outcome] += 1
    no_response = sum(1 for r in warmed if all(r[c] is None for c in RESPONSES))
    return Pairing(pairs, skipped, len(warmed), total, no_response)


def _pair_one(row: dict, column: str, same_year: list[dict]) -> Pair | str:
    if row["Duplicate_record"]:
        return "known_duplicate"
    other = factors(row["Manipulation"]) - {"warming"}
    controls = [c for c in same_year if not factors(c["Manipulation"]) & {"warming", "heat_wave"}]
    clean = [c for c in controls if factors(c["Manipulation"]) == (other or {"control"})]
    plain = [c for c in controls if factors(c["Manipulation"]) == {"control"}]
    chosen = clean or plain
    if not chosen:
        return "no_control"
    found = _narrowed(row, chosen, column)
    if isinstance(found, str):
        return found
    control, duplicates = found
    if row[column] <= 0 or control[column] <= 0:
        return "not_positive"
    return Pair(row, control, column, other, confounded=bool(other) and not clean,
                candidates=len(chosen), duplicates=duplicates)


def _narrowed(row: dict, candidates: list[dict], column: str):
    """(control, duplicate record numbers) after the narrowing rules, or a skip reason.

    The rules narrow on the records' description only. What is left must be one treatment
    (same Manipulation and level): several *different* treatments are ambiguous even if
    only one of them happens to report the response. Entries of that one treatment that
    report the response must agree on its value (repeated entries of the same arm).
    """
    for rule in _RULES:
        if len(candidates) == 1:
            break
        scores = [rule(row, c) for c in candidates]
        candidates = [c for c, s in zip(candidates, scores, strict=True) if s == max(scores)]
    if len({(c["Manipulation"], c["Manipulation_level"]) for c in candidates}) > 1:
        return "ambiguous"
    candidates = [c for c in candidates if c[column] is not None]
    if not candidates:
        return "no_control_value"
    if len({c[column] for c in candidates}) > 1:
        return "ambiguous"
    candidates = sorted(candidates, key=lambda c: float(c["Record_number"]))
    return candidates[0], [c["Record_number"] for c in candidates[1:]]


def _same(column: str):
    return lambda row, c: int(c[column] == row[column])


def _words(row: dict) -> set[str]:
    text = f"{row['Manipulation']} {row['Manipulation_level']}".lower()
    return set(re.findall(r"[a-z0-9%.+-]+", text)) - _WARMING_WORDS


def _shared_words(row: dict, c: dict) -> int:
    return len(_words(row) & _words(c))


def _site_id_score(row: dict, c: dict) -> int:
    """Shared prefix + suffix of the Site_IDs (e.g. CN-QH-DRYHEAT ~ CN-QH-DRYCK)."""
    a, b = row["Site_ID"].upper(), c["Site_ID"].upper()
    if not a or not b:
        return 0
    prefix = len(_common_prefix(a, b))
    suffix = len(_common_prefix(a[prefix:][::-1], b[prefix:][::-1]))
    return prefix + suffix


def _common_prefix(a: str, b: str) -> str:
    size = 0
    while size < min(len(a), len(b)) and a[size] == b[size]:
        size += 1
    return a[:size]


_RULES = (_same("Site_name"), lambda r, c: int((c["Latitude"], c["Longitude"]) ==
                                              (r["Latitude"], r["Longitude"])),
          _same("Ecosystem_type"), _same("Species"), _same("Elevation"), _shared_words,
          _site_id_score)


def _unless_duplicate(outcome, seen: dict):
    """Skip a warmed record that repeats an earlier one (same study, year, values, factors)."""
    if not isinstance(outcome, Pair):
        return outcome
    w, c = outcome.warmed, outcome.control
    key = (w["Study_number"], w["Study_midyear"], outcome.column, w["Manipulation"],
           w["Manipulation_level"], w[outcome.column], c[outcome.column])
    if key in seen:
        return "duplicate"
    seen[key] = w["Record_number"]
    return outcome


# -- records -----------------------------------------------------------------------------------

def source_record(number: int, study: dict, doi_owner) -> tuple[dict | None, str | None]:
    """(new source or None, source key) for an SRDB study; only fields the studies file has.

    A DOI that already belongs to a stored source (``doi_owner(doi)`` gives its key) is
    not entered twice: the study points at that source instead.
    """
    doi = _doi(study.get("DOI", ""))
    owner = doi_owner(doi) if doi else None
    if owner and owner != f"srdb{number}":  # our own key from an earlier run is no clash
        return None, owner
    record = {"key": f"srdb{number}", "entry_type": "article", "title": study.get("Title"),
              "authors": _authors(study.get("Authors", "")), "year": _year(study.get("PubYear")),
              "journal": study.get("Source"), "volume": study.get("Volume"),
              "number": study.get("Issue"), "pages": _pages(study), "doi": doi}
    record = {k: v for k, v in record.items() if v not in (None, "")}
    missing = [f for f in ("title", "year") if f not in record]
    note = (f"From SRDB's studies table (srdb-studies.csv @{STUDIES_COMMIT}, Study_number "
            f"{number}); fields as entered there, not checked against the publisher.")
    if missing:
        record |= {"verification": "partial", "unverified_fields": ", ".join(missing)}
    record["note"] = note
    record_bibtex(record)  # refuse here what pybtex cannot write; the store builds the entry
    return record, record["key"]


def _doi(text: str) -> str | None:
    doi = re.sub(r"^(https?://(dx\.)?doi\.org/|doi:\s*)", "", text.strip(), flags=re.I)
    return doi if re.match(DOI_PATTERN, doi) else None


def _authors(text: str) -> str | None:
    """"Harley, JL; Brierley, JK" -> "Harley, JL and Brierley, JK" (BibTeX name list)."""
    names = [n.strip() for n in text.split(";") if n.strip()]
    return " and ".join(names) or None


def _year(text: str | None) -> int | None:
    return int(text) if text and re.fullmatch(r"\d{4}", text) else None


def _pages(study: dict) -> str | None:
    first, last = study.get("BP", ""), study.get("EP", "")
    if first and last:
        return f"{first}--{last}"
    return first or None


_METHODS = ((r"open[- ]?top|\botc\b", "open_top_chamber"), (r"infrared", "infrared_heater"),
            (r"cable|heating wire", "heating_cable"), (r"greenhouse", "greenhouse"))
# Manipulation_level texts that name only where the heat goes (4, 2 and 2 warmed records)
_MEDIA = {"air": "air", "soil": "soil", "air, soil": "air_and_soil"}
_CODES = {"Rs_annual": "rs", "Rh_annual": "rh", "Rs_growingseason": "rsgs"}


def import_srdb(directory: str | Path, doi_owner=lambda doi: None) -> Imported:
    """Sources, studies and effects from an SRDB folder, with a summary that adds up.

    ``doi_owner(doi)`` names the stored source that already has a DOI (or None).
    """
    return build(read(directory), doi_owner)


def read(directory: str | Path) -> tuple[list[dict], dict[int, dict]]:
    """The checked rows of both files (all reading, so a bad file fails before any writing)."""
    directory = Path(directory)
    return read_data(directory / DATA_FILE), read_studies(directory / STUDIES_FILE)


def build(raw: tuple[list[dict], dict[int, dict]], doi_owner=lambda doi: None) -> Imported:
    """The records and summary from what :func:`read` returned."""
    rows, studies = raw
    pairing = pair_all(rows)
    groups = _study_groups(pairing.pairs)
    sources, keys = _sources(groups, studies, doi_owner)
    study_records, effect_records = [], []
    for (number, _site), (study_id, pairs) in sorted(groups.items(), key=lambda i: _id_order(i[1][0])):
        effects = [effect_record(study_id, p) for p in pairs]
        study_records.append(study_record(study_id, number, pairs, effects, keys.get(number)))
        effect_records.extend(effects)
    records = {"sources": sources, "studies": study_records, "effects": effect_records}
    return Imported(records, _summary(rows, pairing, records))


def _id_order(study_id: str) -> tuple[int, int]:
    number, _, site = study_id.removeprefix("srdb").partition("-")
    return int(number), int(site)


def _site_key(row: dict) -> tuple:
    ecosystem = lookup("ecosystems", row["Ecosystem_type"]) or row["Ecosystem_type"]
    return (row["Site_name"], row["Latitude"] or 0.0, row["Longitude"] or 0.0, ecosystem)


def _study_groups(pairs: list[Pair]) -> dict[tuple, tuple[str, list[Pair]]]:
    """One study per SRDB study and site (site name, coordinates, ecosystem): srdb<N>-<k>."""
    keys = sorted({(p.warmed["Study_number"], _site_key(p.warmed)) for p in pairs},
                  key=lambda k: (k[0], tuple(str(x) for x in k[1])))
    ids, counter = {}, Counter()
    for number, site in keys:
        counter[number] += 1
        ids[(number, site)] = f"srdb{number}-{counter[number]}"
    groups: dict[tuple, tuple[str, list[Pair]]] = {}
    order = {"Rs_annual": 0, "Rh_annual": 1, "Rs_growingseason": 2}
    for p in sorted(pairs, key=lambda p: (float(p.warmed["Record_number"]), order[p.column])):
        key = (p.warmed["Study_number"], _site_key(p.warmed))
        groups.setdefault(key, (ids[key], []))[1].append(p)
    return groups


def _sources(groups, studies: dict[int, dict], doi_owner) -> tuple[list[dict], dict[int, str]]:
    records, keys, claimed = [], {}, {}
    for number in sorted({number for number, _ in groups}):
        if number not in studies:
            continue  # 215 newer Study_numbers are not in the 2021 studies file
        record, key = source_record(number, studies[number],
                                    lambda doi: doi_owner(doi) or claimed.get(doi.lower()))
        keys[number] = key
        if record:
            records.append(record)
            if record.get("doi"):
                claimed[record["doi"].lower()] = key
    return records, keys


def effect_record(study_id: str, pair: Pair) -> dict:
    """One ROM effect whose source_location names both SRDB records."""
    w, c, column = pair.warmed, pair.control, pair.column
    response, period, units, err_column = RESPONSES[column]
    yi = math.log(w[column] / c[column])
    vi = _vi(w, c, column, err_column)
    return {
        "id": f"{study_id}/{w['Record_number']}-{_CODES[column]}",
        "study_id": study_id, "response": response, "period": period,
        "warming_c": parse_warming_c(w["Manipulation_level"]),
        "other_factors": ", ".join(sorted(pair.other)) or None,
        "mean_t": w[column], "mean_c": c[column], "units": units, "measure": "ROM",
        "yi": round(yi, 6), "vi": vi, "direction": _direction(yi),
        "variance_note": VARIANCE_NOTE if vi is not None else _no_variance(w, c, column, err_column),
        "source_location": (f"SRDB-V5 records {w['Record_number']} (warmed) vs "
                            f"{c['Record_number']} (control), column {column}, "
                            f"{DATA_FILE} @{DATA_COMMIT}"),
        "quality_flag": _quality_flag(pair),
        "notes": _effect_notes(pair, err_column),
    }


def _vi(w: dict, c: dict, column: str, err_column: str | None) -> float | None:
    """The stated variance rule (VARIANCE_NOTE); None without a positive error on both arms."""
    if err_column is None or not (w[err_column] or 0) > 0 or not (c[err_column] or 0) > 0:
        return None
    vi = (w[err_column] / w[column]) ** 2 + (c[err_column] / c[column]) ** 2
    return float(f"{vi:.6g}")


def _no_variance(w: dict, c: dict, column: str, err_column: str | None) -> str:
    """Why an effect has no vi: it is then a vote (direction) only."""
    if err_column is None:
        why = f"SRDB has no error column for {column}"
    else:
        arms = [name for name, row in (("warmed", w), ("control", c))
                if not (row[err_column] or 0) > 0]
        why = f"{err_column} is empty or 0 for the {' and '.join(arms)} arm"
    return (f"no vi: {why}, and no variance is assumed without one. yi and direction "
            "only: counts in vote counting, not in pooling.")


def _direction(yi: float) -> str:
    return "increase" if yi > 0 else "decrease" if yi < 0 else "no_change"


def _quality_flag(pair: Pair) -> str | None:
    parts = []
    if pair.confounded:
        parts.append("confounded: " + ", ".join(sorted(pair.other)))
    flags = [pair.warmed["Quality_flag"], pair.control["Quality_flag"]]
    if any(f not in ("", "Q0") for f in flags):
        parts.append(f"SRDB Quality_flag {flags[0] or '-'} (warmed), {flags[1] or '-'} (control)")
    return "; ".join(parts) or None


def _effect_notes(pair: Pair, err_column: str | None) -> str:
    w, c = pair.warmed, pair.control
    text = (f"SRDB study {w['Study_number']}, Study_midyear {w['Study_midyear']:g}. "
            f"Warmed: Manipulation '{w['Manipulation']}'"
            + (f", level '{w['Manipulation_level']}'" if w["Manipulation_level"] else "")
            + f". Control: Manipulation '{c['Manipulation']}'"
            + (f", level '{c['Manipulation_level']}'" if c["Manipulation_level"] else "")
            + f"; chosen from {pair.candidates} candidate control(s).")
    if pair.confounded:
        text += " No control with the same other factors exists: warming is confounded with them."
    if pair.duplicates:
        text += f" Same value also in control record(s) {', '.join(map(str, pair.duplicates))} (duplicates)."
    if err_column and (w[err_column] is not None or c[err_column] is not None):
        text += f" {err_column}: warmed {_g(w[err_column])}, control {_g(c[err_column])}."
    return text


def _g(value) -> str:
    return "-" if value is None else f"{value:g}"


def study_record(study_id: str, number: int, pairs: list[Pair], effects: list[dict],
                 source_key: str | None) -> dict:
    """The study of one SRDB study and site; values only where all its records agree."""
    rows = [p.warmed for p in pairs] + [p.control for p in pairs]
    first = pairs[0].warmed
    # a study-level value would fill its effects' gaps in queries: only if none is missing
    warming = _all_agree([e["warming_c"] for e in effects])
    return {
        "id": study_id, "source_key": source_key, "study_type": "field_experiment",
        "biome": _term("biomes", [p.warmed["Biome"] for p in pairs]),
        "ecosystem": _term("ecosystems", [p.warmed["Ecosystem_type"] for p in pairs]),
        "site": first["Site_name"] or None, "country": _agreed(r["Country"] for r in rows),
        "lat": _agreed(r["Latitude"] for r in rows), "lon": _agreed(r["Longitude"] for r in rows),
        "elevation_m": _agreed(r["Elevation"] for r in rows),
        "mat_c": _agreed(r["MAT"] for r in rows), "map_mm": _agreed(r["MAP"] for r in rows),
        "warming_method": _agreed(_method(p.warmed) for p in pairs) or "not_reported",
        "warming_medium": _all_agree([_MEDIA.get(p.warmed["Manipulation_level"].lower())
                                      for p in pairs]),
        "warming_c": warming, "soc_direction": "not_reported",
        "respiration_direction": _overall(e["direction"] for e in effects),
        "summary": _study_summary(number, first, pairs),
        "origin": "srdb", "curator": "soc-kb import-srdb",
        "notes": _study_notes(number, rows, source_key),
    }


def _all_agree(values: list):
    """The one value every record gives; None if any record lacks it or they differ."""
    return _agreed(values) if None not in values else None


def _agreed(values):
    """The one value all records give (empty ones ignored), else None: never a guess."""
    found = {v for v in values if v not in (None, "")}
    return found.pop() if len(found) == 1 else None


def _term(vocabulary: str, labels: list[str]) -> str | None:
    """The vocabulary term of the warmed arms' labels (vocab.lookup); not_reported if unmapped."""
    labels = [label for label in labels if label]
    if not labels:
        return None
    return _agreed(lookup(vocabulary, label) or "not_reported" for label in labels)


def _method(row: dict) -> str | None:
    text = f"{row['Manipulation']} {row['Manipulation_level']}"
    return next((name for pattern, name in _METHODS if re.search(pattern, text, re.I)), None)


def _overall(directions) -> str:
    found = set(directions)
    return found.pop() if len(found) == 1 else "mixed"


def _study_summary(number: int, first: dict, pairs: list[Pair]) -> str:
    years = sorted({p.warmed["Study_midyear"] for p in pairs})
    span = f"{years[0]:g}" if len(years) == 1 else f"{years[0]:g}–{years[-1]:g}"
    counts = Counter(RESPONSES[p.column][0] for p in pairs)
    listed = ", ".join(f"{n} {r}" for r, n in sorted(counts.items()))
    site = first["Site_name"] or "an unnamed site"
    return (f"SRDB-V5 warming contrasts of study {number} at {site} "
            f"(Study_midyear {span}): {listed}.")


def _study_notes(number: int, rows: list[dict], source_key: str | None) -> str:
    biomes = sorted({r["Biome"] for r in rows})
    ecosystems = sorted({r["Ecosystem_type"] for r in rows})
    text = (f"Imported from SRDB-V5 ({DATA_FILE} @{DATA_COMMIT}), Study_number {number}; "
            f"SRDB Biome {', '.join(map(repr, biomes))}, Ecosystem_type "
            f"{', '.join(map(repr, ecosystems))}.")
    methods = sorted({r["Meas_method"] for r in rows if r["Meas_method"]})
    if methods:
        text += f" Respiration measured by (Meas_method) {', '.join(methods)}."
    if source_key is None:
        text += f" Study_number {number} is not in {STUDIES_FILE} @{STUDIES_COMMIT}: no source."
    return text


def _summary(rows: list[dict], pairing: Pairing, records: dict) -> list[tuple[str, int]]:
    kinds = Counter(_kind(r["Manipulation"]) for r in rows)
    effects = records["effects"]
    lines = [("records read", len(rows)),
             ("  warmed arms (warming factor)", kinds["warmed"]),
             ("  heat-wave records (not warming)", kinds["heat_wave"]),
             ("  controls (no manipulation)", kinds["control"]),
             ("  other manipulations", kinds["other"]),
             ("warmed arms reporting none of Rs_annual, Rh_annual, Rs_growingseason",
              pairing.no_response),
             ("warmed arm x response values (Rs_annual, Rh_annual, Rs_growingseason)",
              pairing.arm_responses),
             ("  pairs made (effects)", len(pairing.pairs))]
    lines += [(f"  skipped: {text}", pairing.skipped[key]) for key, text in SKIP_REASONS.items()]
    lines += [("warmed records paired at least once", len({p.warmed["Record_number"] for p in pairing.pairs})),
              ("single-factor warming contrasts", sum(1 for e in effects if "other_factors" not in e or not e["other_factors"])),
              ("multi-factor contrasts against the matching other-factor control",
               sum(1 for p in pairing.pairs if p.other and not p.confounded)),
              ("confounded multi-factor contrasts", sum(1 for p in pairing.pairs if p.confounded)),
              ("effects with a variance (vi)", sum(1 for e in effects if e["vi"] is not None)),
              ("SRDB studies", len({s["id"].split("-")[0] for s in records["studies"]})),
              ("studies (study x site)", len(records["studies"])),
              ("sources", len(records["sources"]))]
    return lines


def _kind(manipulation: str) -> str:
    found = factors(manipulation)
    if "warming" in found:
        return "warmed"
    if "heat_wave" in found:
        return "heat_wave"
    return "control" if found == {"control"} else "other"


SEED_HEADER = f"""\
SRDB-V5 warming contrasts, generated by `soc-kb import-srdb ../shared/data/srdb --write-seed
kb/seed/srdb_warming.yaml` from srdb-data.csv @{DATA_COMMIT} and srdb-studies.csv @{STUDIES_COMMIT}.
Do not edit by hand: change kb/importers/srdb.py and regenerate (tests check byte equality).
Pairing and variance rules: kb/importers/srdb.py docstring and docs/importers.md.
"""

"""SRDB-V5 warming contrasts: warmed records paired with their controls, as log response ratios.

Reads ``srdb-data.csv`` (UTF-8), ``srdb-equations.csv`` (UTF-8, the temperature-response
fits joined on ``Record_number``) and ``srdb-studies.csv`` (Mac Roman, CR line endings)
from the Global Soil Respiration Database (github.com/bpbond/srdb) and builds sources,
studies and effects. The rules, in the order they apply:

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
    ("Drought"): a clean warming contrast. For this match a precipitation change whose
    text says more water ("23% more Precipitation") is water addition, the same factor as
    irrigation or "wetted". Only when no such control exists is the arm paired with the
    un-manipulated control, and the contrast is flagged ``confounded: <factors>``.
    Several candidates are narrowed, keeping a rule only if it leaves at least one, by:
    same Site_name; same coordinates; same Ecosystem_type; same Species; same Elevation;
    most words shared by Manipulation + Manipulation_level (warming words ignored);
    longest shared Site_ID prefix + suffix (Site_ID = country-site-treatment code).
    Candidates left that report the same value are duplicate entries: the lowest
    Record_number is used. Otherwise the pair is skipped as ambiguous.
Fitted temperature responses (Q10, R10)
    From ``srdb-equations.csv``. A control qualifies only with the same ``Model_type``,
    fitted temperature range (``Model_temp_min``/``Model_temp_max``) and temperature depth
    (``T_depth``); a Q10 is compared over the same range column. One Q10 per record: the
    first range both arms give in the order 5-15, 0-20, 0-10, 10-20 °C, other1, other2
    (an exponential model repeats one Q10 in every range; other models do not, and the
    notes list every range). Warmed and control records carrying one identical fitted curve
    (every field equal but Model_N and Model_R2) are one fit entered twice, a site value; a
    pair repeating an earlier year's curves on both arms is the same estimate entered for
    each year. Both are skipped.
Site values are not responses
    A column with the same value on every record of a study that reports it, warmed and
    control alike (C_soilmineral 12000 on all twelve records of study 6502, RC_annual 0.375
    on all of study 5114), describes the site: an lnRR of 0 made from it would be invented
    evidence, so such pairs are skipped. Rh or Ra computed from Rs with such a fixed root
    contribution repeat Rs's ratio and are skipped too, as are Rh/Ra/RC pairs whose arm
    has Rh equal to Ra with Rh + Ra off Rs by more than 10% (a value copied into the other
    column). ``C_soilmineral``/``C_soildepth`` are never effects: where the warmed and
    control records of a study site agree they are its ``site_soc_stock_g_m2`` and
    ``site_soc_depth_cm`` (a covariate for moderator analysis); where they differ, the
    study's notes say so.
Duplicates
    A warmed record marked ``Duplicate_record`` is skipped; so is a warmed record whose
    study, site, response, manipulation and both values equal an earlier one's with a
    ``Study_midyear`` at most half a year away (study 13671 was entered twice, 2014 and
    2014.5). The kept effect names the skipped copies.
Effects
    ROM = ln(warmed / control) of Rs_annual (``soil_respiration``), Rh_annual
    (``heterotrophic_respiration``), Rs_growingseason (``soil_respiration_rate``, period
    "growing season"), Ra_annual (``autotrophic_respiration``), RC_annual
    (``root_contribution``, a fraction), Q10 (``q10``) and R10 (``r10``, µmol m-2 s-1 as
    the codebook says). Both values must be > 0.
Variance
    See :data:`VARIANCE_NOTE`. Only Rs_annual has an error column; effects without an
    error on both arms have yi and a direction but no vi (their ``variance_note`` says
    why), and still count in vote counting.
Confounded contrasts
    Stored with ``other_factors`` and ``quality_flag`` starting ``"confounded: "``; a
    synthesis of clean warming effects drops the rows whose quality_flag starts so.
Study fields
    Values only where all the study's records agree. A value outside :data:`PLAUSIBLE`
    (Elevation 7556 m at Gongga, study 12210) is left empty and the notes say what SRDB
    gives and why it is not shown. SRDB's Biome "Tundra" is arctic only at |latitude| >= 60°;
    elsewhere alpine at >= 1500 m, else not_reported (the raw label is in the notes).
    ``warming_medium`` (air, soil, air_and_soil) where Manipulation_level says where the
    increment was applied or measured ("Air, soil", "2 °C in soil temp", "surface air
    temperature").
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
EQUATIONS_FILE = "srdb-equations.csv"
DATA_COMMIT = "35a61e1"  # ../shared/data/srdb/README.md (data and equations files)
STUDIES_COMMIT = "9d67250"

NUMERIC = ("Record_number", "Study_number", "Study_midyear", "Latitude", "Longitude",
           "Elevation", "MAT", "MAP", "Rs_annual", "Rs_annual_err", "Rh_annual",
           "Rs_growingseason", "Ra_annual", "RC_annual", "C_soilmineral", "C_soildepth")
REQUIRED = ("Record_number", "Study_number", "Study_midyear", "Manipulation",
            "Manipulation_level", "Site_name", "Site_ID", "Biome", "Ecosystem_type", "Species",
            "Quality_flag", "Duplicate_record", "Country", "Meas_method", *NUMERIC)

STUDY_COLUMNS = ("Study_number", "Authors", "Title", "Source", "Volume", "Issue", "BP", "EP",
                 "PubYear", "DOI")

EQUATION_TEXT = ("Model_type", "Temp_effect", "Model_output_units", "WC_effect")
EQUATION_NUMERIC = ("Model_temp_min", "Model_temp_max", "Model_N", "Model_R2", "T_depth",
                    "Model_paramA", "Model_paramB", "Model_paramC", "Model_paramD",
                    "Model_paramE", "R10", "Q10_0_10", "Q10_5_15", "Q10_10_20", "Q10_0_20",
                    "Q10_other1", "Q10_other1_temp_min", "Q10_other1_temp_max", "Q10_other2",
                    "Q10_other2_temp_min", "Q10_other2_temp_max")
EQUATION_COLUMNS = ("Record_number", *EQUATION_TEXT, *EQUATION_NUMERIC)

#: SRDB column -> (our response, period, units, error column or None). Q10 and R10 come
#: from srdb-equations.csv; R10 is "RS at 10 C, µmol m-2 s-1" (srdb-equations_fields.txt)
#: whatever the model's output units: study 5305's model is in mg C/m2/hr and its R10,
#: 1.736111, times 43.2 (µmol m-2 s-1 -> mg C m-2 h-1) is exactly 75.
RESPONSES = {
    "Rs_annual": ("soil_respiration", "annual", "g C m-2 yr-1", "Rs_annual_err"),
    "Rh_annual": ("heterotrophic_respiration", "annual", "g C m-2 yr-1", None),
    "Rs_growingseason": ("soil_respiration_rate", "growing season", "umol CO2 m-2 s-1", None),
    "Ra_annual": ("autotrophic_respiration", "annual", "g C m-2 yr-1", None),
    "RC_annual": ("root_contribution", "annual", "fraction", None),
    "Q10": ("q10", None, "dimensionless", None),
    "R10": ("r10", None, "umol CO2 m-2 s-1", None),
}
EQUATION_RESPONSES = ("Q10", "R10")
FLUXES = ("Rs_annual", "Rh_annual", "Rs_growingseason", "Ra_annual")  # respiration_direction
PARTITION = ("Rh_annual", "Ra_annual", "RC_annual")
_CODES = {"Rs_annual": "rs", "Rh_annual": "rh", "Rs_growingseason": "rsgs", "Ra_annual": "ra",
          "RC_annual": "rc", "Q10": "q10", "R10": "r10"}

#: The Q10 range columns in the order one is chosen for a record (5-15 °C first: centred
#: on 10 °C, R10's reference temperature); "other" ranges carry their own limits.
Q10_RANGES = ("Q10_5_15", "Q10_0_20", "Q10_0_10", "Q10_10_20", "Q10_other1", "Q10_other2")
#: What a control's fit must share with the warmed arm's to be compared.
FIT = ("Model_type", "Model_temp_min", "Model_temp_max", "T_depth")

VARIANCE_NOTE = ("vi = (err_t/mean_t)^2 + (err_c/mean_c)^2 treats Rs_annual_err as a standard "
                 "error of each arm's mean (SRDB gives no n and does not say SD or SE); if it "
                 "is an SD, this vi is too large by the factor n (conservative: the effect is "
                 "down-weighted, never over-weighted); assumption, not data")

SKIP_REASONS = {
    "no_control": "no control in the same study and year",
    "no_control_value": "no control reporting this response",
    "different_fit": "no control fitted with the same model, temperature range and depth",
    "ambiguous": "several controls remain after the narrowing rules",
    "not_positive": "a value <= 0 (a log ratio needs positive values)",
    "site_value": "same value on every record of the study (a site value, not a response)",
    "same_fit": "warmed and control carry one identical fit (a site value)",
    "derived": "Rh or Ra computed from Rs with a fixed root contribution",
    "copied_partition": "Rh equal to Ra and Rh + Ra off Rs by > 10% (a copied value)",
    "duplicate": "duplicate of an earlier warmed record",
    "repeated_fit": "the same fits on both arms as an earlier year's pair",
    "known_duplicate": "warmed record marked Duplicate_record",
}

#: Plausible ranges of study fields: (SRDB column, low, high, unit). A value outside is not
#: shown; the study's notes say what SRDB gives. Latitude, longitude, MAT, MAP, C_soilmineral
#: and C_soildepth use the bounds of SRDB's own check (R/srdb_check.R); for Elevation that
#: check allows 0-7999 m, and we take 6000 m as the highest plausible soil-respiration plot
#: (a judgement, not data) and -500 m as below any land surface.
PLAUSIBLE = {
    "lat": ("Latitude", -90.0, 90.0, "°"),
    "lon": ("Longitude", -180.0, 180.0, "°"),
    "elevation_m": ("Elevation", -500.0, 6000.0, "m"),
    "mat_c": ("MAT", -30.0, 40.0, "°C"),
    "map_mm": ("MAP", 0.0, 9999.0, "mm"),
    "site_soc_stock_g_m2": ("C_soilmineral", 0.0, 999999.0, "g C m-2"),
    "site_soc_depth_cm": ("C_soildepth", 0.0, 200.0, "cm"),
}

#: SRDB's Biome "Tundra" away from the Arctic: tundra at |latitude| >= 60° is arctic, else
#: alpine where the site is at least this high (m), else not_reported.
TUNDRA_ARCTIC_LATITUDE = 60.0
TUNDRA_ALPINE_ELEVATION = 1500.0

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


_HINT = f" (expected the SRDB folder with {DATA_FILE}, {EQUATIONS_FILE} and {STUDIES_FILE})"


def _parsed(path: Path, line: int, raw: dict) -> dict:
    row = {k: v.strip() for k, v in raw.items()}
    for column in NUMERIC:
        row[column] = _number(path, line, column, row[column])
    row["Record_number"] = _record_number(path, line, raw["Record_number"])
    if row["Study_number"] is None or row["Study_number"] != int(row["Study_number"]):
        raise FileFormatError(f"{path.name} line {line}, column Study_number: "
                              f"{raw['Study_number']!r} is not a whole number")
    row["Study_number"] = int(row["Study_number"])
    row["line"] = line
    return row


def _record_number(path: Path, line: int, text: str) -> str:
    """Record_number stays text: a few are decimal ("3905.1") and are cited as written."""
    number = text.strip()
    if not re.fullmatch(r"\d+(\.\d+)?", number):
        raise FileFormatError(f"{path.name} line {line}, column Record_number: "
                              f"{text!r} is not a record number")
    return number


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


def read_equations(path: Path) -> dict[str, dict]:
    """srdb-equations.csv by Record_number, numbers parsed; every row checked."""
    equations = {}
    for line, raw in read_csv(path, EQUATION_COLUMNS, "utf-8", _HINT):
        row = {k: v.strip() for k, v in raw.items()}
        for column in EQUATION_NUMERIC:
            row[column] = _number(path, line, column, row[column])
        number = _record_number(path, line, raw["Record_number"])
        if number in equations:
            raise FileFormatError(f"{path.name} line {line}, column Record_number: "
                                  f"{number!r} appears twice (one fit per record)")
        row["Record_number"] = number
        equations[number] = row
    return equations


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


# "23% more Precipitation" (record 8030) is water added, as "wetted" (8031) is
_MORE_WATER = re.compile(r"\bmore\b|\badded\b|\bincrease|\bdoubl", re.I)


def matching_factors(row: dict) -> frozenset[str]:
    """The factors a control must share with a warmed arm: a precipitation change whose text
    says more water is water addition (``irrigation``), the factor of "irrigated"/"wetted"."""
    found = factors(row["Manipulation"])
    text = f"{row['Manipulation']} {row['Manipulation_level']}"
    if "precipitation_change" in found and _MORE_WATER.search(text):
        found = (found - {"precipitation_change"}) | {"irrigation"}
    return frozenset(found)


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



# -- medium of the warming ---------------------------------------------------------------------

# Manipulation_level texts that name only where the heat goes (4, 2 and 2 warmed records)
_MEDIA = {"air": "air", "soil": "soil", "air, soil": "air_and_soil"}
_AIR = re.compile(r"\bair temp", re.I)
_SOIL = re.compile(r"\bsoil (temp|depth)|\bin soil\b", re.I)


def warming_medium(level: str | None) -> str | None:
    """Where a Manipulation_level says the increment was applied or measured, else None.

    "Air", "Soil", "Air, soil" as labels; "2 °C in soil temp", "~2 °C at a soil depth of
    5 cm" (soil) and "2.5 °C increase in surface air temperature" (air) in a sentence.
    """
    text = (level or "").strip()
    if text.lower() in _MEDIA:
        return _MEDIA[text.lower()]
    air, soil = bool(_AIR.search(text)), bool(_SOIL.search(text))
    return "air_and_soil" if air and soil else "air" if air else "soil" if soil else None


# -- values of a response ----------------------------------------------------------------------

def reports(row: dict, column: str) -> bool:
    """Whether a record gives a value of the response (Q10 and R10 from its fit)."""
    fit = row.get("equation")
    if column == "Q10":
        return fit is not None and any(fit[name] is not None for name in Q10_RANGES)
    if column == "R10":
        return fit is not None and fit["R10"] is not None
    return row[column] is not None


def _q10_range(fit: dict, name: str) -> tuple[float | None, float | None]:
    """The temperature range of a Q10 column ("other" columns carry theirs)."""
    if name.startswith("Q10_other"):
        return fit[f"{name}_temp_min"], fit[f"{name}_temp_max"]
    low, high = name.removeprefix("Q10_").split("_")
    return float(low), float(high)


def pair_values(w: dict, c: dict, column: str) -> tuple[float, float, str] | None:
    """(warmed value, control value, SRDB column) of a contrast, or None if they share none.

    One Q10 per record: the first range column (:data:`Q10_RANGES`) both give over the
    same temperature range.
    """
    if column == "Q10":
        a, b = w["equation"], c["equation"]
        for name in Q10_RANGES:
            if None not in (a[name], b[name]) and _q10_range(a, name) == _q10_range(b, name):
                return a[name], b[name], name
        return None
    if column == "R10":
        return w["equation"]["R10"], c["equation"]["R10"], "R10"
    return w[column], c[column], column


def _same_fit(w: dict, c: dict) -> bool:
    return all(w["equation"][k] == c["equation"][k] for k in FIT)


def _fit_fields(row: dict) -> tuple:
    """A record's fitted curve: every field of its fit but the record number and the
    goodness of fit (Model_N, Model_R2 can be given per year for one reported curve)."""
    return tuple(row["equation"][k] for k in EQUATION_COLUMNS[1:] if k not in _GOODNESS)


_GOODNESS = ("Model_N", "Model_R2")


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
    values: tuple[float, float, str]
    duplicates: list[str] = field(default_factory=list)
    copies: list[tuple[dict, dict]] = field(default_factory=list)  # skipped later entries
    water: bool = False  # matched through "more precipitation" = water addition


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
    site = site_values(rows)
    pairs, skipped, seen, total = [], Counter(), {}, 0
    for row in warmed:
        for column in RESPONSES:
            if not reports(row, column):
                continue
            total += 1
            outcome = _pair_one(row, column, by_year[(row["Study_number"], row["Study_midyear"])])
            outcome = _unless_duplicate(_screened(outcome, site), seen)
            if isinstance(outcome, Pair):
                pairs.append(outcome)
            else:
                skipped[outcome] += 1
    no_response = sum(1 for r in warmed if not any(reports(r, c) for c in RESPONSES))
    return Pairing(pairs, skipped, len(warmed), total, no_response)


def _pair_one(row: dict, column: str, same_year: list[dict]) -> Pair | str:
    if row["Duplicate_record"]:
        return "known_duplicate"
    other = matching_factors(row) - {"warming"}
    controls = [c for c in same_year if not factors(c["Manipulation"]) & {"warming", "heat_wave"}]
    clean = [c for c in controls if matching_factors(c) == (other or {"control"})]
    plain = [c for c in controls if factors(c["Manipulation"]) == {"control"}]
    chosen = clean or plain
    if not chosen:
        return "no_control"
    found = _narrowed(row, chosen, column)
    if isinstance(found, str):
        return found
    control, values, duplicates = found
    if values[0] <= 0 or values[1] <= 0:
        return "not_positive"
    named = factors(row["Manipulation"]) - {"warming"}
    return Pair(row, control, column, named, confounded=bool(other) and not clean,
                candidates=len(chosen), values=values, duplicates=duplicates,
                water=bool(clean) and factors(control["Manipulation"]) != matching_factors(control))


def _narrowed(row: dict, candidates: list[dict], column: str):
    """(control, values, duplicate record numbers) after the narrowing rules, or a skip reason.

    The rules narrow on the records' description only. What is left must be one treatment
    (same Manipulation and level): several *different* treatments are ambiguous even if
    only one of them happens to report the response. Entries of that one treatment that
    report the response (for Q10 and R10: with the same fit) must agree on its value
    (repeated entries of the same arm).
    """
    for rule in _RULES:
        if len(candidates) == 1:
            break
        scores = [rule(row, c) for c in candidates]
        candidates = [c for c, s in zip(candidates, scores, strict=True) if s == max(scores)]
    if len({(c["Manipulation"], c["Manipulation_level"]) for c in candidates}) > 1:
        return "ambiguous"
    candidates = [c for c in candidates if reports(c, column)]
    if not candidates:
        return "no_control_value"
    if column in EQUATION_RESPONSES:
        candidates = [c for c in candidates if _same_fit(row, c) and pair_values(row, c, column)]
        if not candidates:
            return "different_fit"
    values = {c["Record_number"]: pair_values(row, c, column) for c in candidates}
    if len({v[1] for v in values.values()}) > 1:
        return "ambiguous"
    candidates = sorted(candidates, key=lambda c: float(c["Record_number"]))
    first = candidates[0]["Record_number"]
    return candidates[0], values[first], [c["Record_number"] for c in candidates[1:]]


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


# -- site values, derived and copied values ----------------------------------------------------

def site_values(rows: list[dict]) -> dict[tuple[int, str], float]:
    """(Study_number, column) -> the one value every record of the study gives, where the
    records giving it include a warmed arm and a control: a site value, not a response."""
    given: dict[tuple[int, str], list[tuple[float, str]]] = {}
    for row in rows:
        kind = _kind(row["Manipulation"])
        for column in RESPONSES:
            if column not in EQUATION_RESPONSES and row[column] is not None:
                given.setdefault((row["Study_number"], column), []).append((row[column], kind))
    found = {}
    for key, values in given.items():
        kinds = {kind for _, kind in values}
        if len({v for v, _ in values}) == 1 and {"warmed", "control"} <= kinds:
            found[key] = values[0][0]
    return found


def _screened(outcome, site: dict):
    """A pair, or why its values are not a response to warming (see the module's rules)."""
    if not isinstance(outcome, Pair):
        return outcome
    w, c, column = outcome.warmed, outcome.control, outcome.column
    if (w["Study_number"], column) in site:
        return "site_value"
    if column in EQUATION_RESPONSES and _fit_fields(w) == _fit_fields(c):
        return "same_fit"
    if column in PARTITION and (_copied(w) or _copied(c)):
        return "copied_partition"
    root = site.get((w["Study_number"], "RC_annual"))
    if root is not None and column in ("Rh_annual", "Ra_annual"):
        share = 1 - root if column == "Rh_annual" else root
        if _share_is(w, column, share) and _share_is(c, column, share):
            return "derived"
    return outcome


def _copied(row: dict) -> bool:
    """Rh equal to Ra while Rh + Ra is off Rs by more than 10%: one was copied into the other
    (the codebook: Ra_annual + Rh_annual roughly equals Rs_annual)."""
    rs, rh, ra = row["Rs_annual"], row["Rh_annual"], row["Ra_annual"]
    return None not in (rs, rh, ra) and rs > 0 and rh == ra and abs(rh + ra - rs) > 0.1 * rs


def _share_is(row: dict, column: str, share: float) -> bool:
    """Whether the value is Rs times the share (to the 3 decimals SRDB gives RC_annual in)."""
    rs = row["Rs_annual"]
    return bool(rs) and abs(row[column] / rs - share) <= 0.0005


def _unless_duplicate(outcome, seen: dict):
    """Skip a warmed record that repeats an earlier one: same study, site, response,
    manipulation and values within half a year, or (Q10, R10) the same fits in any year."""
    if not isinstance(outcome, Pair):
        return outcome
    w, c = outcome.warmed, outcome.control
    base = (w["Study_number"], _site_key(w), outcome.column, w["Manipulation"])
    if outcome.column in EQUATION_RESPONSES:  # the level text may change between years
        key = (*base, _fit_fields(w), _fit_fields(c))
        if key in seen:
            seen[key].copies.append((w, c))
            return "repeated_fit"
        seen[key] = outcome
        return outcome
    earlier = seen.setdefault((*base, w["Manipulation_level"], *outcome.values[:2]), [])
    for pair in earlier:
        if abs(pair.warmed["Study_midyear"] - w["Study_midyear"]) <= 0.5:
            pair.copies.append((w, c))
            return "duplicate"
    earlier.append(outcome)
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


def import_srdb(directory: str | Path, doi_owner=lambda doi: None) -> Imported:
    """Sources, studies and effects from an SRDB folder, with a summary that adds up.

    ``doi_owner(doi)`` names the stored source that already has a DOI (or None).
    """
    return build(read(directory), doi_owner)


def read(directory: str | Path) -> tuple[list[dict], dict[int, dict]]:
    """The checked rows of all three files (all reading, so a bad file fails before any
    writing); each data row carries its fit from the equations file as ``equation``."""
    directory = Path(directory)
    rows = read_data(directory / DATA_FILE)
    equations = read_equations(directory / EQUATIONS_FILE)
    for row in rows:
        row["equation"] = equations.get(row["Record_number"])
    return rows, read_studies(directory / STUDIES_FILE)


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
    order = {column: i for i, column in enumerate(RESPONSES)}
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
    """One ROM effect whose source_location names both SRDB records and the column."""
    w, c, column = pair.warmed, pair.control, pair.column
    response, period, units, err_column = RESPONSES[column]
    mean_t, mean_c, source_column = pair.values
    yi = math.log(mean_t / mean_c)
    vi = _vi(w, c, column, err_column)
    source_file = EQUATIONS_FILE if column in EQUATION_RESPONSES else DATA_FILE
    return {
        "id": f"{study_id}/{w['Record_number']}-{_CODES[column]}",
        "study_id": study_id, "response": response, "period": period,
        "warming_c": parse_warming_c(w["Manipulation_level"]),
        "other_factors": ", ".join(sorted(pair.other)) or None,
        "mean_t": mean_t, "mean_c": mean_c, "units": units, "measure": "ROM",
        "yi": round(yi, 6), "vi": vi, "direction": _direction(yi),
        "variance_note": VARIANCE_NOTE if vi is not None else _no_variance(w, c, column, err_column),
        "source_location": (f"SRDB-V5 records {w['Record_number']} (warmed) vs "
                            f"{c['Record_number']} (control), column {source_column}, "
                            f"{source_file} @{DATA_COMMIT}"),
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
    if column in EQUATION_RESPONSES:
        why = f"{EQUATIONS_FILE} gives no standard error and no n for a fitted {column}"
    elif err_column is None:
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
    if pair.water:
        text += (" A precipitation change that adds water is read as water addition, the"
                 " factor of irrigation and 'wetted'.")
    if pair.confounded:
        text += " No control with the same other factors exists: warming is confounded with them."
    if pair.duplicates:
        text += f" Same value also in control record(s) {', '.join(map(str, pair.duplicates))} (duplicates)."
    if pair.column in EQUATION_RESPONSES:
        text += " " + _fit_note(pair)
    if pair.copies:
        text += " " + _copies_note(pair)
    if err_column and (w[err_column] is not None or c[err_column] is not None):
        text += f" {err_column}: warmed {_g(w[err_column])}, control {_g(c[err_column])}."
    return text


def _fit_note(pair: Pair) -> str:
    """The fit both arms share, and every Q10 range they both give (ranges can disagree)."""
    a, b = pair.warmed["equation"], pair.control["equation"]
    low, high, depth = a["Model_temp_min"], a["Model_temp_max"], a["T_depth"]
    parts = [f"Model_type '{a['Model_type']}'",
             f"temperature range {_g(low)} to {_g(high)} °C" if None not in (low, high)
             else "temperature range not given",
             f"T_depth {depth:g} cm" if depth is not None else "T_depth not given"]
    if a["Model_N"] is not None or b["Model_N"] is not None:
        parts.append(f"Model_N {_g(a['Model_N'])} (warmed), {_g(b['Model_N'])} (control)")
    text = f"Fit (both arms): {', '.join(parts)}."
    if pair.column == "Q10":
        shared = [f"{name} {a[name]:g} vs {b[name]:g}" for name in Q10_RANGES
                  if None not in (a[name], b[name]) and _q10_range(a, name) == _q10_range(b, name)]
        text += f" Q10 (warmed vs control) by range: {'; '.join(shared)}."
    return text


def _copies_note(pair: Pair) -> str:
    copies = ", ".join(f"{w['Record_number']} vs {c['Record_number']} "
                       f"(Study_midyear {w['Study_midyear']:g})" for w, c in pair.copies)
    what = "fits" if pair.column in EQUATION_RESPONSES else "values"
    return f"The same {what} are entered again as records {copies}: skipped as duplicates."


def _g(value) -> str:
    return "-" if value is None else f"{value:g}"


def study_record(study_id: str, number: int, pairs: list[Pair], effects: list[dict],
                 source_key: str | None) -> dict:
    """The study of one SRDB study and site; values only where all its records agree."""
    rows = list({r["Record_number"]: r for p in pairs for r in (p.warmed, p.control)}.values())
    first = pairs[0].warmed
    # a study-level value would fill its effects' gaps in queries: only if none is missing
    warming = _all_agree([e["warming_c"] for e in effects])
    site, site_notes = site_fields(rows)
    biome, biome_note = _biome([p.warmed for p in pairs])
    fluxes = [e["direction"] for p, e in zip(pairs, effects, strict=True) if p.column in FLUXES]
    return {
        "id": study_id, "source_key": source_key, "study_type": "field_experiment",
        "biome": biome,
        "ecosystem": _term("ecosystems", [p.warmed["Ecosystem_type"] for p in pairs]),
        "site": first["Site_name"] or None, "country": _agreed(r["Country"] for r in rows),
        **site,
        "warming_method": _agreed(_method(p.warmed) for p in pairs) or "not_reported",
        "warming_medium": _all_agree([warming_medium(p.warmed["Manipulation_level"])
                                      for p in pairs]),
        "warming_c": warming, "soc_direction": "not_reported",
        "respiration_direction": _overall(fluxes) if fluxes else "not_reported",
        "summary": _study_summary(number, first, pairs),
        "origin": "srdb", "curator": "soc-kb import-srdb",
        "notes": " ".join([_study_notes(number, rows, source_key), *biome_note, *site_notes]),
    }


def site_fields(rows: list[dict]) -> tuple[dict, list[str]]:
    """Coordinates, elevation, climate and the site's SOC stock where all records agree and
    the value is plausible (:data:`PLAUSIBLE`); notes for what is left out and why."""
    fields, notes = {}, []
    for name, column in (("lat", "Latitude"), ("lon", "Longitude"), ("elevation_m", "Elevation"),
                         ("mat_c", "MAT"), ("map_mm", "MAP")):
        fields[name] = _agreed(r[column] for r in rows)
    stock, depth, soc_note = _site_soc(rows)
    fields |= {"site_soc_stock_g_m2": stock, "site_soc_depth_cm": depth}
    notes += soc_note
    for name, value in fields.items():
        column, low, high, unit = PLAUSIBLE[name]
        if value is not None and not low <= value <= high:
            fields[name] = None
            notes.append(f"SRDB gives {column} {value:g} {unit} here; not shown: outside the "
                         f"plausible range {low:g} to {high:g} {unit} (kb/importers/srdb.py PLAUSIBLE).")
    return fields, notes


def _site_soc(rows: list[dict]) -> tuple[float | None, float | None, list[str]]:
    """The site's SOC stock and depth (C_soilmineral, C_soildepth) where every warmed and
    control record gives the same stock: then it describes the site, not a response."""
    stocks = {r["C_soilmineral"] for r in rows}
    if stocks == {None}:
        return None, None, []
    arms = {kind: [r for r in rows if _kind(r["Manipulation"]) == kind] for kind in ("warmed", "control")}
    if len(stocks) > 1:
        given = "; ".join(f"{kind} {_by_value(arm, 'C_soilmineral')}" for kind, arm in arms.items())
        return None, None, [f"C_soilmineral (g C m-2) differs between the records ({given}): "
                            "not a site value, so no site SOC stock is set."]
    stock = stocks.pop()
    depths = {r["C_soildepth"] for r in rows}
    depth = next(iter(depths)) if len(depths) == 1 else None
    where = f"to {depth:g} cm (C_soildepth)" if depth is not None else (
        "depth not given (C_soildepth empty)" if depths == {None}
        else f"C_soildepth differs ({_by_value(rows, 'C_soildepth')})")
    return stock, depth, [f"Site SOC stock: C_soilmineral {stock:g} g C m-2, {where}, the same on "
                          f"all {len(rows)} warmed and control records: a site descriptor, not a "
                          "response to warming."]


def _by_value(rows: list[dict], column: str) -> str:
    """"3600 in records 8558, 8560" for each value the records give."""
    values: dict = {}
    for row in sorted(rows, key=lambda r: float(r["Record_number"])):
        values.setdefault(row[column], []).append(row["Record_number"])
    return ", ".join(f"{_g(v)} in record(s) {' '.join(numbers)}" for v, numbers in values.items())


def _biome(warmed: list[dict]) -> tuple[str | None, list[str]]:
    """The biome term of the warmed arms' labels, with SRDB's "Tundra" read by location."""
    terms = [_biome_term(r) for r in warmed if r["Biome"]]
    if not terms:
        return None, []
    term = _agreed(terms)
    tundra = [r for r in warmed if r["Biome"].lower() == "tundra"]
    if not tundra:
        return term, []
    row = tundra[0]
    return term, [f"SRDB Biome 'Tundra' (latitude {_g(row['Latitude'])}, elevation "
                  f"{_g(row['Elevation'])} m) is read as {term}: tundra is arctic at |latitude| >= "
                  f"{TUNDRA_ARCTIC_LATITUDE:g}°, alpine at >= {TUNDRA_ALPINE_ELEVATION:g} m "
                  "elsewhere, else not reported."]


def _biome_term(row: dict) -> str:
    if row["Biome"].lower() != "tundra":
        return lookup("biomes", row["Biome"]) or "not_reported"
    latitude, elevation = row["Latitude"], row["Elevation"]
    if latitude is not None and abs(latitude) >= TUNDRA_ARCTIC_LATITUDE:
        return "arctic"
    if elevation is not None and elevation >= TUNDRA_ALPINE_ELEVATION:
        return "alpine"
    return "not_reported"


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
    effects, studies = records["effects"], records["studies"]
    columns = ", ".join(RESPONSES)
    by_column = Counter(p.column for p in pairing.pairs)
    lines = [("records read", len(rows)),
             ("  warmed arms (warming factor)", kinds["warmed"]),
             ("  heat-wave records (not warming)", kinds["heat_wave"]),
             ("  controls (no manipulation)", kinds["control"]),
             ("  other manipulations", kinds["other"]),
             (f"records with a fit in {EQUATIONS_FILE}", sum(r["equation"] is not None for r in rows)),
             (f"warmed arms reporting none of {columns}", pairing.no_response),
             (f"warmed arm x response values ({columns})", pairing.arm_responses),
             ("  pairs made (effects)", len(pairing.pairs))]
    lines += [(f"  skipped: {text}", pairing.skipped[key]) for key, text in SKIP_REASONS.items()]
    lines += [("effects by SRDB column", len(pairing.pairs))]
    lines += [(f"  {column} ({RESPONSES[column][0]})", by_column[column]) for column in RESPONSES]
    lines += [("warmed records paired at least once", len({p.warmed["Record_number"] for p in pairing.pairs})),
              ("single-factor warming contrasts", sum(1 for e in effects if "other_factors" not in e or not e["other_factors"])),
              ("multi-factor contrasts against the matching other-factor control",
               sum(1 for p in pairing.pairs if p.other and not p.confounded)),
              ("confounded multi-factor contrasts", sum(1 for p in pairing.pairs if p.confounded)),
              ("effects with a variance (vi)", sum(1 for e in effects if e["vi"] is not None)),
              ("SRDB studies", len({s["id"].split("-")[0] for s in studies})),
              ("studies (study x site)", len(studies)),
              ("  with a site SOC stock (C_soilmineral, same on warmed and control)",
               sum(1 for s in studies if s.get("site_soc_stock_g_m2") is not None)),
              ("  with a study value left out as implausible (see notes)",
               sum(1 for s in studies if "not shown: outside the plausible range" in s["notes"])),
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
kb/seed/srdb_warming.yaml` from srdb-data.csv and srdb-equations.csv @{DATA_COMMIT} and
srdb-studies.csv @{STUDIES_COMMIT}.
Do not edit by hand: change kb/importers/srdb.py and regenerate (tests check byte equality).
Pairing and variance rules: kb/importers/srdb.py docstring and docs/importers.md.
"""

"""COSORE dataset d20200229_PHILLIPS (Terracosm warming, Corvallis): chamber means to effects.

Rules:

* Experimental unit = chamber (``CSR_PORT``). Hourly fluxes of one chamber are repeated
  measures of one unit (pseudo-replicates): they are averaged into one chamber mean per
  period and never counted in n. Treatment mean and SD are over chamber means, n = the
  chambers (4 per treatment in PORTS.txt) with at least :data:`MIN_HOURS` values in the period.
* Periods: each calendar month, and the whole season in the data (first to last day).
  A chamber's season mean is its monthly means weighted by the days each month has in
  the season, for chambers with a monthly mean in every month only: chambers have long
  gaps (port 7 stops in early July), and a plain mean over whatever hours a chamber has
  would compare spring-only chambers with season-long ones.
* Effects: ROM (ln warmed/control) of the soil CO2 flux rate (``soil_respiration_rate``)
  for symmetric and for asymmetric warming against the control chambers; yi and vi from
  :func:`evidence.log_response_ratio` with the rounded means and SDs stored.
* A monthly effect is a breakdown of its arm's season effect (same chambers, same hours):
  its ``quality_flag`` is ``part of <season effect id> (breakdown by month)``
  (:func:`kb.records.part_of_flag`), naming any port it uses that the season mean leaves
  out, so syntheses never pool it with the season effect. Without a season effect for
  the arm, the months are the only effects and carry no such flag.
* Provenance: site metadata and DOIs from DESCRIPTION.txt, contributors from
  CONTRIBUTORS.txt, the COSORE citation from README.md; nothing from memory.
"""

from __future__ import annotations

import csv
import io
import math
import statistics
from datetime import datetime, timedelta
from pathlib import Path

from ..errors import FileFormatError
from ..records import part_of_flag
from . import Imported, read_csv, read_text

DATASET = "d20200229_PHILLIPS"
COMMIT = "02f32e8"  # ../shared/data/cosore_phillips_terracosm_warming/README.md
STUDY_ID = "cosore-d20200229_phillips"
PRIMARY_KEY = "cosore_d20200229_phillips_primary"
COSORE_KEY = "bondlamberty2020cosore"
MIN_HOURS = 24  # a chamber needs a day of hourly values to have a mean for a period
CONTROL = "None"
TREATMENTS = {"Symmetrically warmed": "symmetric", "Asymmetrically warmed": "asymmetric"}
WARMING_C = 3.5  # DESCRIPTION.txt CSR_NOTES: "Both the warming treatments were +3.5C on average"
UNITS = "umol CO2 m-2 s-1"
FLUX_COLUMNS = ("CSR_PORT", "CSR_TIMESTAMP_BEGIN", "CSR_FLUX_CO2")
DESCRIPTION_KEYS = ("CSR_SITE_NAME", "CSR_LONGITUDE", "CSR_LATITUDE", "CSR_ELEVATION",
                    "CSR_IGBP", "CSR_INSTRUMENT", "CSR_PRIMARY_PUB", "CSR_NOTES")

VARIANCE_NOTE = ("n = chambers (experimental units; 4 per treatment in PORTS.txt, fewer if a "
                 f"chamber has < {MIN_HOURS} hourly values in the period); SD is between chamber "
                 "means. Hourly fluxes within a chamber are pseudo-replicates (repeated measures "
                 "of one chamber) and are averaged first, never counted in n. Season: only chambers "
                 "with a monthly mean in every month, monthly means weighted by days.")


# -- reading ---------------------------------------------------------------------------------

_HINT = (f" (expected the COSORE dataset folder {DATASET} with data.csv, PORTS.txt, "
         "DESCRIPTION.txt, CONTRIBUTORS.txt)")


def _lines(path: Path) -> list[tuple[int, str]]:
    """(line number, text) of a metadata file's non-comment lines; refuses non-UTF-8 bytes."""
    text, wrong = read_text(path, "utf-8", _HINT)
    found = []
    for number, line in enumerate(text.splitlines(), start=1):
        problem = wrong(line) if wrong else None
        if problem:
            raise FileFormatError(f"{path.name} line {number}: {problem}")
        if line.strip() and not line.startswith("#"):
            found.append((number, line))
    return found


def read_description(path: Path) -> dict[str, str]:
    """DESCRIPTION.txt key: value pairs; the keys the import uses must be there, numbers valid."""
    found, where = {}, {}
    for number, line in _lines(path):
        key, sep, value = line.partition(":")
        if sep:
            found[key.strip()], where[key.strip()] = value.strip(), number
    missing = [k for k in DESCRIPTION_KEYS if k not in found]
    if missing:
        raise FileFormatError(f"{path.name}: key {missing[0]} is missing "
                              f"(needed: {', '.join(DESCRIPTION_KEYS)})")
    for key, (low, high) in COORDINATES.items():
        value = _value(path.name, where[key], key, found[key])
        if not low <= value <= high:
            raise FileFormatError(f"{path.name} line {where[key]}, {key}: {value:g} is "
                                  f"outside [{low}, {high}]")
    return found


def read_table(path: Path, required=()) -> list[dict]:
    """A COSORE metadata table (PORTS.txt, CONTRIBUTORS.txt): comma-separated, padded.

    Each row carries its line number under ``"line"``.
    """
    lines = _lines(path)
    # columns are padded with tabs; as spaces, skipinitialspace lets quoted fields parse
    text = "\n".join(line.replace("\t", " ") for _, line in lines)
    reader = csv.DictReader(io.StringIO(text), skipinitialspace=True)
    header = [h.strip() for h in reader.fieldnames or []]
    missing = [c for c in required if c not in header]
    if missing:
        where = f" line {lines[0][0]}" if lines else ""
        raise FileFormatError(f"{path.name}{where}: column {missing[0]} is missing "
                              f"(needed: {', '.join(required)})")
    rows = []
    for index, row in enumerate(reader, start=1):
        if None in row or None in row.values():
            raise FileFormatError(f"{path.name} line {lines[index][0]}: the number of values "
                                  "differs from the header")
        rows.append({k.strip(): v.strip() for k, v in row.items()} | {"line": lines[index][0]})
    return rows


def read_ports(path: Path) -> dict[int, str]:
    """Port -> treatment ("None", "Symmetrically warmed", "Asymmetrically warmed")."""
    ports = {}
    for row in read_table(path, ("CSR_PORT", "CSR_TREATMENT")):
        if not row["CSR_PORT"].isdigit():
            raise FileFormatError(f"{path.name} line {row['line']}, column CSR_PORT: "
                                  f"{row['CSR_PORT']!r} is not a port number")
        if row["CSR_TREATMENT"] not in (CONTROL, *TREATMENTS):
            raise FileFormatError(f"{path.name} line {row['line']}, column CSR_TREATMENT: "
                                  f"{row['CSR_TREATMENT']!r} is not one of "
                                  f"{', '.join((CONTROL, *TREATMENTS))}")
        ports[int(row["CSR_PORT"])] = row["CSR_TREATMENT"]
    return ports


def read_fluxes(path: Path, ports: dict[int, str]) -> list[tuple[int, datetime, float]]:
    """(port, start time, CO2 flux) for every hourly row with a flux; refuses bad values."""
    rows = []
    for line, raw in read_csv(path, FLUX_COLUMNS, "utf-8", _HINT):
        rows.extend(_flux_row(path.name, line, raw, ports))
    return rows


def _flux_row(name: str, line: int, raw: dict, ports: dict[int, str]):
    port = _value(name, line, "CSR_PORT", raw.get("CSR_PORT"))
    if port not in ports:
        raise FileFormatError(f"{name} line {line}, column CSR_PORT: {raw['CSR_PORT']!r} is "
                              f"not a port of PORTS.txt ({', '.join(map(str, sorted(ports)))})")
    text = (raw.get("CSR_FLUX_CO2") or "").strip()
    if text in ("", "NA"):
        return []
    try:
        start = datetime.strptime(raw["CSR_TIMESTAMP_BEGIN"].strip(), "%Y-%m-%d %H:%M:%S")
    except (ValueError, AttributeError):
        raise FileFormatError(f"{name} line {line}, column CSR_TIMESTAMP_BEGIN: "
                              f"{raw.get('CSR_TIMESTAMP_BEGIN')!r} is not YYYY-MM-DD HH:MM:SS") from None
    return [(int(port), start, _value(name, line, "CSR_FLUX_CO2", text))]


COORDINATES = {"CSR_LATITUDE": (-90, 90), "CSR_LONGITUDE": (-180, 180),
               "CSR_ELEVATION": (-500, 9000)}


def _value(name: str, line: int, column: str, text) -> float:
    try:
        value = float(text)
    except (TypeError, ValueError):
        value = math.nan
    if not math.isfinite(value):
        raise FileFormatError(f"{name} line {line}, column {column}: {text!r} is not a number")
    return value


# -- chamber and treatment means ---------------------------------------------------------------

def chamber_means(fluxes, month: str) -> dict[int, tuple[float, int]]:
    """Port -> (mean flux, hours) over a calendar month ("2009-05")."""
    sums: dict[int, list[float]] = {}
    for port, start, flux in fluxes:
        if start.strftime("%Y-%m") == month:
            sums.setdefault(port, []).append(flux)
    return {port: (statistics.fmean(v), len(v)) for port, v in sums.items() if len(v) >= MIN_HOURS}


def season_means(fluxes) -> dict[int, tuple[float, int]]:
    """Port -> (season mean, hours): monthly means weighted by the days each month has in the season.

    Only chambers with a monthly mean in every month count. Why: chambers have long gaps
    (port 7 stops in early July, port 5 misses August and September); a plain mean of
    whatever hours a chamber has would compare a spring-only chamber with season-long
    ones, and flux falls by about two thirds from May to August.
    """
    months = _periods(fluxes)[1:]
    monthly = {m: chamber_means(fluxes, m) for m in months}
    days = season_days(fluxes)
    complete = set.intersection(*(set(monthly[m]) for m in months))
    return {port: (sum(days[m] * monthly[m][port][0] for m in months) / sum(days.values()),
                   sum(monthly[m][port][1] for m in months))
            for port in sorted(complete)}


def season_days(fluxes) -> dict[str, int]:
    """Month -> number of its days from the first to the last day with data."""
    first = min(s for _, s, _ in fluxes).date()
    last = max(s for _, s, _ in fluxes).date()
    found: dict[str, int] = {}
    for offset in range((last - first).days + 1):
        month = (first + timedelta(days=offset)).strftime("%Y-%m")
        found[month] = found.get(month, 0) + 1
    return found


def arm(means: dict[int, tuple[float, int]], ports: dict[int, str], treatment: str):
    """(mean, SD, n, ports used) of a treatment's chamber means; None if fewer than 2 chambers."""
    used = sorted(p for p, t in ports.items() if t == treatment and p in means)
    if len(used) < 2:
        return None
    values = [means[p][0] for p in used]
    return round(statistics.fmean(values), 6), round(statistics.stdev(values), 6), len(used), used


# -- records -----------------------------------------------------------------------------------

def import_cosore(directory: str | Path, doi_owner=lambda doi: None) -> Imported:
    """Sources, the study and its effects from the COSORE Terracosm folder, with a summary."""
    return build(read(directory), doi_owner)


def read(directory: str | Path) -> tuple:
    """(description, ports, contributors, fluxes), all checked: a bad file fails before writing."""
    directory = Path(directory)
    description = read_description(directory / "DESCRIPTION.txt")
    ports = read_ports(directory / "PORTS.txt")
    contributors = read_table(directory / "CONTRIBUTORS.txt", ("CSR_FIRST_NAME", "CSR_FAMILY_NAME"))
    fluxes = read_fluxes(directory / "data.csv", ports)
    if not fluxes:
        raise FileFormatError(f"{directory / 'data.csv'}: no CSR_FLUX_CO2 values")
    return description, ports, contributors, fluxes


def build(raw: tuple, doi_owner=lambda doi: None) -> Imported:
    """The records and summary from what :func:`read` returned."""
    description, ports, contributors, fluxes = raw
    effects = effect_records(fluxes, ports)
    sources, primary_key = source_records(description, doi_owner)
    study = study_record(description, contributors, effects, primary_key, fluxes)
    records = {"sources": sources, "studies": [study], "effects": effects}
    summary = [("hourly flux rows read", len(fluxes)), ("chambers (ports)", len(ports)),
               ("periods (season + months)", len(_periods(fluxes))),
               ("effects (symmetric and asymmetric vs control)", len(effects)),
               ("sources", len(sources)), ("studies", 1)]
    return Imported(records, summary)


def _periods(fluxes) -> list[str | None]:
    return [None, *sorted({start.strftime("%Y-%m") for _, start, _ in fluxes})]


def effect_records(fluxes, ports: dict[int, str]) -> list[dict]:
    """Effects for the season and each month, symmetric then asymmetric warming."""
    first = min(s for _, s, _ in fluxes).date()
    last = max(s for _, s, _ in fluxes).date()
    season = f"season {first} to {last}"
    ports = {p: t.strip() for p, t in ports.items()}
    effects, seasons = [], {}
    for period in _periods(fluxes):
        means = season_means(fluxes) if period is None else chamber_means(fluxes, period)
        control = arm(means, ports, CONTROL)
        for treatment, code in TREATMENTS.items():
            warmed = arm(means, ports, treatment)
            if control and warmed:
                left_out = [p for p, t in sorted(ports.items())
                            if t in (treatment, CONTROL) and p not in means]
                effect = _effect(code, period or season, warmed, control, means, left_out)
                used = warmed[3] + control[3]
                if period is None:
                    seasons[code] = (effect["id"], used)
                elif code in seasons:
                    effect["quality_flag"] = _breakdown_flag(*seasons[code], used)
                effects.append(effect)
    return effects


def _breakdown_flag(season_id: str, season_ports: list[int], ports: list[int]) -> str:
    """``part of <season id> (breakdown by month...)``: the month is the season's data again."""
    extra = sorted(set(ports) - set(season_ports))
    why = "breakdown by month" + (f"; also port(s) {_list(extra)}, which the season mean "
                                  "leaves out" if extra else "")
    return part_of_flag(season_id, why)


def _effect(code: str, period: str, warmed, control, means, left_out: list[int]) -> dict:
    import evidence

    (mean_t, sd_t, n_t, ports_t), (mean_c, sd_c, n_c, ports_c) = warmed, control
    sizes = evidence.log_response_ratio(mean_t, sd_t, n_t, mean_c, sd_c, n_c)
    label = "season" if period.startswith("season") else period
    return {
        "id": f"{STUDY_ID}/{code}-{label}", "study_id": STUDY_ID,
        "response": "soil_respiration_rate", "period": period, "warming_c": WARMING_C,
        "mean_t": mean_t, "sd_t": sd_t, "n_t": n_t, "mean_c": mean_c, "sd_c": sd_c, "n_c": n_c,
        "units": UNITS, "measure": "ROM", "yi": round(sizes.yi, 6),
        "vi": float(f"{sizes.vi:.6g}"), "direction": "increase" if sizes.yi > 0 else "decrease",
        "variance_note": VARIANCE_NOTE,
        "source_location": (f"COSORE {DATASET} data.csv (@{COMMIT}), CSR_FLUX_CO2 hourly, "
                            f"{period}: ports {_list(ports_t)} ({code} warming) vs ports "
                            f"{_list(ports_c)} (control), treatments from PORTS.txt"),
        "quality_flag": None,  # set on monthly effects by effect_records (a breakdown)
        "notes": _effect_notes(code, ports_t + ports_c, means, left_out, label == "season"),
    }


def _list(ports) -> str:
    return ", ".join(map(str, ports))


def _effect_notes(code: str, ports, means, left_out: list[int], season: bool) -> str:
    hours = ", ".join(f"{p}: {means[p][1]}" for p in ports)
    design = {"symmetric": "+3.5 °C day and night",
              "asymmetric": "+5 °C at dawn to +2 °C at mid-afternoon, +3.5 °C on average"}[code]
    text = (f"{code.capitalize()} warming ({design}; DESCRIPTION.txt CSR_NOTES). "
            f"Hourly values per chamber mean (port: hours): {hours}.")
    if season:
        text += (" Season mean of a chamber = its monthly means weighted by the days each "
                 "month has in the season.")
    if left_out:
        why = ("no monthly mean (>= %d hourly values) in every month" if season
               else "fewer than %d hourly values in the month") % MIN_HOURS
        text += f" Left out: port(s) {_list(left_out)} ({why})."
    return text


def source_records(description: dict, doi_owner) -> tuple[list[dict], str | None]:
    """The dataset's primary publication (DOI only) and the COSORE database paper (README)."""
    records = []
    doi = description.get("CSR_PRIMARY_PUB") or None
    primary_key = _other_owner(doi_owner, doi, PRIMARY_KEY)
    if doi and not primary_key:
        primary_key = PRIMARY_KEY
        records.append({
            "key": PRIMARY_KEY, "entry_type": "misc", "doi": doi, "verification": "none",
            "note": (f"Primary publication of COSORE dataset {DATASET}: only its DOI is stated "
                     "(DESCRIPTION.txt CSR_PRIMARY_PUB); title, authors and year are not in "
                     "the files at hand and are not filled from memory.")})
    if not _other_owner(doi_owner, COSORE_PAPER["doi"], COSORE_KEY):
        records.append(dict(COSORE_PAPER))
    return records, primary_key


def _other_owner(doi_owner, doi: str | None, key: str) -> str | None:
    """The key of another stored source with this DOI (our own key, from an earlier run, is not)."""
    owner = doi_owner(doi) if doi else None
    return owner if owner != key else None


#: The COSORE citation exactly as README.md gives it ("et al." after four authors).
COSORE_PAPER = {
    "key": COSORE_KEY, "entry_type": "article",
    "title": ("COSORE: A community database for continuous soil respiration and other "
              "soil-atmosphere flux data"),
    "authors": ("Bond-Lamberty, B. and Christianson, D. S. and Malhotra, A. and "
                "Pennington, S. C. and others"),
    "year": 2020, "journal": "Global Change Biology", "volume": "26", "pages": "7268--7283",
    "doi": "10.1111/gcb.15353", "verification": "partial",
    "verified_from": "../shared/data/cosore_phillips_terracosm_warming/README.md (Citation: Database)",
    "unverified_fields": "authors after the fourth (the README gives 'et al.')",
    "note": "COSORE database paper, cited for the COSORE Terracosm dataset (d20200229_PHILLIPS).",
}


def study_record(description: dict, contributors: list[dict], effects: list[dict],
                 source_key: str | None, fluxes) -> dict:
    season = [e for e in effects if e["period"].startswith("season")]
    directions = {e["direction"] for e in season}
    return {
        "id": STUDY_ID, "source_key": source_key, "study_type": "field_experiment",
        "ecosystem": "grassland" if description.get("CSR_IGBP") == "Grassland" else None,
        "site": description.get("CSR_SITE_NAME"),
        "lat": float(description["CSR_LATITUDE"]), "lon": float(description["CSR_LONGITUDE"]),
        "elevation_m": float(description["CSR_ELEVATION"]),
        "warming_method": "climate_chamber", "warming_c": WARMING_C,
        "soc_direction": "not_reported",
        "respiration_direction": directions.pop() if len(directions) == 1 else "mixed",
        "summary": ("Whole-ecosystem warming in sunlit, climate-controlled chambers (Terracosm): "
                    "12 collars, 4 per treatment (ambient, symmetric +3.5 °C, asymmetric +3.5 °C "
                    "on average); hourly soil CO2 flux from "
                    f"{min(s for _, s, _ in fluxes).date()} to {max(s for _, s, _ in fluxes).date()}."),
        "evidence_quote": description.get("CSR_NOTES"),
        "quote_location": "COSORE d20200229_PHILLIPS DESCRIPTION.txt, CSR_NOTES",
        "origin": "cosore", "curator": "soc-kb import-cosore",
        "notes": _study_notes(description, contributors),
    }


def _study_notes(description: dict, contributors: list[dict]) -> str:
    people = "; ".join(
        f"{c['CSR_FIRST_NAME']} {c['CSR_FAMILY_NAME']}"
        + (f" (ORCID {c['CSR_ORCID']})" if c.get("CSR_ORCID") else "")
        + (f", {c['CSR_ROLE']}" if c.get("CSR_ROLE") else "") for c in contributors)
    other = description.get("CSR_OTHER_PUBS")
    return (f"COSORE dataset {DATASET} (github.com/bpbond/cosore @{COMMIT}), CC BY 4.0. "
            f"Contributors (CONTRIBUTORS.txt): {people}. "
            + (f"Other publications (DESCRIPTION.txt CSR_OTHER_PUBS): doi:{other}. " if other else "")
            + f"Instrument {description.get('CSR_INSTRUMENT')}; IGBP {description.get('CSR_IGBP')}. "
            "Warming magnitude +3.5 °C: DESCRIPTION.txt CSR_NOTES and the README design table.")


SEED_HEADER = f"""\
COSORE Terracosm warming (dataset {DATASET}), generated by `soc-kb import-cosore
../shared/data/cosore_phillips_terracosm_warming --write-seed kb/seed/cosore_terracosm.yaml`
from the dataset files @{COMMIT}. Do not edit by hand: change kb/importers/cosore.py and
regenerate (tests check byte equality). Rules: kb/importers/cosore.py docstring.
"""

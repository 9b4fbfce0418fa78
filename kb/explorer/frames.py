"""Data shaping for the Streamlit explorer: frames the pages show and plot.

No Streamlit and no SQL here (the pages cache and draw; every read is a
:class:`~kb.KnowledgeBase` method, the narrow ones included); no statistics beyond what
:mod:`evidence` computes, except the per-study confidence intervals that a forest or
funnel plot draws.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from dataclasses import dataclass
from statistics import NormalDist
from urllib.parse import quote

import numpy as np
import pandas as pd

import evidence
from evidence import METHODS  # noqa: F401  (the pages' estimator picker)
from evidence.certainty import assumed_variance
from evidence.synthesis import MISSING as NOT_REPORTED
from evidence.synthesis import MODEL_METHODS, MODELS  # noqa: F401  (the pages' pickers)

from ..bib import to_csl_json, to_ris
from ..errors import KBError
from ..query import RANGE_FILTERS
from ..records import is_part_of
from ..store import DB_ENV, DEFAULT_DB, KnowledgeBase
from ..vocab import FACET_VOCABULARY, FIELD_VOCABULARY, VOCABULARIES

#: the sidebar's vocabulary filters, in order
FILTER_FACETS = ("biome", "ecosystem", "mechanism", "depth_class", "direction", "study_type")
Z95 = NormalDist().inv_cdf(0.975)  # per-study CI bounds for plots; the stdlib quantile is enough


def db_path() -> str:
    """The database the app opens: ``SOC_KB_DB``, else ``soc-kb.db`` here (as the CLI)."""
    return os.environ.get(DB_ENV) or DEFAULT_DB


def open_base(path: str) -> KnowledgeBase:
    """The knowledge base at ``path``, as the CLI opens it: the default ``soc-kb.db`` is
    made from the shipped seed on first use; a path named in ``SOC_KB_DB`` must exist."""
    return KnowledgeBase(path, create=not os.environ.get(DB_ENV) and path == DEFAULT_DB)


def file_version(path) -> tuple:
    """(size, mtime) of the database file and its write-ahead log: changes with every write,
    whoever makes it, so cached reads keyed on it are never stale."""
    version = []
    for name in (str(path), f"{path}-wal"):
        try:
            stat = os.stat(name)
        except FileNotFoundError:
            version.append(None)
        else:
            version.append((stat.st_size, stat.st_mtime_ns))
    return tuple(version)


def clean_filters(values: dict) -> dict:
    """Filters with the empty ones dropped and lists as tuples (hashable, for caching)."""
    clean = {}
    for name, value in values.items():
        if value is None or value == "" or (isinstance(value, list | tuple) and not value):
            continue
        clean[name] = tuple(value) if isinstance(value, list) else value
    return clean


def missing_note(counts: dict[str, int], filters: dict) -> str:
    """What the range filters leave out for lack of a value (``kb.missing_values``), as a
    sentence; empty when nothing is left out or studies without a value are kept."""
    if filters.get("include_missing"):
        return ""
    parts = [f"{n:,} stud{'y' if n == 1 else 'ies'} that state no {RANGE_FILTERS[name]}"
             for name, n in counts.items() if n]
    if not parts:
        return ""
    return ("The ranges leave out " + "; ".join(parts) +
            " — tick 'Include studies without a value' to keep them.")


def open_range(chosen: tuple, full: tuple) -> tuple | None:
    """A slider's range as a filter: None when it spans everything (so no row is dropped)."""
    low, high = chosen
    if (low, high) == tuple(full):
        return None
    return (None if low == full[0] else low, None if high == full[1] else high)


# -- labels and missing values -------------------------------------------------------------

MISSING_TEXT = "—"  # a missing text value in every table (a missing number is an empty cell)
#: column -> the vocabulary its values are named in: record fields, facets, and the columns
#: of the claim tables (what a cited synthesis expects, what its data say); a name that is
#: no vocabulary (warming media, warming bins) shows its terms in words
COLUMN_VOCABULARY = ({field: vocab for (_, field), vocab in FIELD_VOCABULARY.items()}
                     | FACET_VOCABULARY
                     | {"expects": "directions", "data_relation": "link_relations",
                        "warming_medium": "warming_media", "warming_bin": "warming_bins"})
_ID = re.compile(r"[a-z][a-z0-9]*(?:_[a-z0-9]+)*")


def vocabulary_labels(kb: KnowledgeBase) -> dict[str, dict[str, str]]:
    """Every vocabulary as name -> label, as the store holds them."""
    found = {}
    for name in VOCABULARIES:
        frame = kb.vocabulary(name)
        found[name] = dict(zip(frame["name"], frame["label"], strict=True))
    return found


def missing(value) -> bool:
    """None, NaN, NA or NaT (a list is a value, even an empty one)."""
    return not isinstance(value, list | tuple | np.ndarray) and bool(pd.isna(value))


def label(value, names: dict[str, str] | None) -> str:
    """A vocabulary term as the form shows it (``heating_cable`` -> ``Heating cable``); a
    term the vocabulary lacks (``not_reported``, ``air_and_soil``) in words; a list joined
    with commas; a missing value as "—"."""
    if isinstance(value, list | tuple | np.ndarray):
        return ", ".join(label(v, names) for v in value) or MISSING_TEXT
    if missing(value) or value == "":
        return MISSING_TEXT
    text = str(value)
    if names and text in names:
        return names[text]
    return text.replace("_", " ").capitalize() if _ID.fullmatch(text) else text


def display_table(frame: pd.DataFrame, labels: dict[str, dict[str, str]],
                  vocabularies: dict[str, str] | None = None, links=()) -> pd.DataFrame:
    """A frame as a page shows it: vocabulary columns (``COLUMN_VOCABULARY``, or
    ``vocabularies``) as labels, lists joined, missing text as "—"; a column of numbers
    stays numeric (a missing one is an empty cell), even when it came as objects; a link
    column keeps None for a missing link (an empty cell, not a link to "—")."""
    vocabularies = COLUMN_VOCABULARY if vocabularies is None else vocabularies
    shown = {}
    for column in frame.columns:
        values = frame[column]
        vocabulary = vocabularies.get(column)
        if column in links:
            shown[column] = [None if missing(v) else v for v in values]
        elif vocabulary is not None:
            names = labels.get(vocabulary)
            shown[column] = [label(v, names) for v in values]
        elif _numeric(values):
            shown[column] = pd.to_numeric(values, errors="coerce") if values.dtype == object else values
        else:
            shown[column] = [MISSING_TEXT if missing(v) else
                             ", ".join(map(str, v)) if isinstance(v, list | tuple) else v
                             for v in values]
    return pd.DataFrame(shown, index=frame.index, columns=frame.columns)


def _numeric(values: pd.Series) -> bool:
    if pd.api.types.is_bool_dtype(values) or pd.api.types.is_numeric_dtype(values):
        return True
    present = values[[not missing(v) for v in values]]
    return len(present) > 0 and all(isinstance(v, int | float | np.number) and not isinstance(v, bool)
                                    for v in present)


# -- Explore reads --------------------------------------------------------------------------

POOL_COLUMNS = ["id", "study_id", "source_key", "measure", "yi", "vi", "variance_note",
                "quality_flag"]


def effects_to_pool(kb: KnowledgeBase, response: str, **filters) -> pd.DataFrame:
    """The effects on ``response`` of the selected studies, only the columns a pooled
    effect needs (same rows as ``kb.effects(response=response, **filters)``; breakdowns
    flagged ``part of ...`` are still here, :func:`pool_effects` leaves them out and counts them)."""
    frame = kb.effect_columns(POOL_COLUMNS, response=response, **filters)
    return frame.astype({"yi": float, "vi": float})


# -- studies ----------------------------------------------------------------------------


def short_citation(first_author, authors, year) -> str:
    """``Crowther et al. (2016)``; ``Smith & Doe (2024)``; ``Smith (n.d.)``."""
    if not isinstance(first_author, str) or not first_author:
        return ""
    names = authors.split(" and ") if isinstance(authors, str) else [first_author]
    if names[-1].strip() == "others":
        names = [*names, "others"]  # "Chen and others" is more than two authors
    second = names[1].split(",")[0].strip() if len(names) == 2 else ""
    who = {1: first_author, 2: f"{first_author} & {second}"}.get(len(names), f"{first_author} et al.")
    when = str(int(year)) if pd.notna(year) else "n.d."
    return f"{who} ({when})"


#: the Explore table's vocabulary columns (its own headers)
STUDY_TABLE_VOCABULARY = {"biome": "biomes", "ecosystem": "ecosystems", "study type": "study_types",
                          "SOC direction": "directions", "mechanisms": "mechanisms"}


def study_table(studies: pd.DataFrame, sources: pd.DataFrame,
                labels: dict[str, dict[str, str]] | None = None) -> pd.DataFrame:
    """The studies as the Explore table shows them: a citation, the system (as labels), a
    DOI link; a missing text as "—", a missing number or DOI as an empty cell."""
    authors = sources.set_index("key")["authors"] if len(sources) else pd.Series(dtype=object)
    journals = sources.set_index("key")["journal"] if len(sources) else pd.Series(dtype=object)
    keys = studies["source_key"]
    table = pd.DataFrame({
        "study": studies["id"],
        # no author recorded (e.g. a dataset's paper known only by its DOI): its source key
        "citation": [short_citation(f, authors.get(k), y) or (k if isinstance(k, str) else None)
                     for f, k, y in zip(studies["first_author"], keys, studies["year"], strict=True)],
        "title": studies["source_title"],
        "journal": keys.map(journals),
        "biome": studies["biome"], "ecosystem": studies["ecosystem"],
        "study type": studies["study_type"],
        "depth (cm)": [depth_text(t, b) or None for t, b in zip(studies["depth_top_cm"],
                                                            studies["depth_bottom_cm"], strict=True)],
        "warming (°C)": pd.to_numeric(studies["warming_c"], errors="coerce"),
        "SOC direction": studies["soc_direction"],
        "mechanisms": [list(m) for m in studies["mechanisms"]],
        "DOI": [doi_url(d) for d in studies["doi"]],
    }, index=studies.index)
    return display_table(table, labels or {}, STUDY_TABLE_VOCABULARY, links=("DOI",)).reset_index(drop=True)


def study_link(study_id: str) -> str:
    """The Study page of a study, relative to the app (``study?id=...``, the id URL-encoded)."""
    return "study?id=" + quote(str(study_id), safe="")


def depth_text(top, bottom) -> str:
    if pd.isna(top) or pd.isna(bottom):
        return ""
    return f"{top:g}–{bottom:g}"


def doi_url(doi) -> str | None:
    """The doi.org link of a DOI (percent-encoded, so that a bracket or parenthesis in it
    cannot end a Markdown link); None without one."""
    return f"https://doi.org/{quote(doi, safe='/')}" if isinstance(doi, str) and doi else None


def map_frame(studies: pd.DataFrame, labels: dict[str, dict[str, str]] | None = None) -> pd.DataFrame:
    """Studies with coordinates (one point per study) for the site map, biomes as labels."""
    located = studies.dropna(subset=["lat", "lon"])
    biomes = (labels or {}).get("biomes")
    return pd.DataFrame({"study": located["id"], "lat": located["lat"].astype(float),
                         "lon": located["lon"].astype(float),
                         "biome": [_stated(b, biomes) for b in located["biome"]],
                         "site": [label(s, None) if missing(s) else s for s in located["site"]]})


def _stated(value, names: dict[str, str] | None) -> str:
    """A chart's legend entry: a missing value is "Not reported", as in the evidence map."""
    return label(NOT_REPORTED if missing(value) else value, names)


def timeline_frame(studies: pd.DataFrame, labels: dict[str, dict[str, str]] | None = None) -> pd.DataFrame:
    """Publications per year (one count per source, not per study) and study type (as its
    label), each year a bin from ``year`` to ``year_end`` on a continuous axis."""
    dated = studies.dropna(subset=["year"]).drop_duplicates("source_key")
    types = (labels or {}).get("study_types")
    counts = (dated.assign(year=dated["year"].astype(int),
                           study_type=[_stated(t, types) for t in dated["study_type"]])
              .groupby(["year", "study_type"]).size().rename("publications").reset_index())
    return counts.assign(year_end=counts["year"] + 1)


def main_response(counts: dict[str, tuple[int, int]], responses: list[str]) -> str:
    """The response with the most poolable effects, then the most effects (``counts`` as
    :meth:`kb.KnowledgeBase.response_counts` gives them); the first vocabulary term when
    there is none."""
    return max(counts, key=counts.get) if counts else responses[0]


# -- pooling ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Pooled:
    """A pooled lnRR and what went into it (and what did not, and why)."""

    result: evidence.GroupFit | None
    used: pd.DataFrame
    n_effects: int
    n_without_variance: int
    n_other_measure: int
    n_assumed_variance: int
    n_breakdowns: int = 0
    problem: str = ""


def breakdowns(effects: pd.DataFrame) -> pd.Series:
    """Which effects are a finer breakdown of another (``part of ...``, never pooled with it)."""
    if "quality_flag" not in effects:
        return pd.Series(False, index=effects.index)
    return effects["quality_flag"].map(is_part_of).astype(bool)


def poolable(effects: pd.DataFrame) -> pd.DataFrame:
    """Log response ratios that have a sampling variance (the rows a pooled lnRR uses),
    except breakdowns of another effect (:func:`breakdowns`: the same data again)."""
    vi = pd.to_numeric(effects["vi"], errors="coerce")
    keep = ((effects["measure"] == "ROM") & effects["yi"].notna() & (vi > 0) & np.isfinite(vi)
            & ~breakdowns(effects))
    return effects[keep]


def pool_effects(effects: pd.DataFrame, method: str = "REML", model: str = "multilevel") -> Pooled:
    """Pool the lnRR effects that have a variance with :func:`evidence.fit_group` — by default
    nested in their sites (``study_id``) and sources (``source_key``), as the synthesis
    tables do; breakdowns of another effect (``part of ...``) are left out and counted."""
    parts = breakdowns(effects)
    used, rest = poolable(effects), effects[~parts]
    counts = dict(n_effects=len(effects), n_breakdowns=int(parts.sum()),
                  n_without_variance=int(((rest["measure"] == "ROM") & rest["vi"].isna()).sum()),
                  n_other_measure=int((rest["measure"] != "ROM").sum()),
                  n_assumed_variance=int(assumed_variance(used).sum()))
    if len(used) == 0:
        return Pooled(None, used, problem="no log response ratio with a variance in this selection",
                      **counts)
    try:
        result = evidence.fit_group(used, model=model, method=method)
    except evidence.EvidenceError as exc:
        return Pooled(None, used, problem=str(exc), **counts)
    return Pooled(result, used, **counts)


def percent(lnrr: float) -> float:
    return float(evidence.percent_change_from_lnrr(lnrr))


def percents(fit) -> tuple[float, float, float]:
    """Percent change of the estimate and its CI bounds, 100·(exp(x) − 1)."""
    return percent(fit.estimate), percent(fit.ci_low), percent(fit.ci_high)


def effect_line(fit) -> str:
    """``−0.123 lnRR (−11.6 %), 95 % CI −0.20 to −0.05 (−18.1 % to −4.9 %)``."""
    pct = percents(fit)
    return (f"{fit.estimate:+.3f} lnRR ({pct[0]:+.1f} %), 95 % CI {fit.ci_low:+.3f} to "
            f"{fit.ci_high:+.3f} ({pct[1]:+.1f} % to {pct[2]:+.1f} %)")


def behind_line(fit) -> str:
    """What stands behind a pooled number, and how dependence was handled."""
    what = (f"{fit.k:,} effect{'s' if fit.k != 1 else ''} from {fit.n_sites:,} "
            f"site{'s' if fit.n_sites != 1 else ''} in {fit.n_sources:,} "
            f"source{'s' if fit.n_sources != 1 else ''}")
    how = {"multilevel": "nested in sites and sources (rma.mv)",
           "independent": "pooled as if independent (rma), so the CI is too narrow when one "
                          "site gives several effects",
           "robust": "random effects with a CR2 cluster-robust SE by source",
           "single site": "one site: its own estimate, not a pooled result across sites"}
    return f"{what}; {how.get(fit.model, fit.model)}"


def effect_label(study_id: str, effect_id) -> str:
    """``study · what`` for a forest-plot row: the effect id without its study prefix
    (``cosore-x/asymmetric-2009-05`` -> ``cosore-x · asymmetric-2009-05``)."""
    if not isinstance(effect_id, str) or not effect_id:
        return str(study_id)
    rest = effect_id.removeprefix(str(study_id)).lstrip("/:·-_ ")
    return f"{study_id} · {rest}" if rest else str(study_id)


def forest_frame(effects: pd.DataFrame, weights=None) -> pd.DataFrame:
    """One row per effect: label, lnRR with its 95 % CI, percent change, weight, variance note."""
    se = np.sqrt(effects["vi"].to_numpy(float))
    yi = effects["yi"].to_numpy(float)
    labels = [effect_label(s, e) for s, e in zip(effects["study_id"], effects["id"], strict=True)]
    return pd.DataFrame({
        "label": labels, "study": effects["study_id"].to_numpy(), "yi": yi,
        "ci_low": yi - Z95 * se, "ci_high": yi + Z95 * se,
        "percent": 100 * np.expm1(yi), "vi": effects["vi"].to_numpy(float),
        "variance_note": effects["variance_note"].fillna("").to_numpy(),
        "weight": np.ones(len(yi)) if weights is None else np.asarray(weights, float),
        "kind": "study",
    })


def summary_rows(result, label: str = "Pooled") -> pd.DataFrame:
    """The pooled diamond and prediction interval as rows of a forest frame."""
    return pd.DataFrame([{
        "label": label, "study": "", "yi": result.estimate, "ci_low": result.ci_low,
        "ci_high": result.ci_high, "pi_low": result.pi_low, "pi_high": result.pi_high,
        "percent": percent(result.estimate), "vi": result.se ** 2, "variance_note": "",
        "weight": 100.0, "kind": "pooled"}])


def funnel_frame(effects: pd.DataFrame, estimate: float, filled: pd.DataFrame | None = None):
    """Points (yi, se; observed or filled) and the pseudo 95 % funnel around ``estimate``."""
    points = pd.DataFrame({"yi": effects["yi"].to_numpy(float),
                           "se": np.sqrt(effects["vi"].to_numpy(float)), "kind": "observed"})
    if filled is not None and len(filled):
        extra = filled[filled["filled"]]
        points = pd.concat([points, pd.DataFrame({"yi": extra["yi"], "se": np.sqrt(extra["vi"]),
                                                  "kind": "filled"})], ignore_index=True)
    top = float(points["se"].max()) * 1.05 if len(points) else 1.0
    se = np.linspace(0, top, 30)
    funnel = pd.DataFrame({"se": np.concatenate([se, se]),
                           "yi": np.concatenate([estimate - Z95 * se, estimate + Z95 * se]),
                           "side": ["low"] * len(se) + ["high"] * len(se)})
    return points, funnel


# -- one study --------------------------------------------------------------------------


EFFECT_COLUMNS = ["id", "response", "measure", "yi", "percent", "vi", "variance_note", "mean_t",
                  "sd_t", "n_t", "mean_c", "sd_c", "n_c", "units", "depth_top_cm",
                  "depth_bottom_cm", "warming_c", "duration_years", "direction",
                  "source_location", "quality_flag"]


def effects_table(effects: pd.DataFrame) -> pd.DataFrame:
    """A study's effects with lnRR also as percent change, variance notes beside variances."""
    table = effects.assign(percent=[percent(y) if m == "ROM" and pd.notna(y) else np.nan
                                    for y, m in zip(effects["yi"], effects["measure"], strict=True)])
    table = table.reindex(columns=EFFECT_COLUMNS)
    # numbers stay numbers when a column is empty for this study (an empty cell, not "—")
    for column in ("yi", "percent", "vi", "mean_t", "sd_t", "mean_c", "sd_c", "depth_top_cm",
                   "depth_bottom_cm", "warming_c", "duration_years"):
        table[column] = pd.to_numeric(table[column], errors="coerce").astype(float)
    for column in ("n_t", "n_c"):
        table[column] = pd.to_numeric(table[column], errors="coerce").astype("Int64")
    return table


def study_claims(kb: KnowledgeBase, study_id: str) -> pd.DataFrame:
    """The claims a study bears on: relation, claim text and the quote that links them."""
    from ..claims.graph import study_claims as claims_of

    return claims_of(kb, study_id)


#: what the Study page lists about a study: (heading, column), in order
STUDY_FACTS = (("Study type", "study_type"), ("Biome", "biome"), ("Ecosystem", "ecosystem"),
               ("Site", "site"), ("Country", "country"), ("Depth (cm)", None),
               ("Depth class", "depth_class"), ("Warming method", "warming_method"),
               ("Warming (°C)", "warming_c"), ("Warmed medium", "warming_medium"),
               ("Duration (years)", "duration_years"), ("SOC direction", "soc_direction"),
               ("Respiration direction", "respiration_direction"), ("Mechanisms", "mechanisms"),
               ("Origin", "origin"), ("Curator", "curator"), ("Added", "added_at"))


def study_facts(study: dict, labels: dict[str, dict[str, str]]) -> pd.DataFrame:
    """What was studied, as the Study page lists it (field, value): vocabulary terms as
    labels, numbers as written (``2`` not ``2.0``); what the record does not state is left out."""
    rows = []
    for heading, column in STUDY_FACTS:
        value = (depth_text(study.get("depth_top_cm"), study.get("depth_bottom_cm")) or None
                 if column is None else study.get(column))
        if value is None or value == [] or missing(value) or value == "":
            continue
        vocabulary = COLUMN_VOCABULARY.get(column)
        text = (label(value, labels.get(vocabulary)) if vocabulary else
                f"{value:g}" if isinstance(value, float) else str(value))
        rows.append({"field": heading, "value": text})
    return pd.DataFrame(rows, columns=["field", "value"])


def study_choices(found: pd.DataFrame) -> dict[str, str]:
    """Study id -> what the Study page's picker shows: ``id · Author (year) · site``."""
    choices = {}
    for row in found.itertuples(index=False):
        who = short_citation(row.first_author, None, row.year) if isinstance(row.first_author, str) else ""
        where = row.site if isinstance(row.site, str) else ""
        choices[row.id] = " · ".join(part for part in (row.id, who, where) if part)
    return choices


# -- adding -----------------------------------------------------------------------------


def study_record(values: dict) -> dict:
    """A study record from form values: empty fields and empty lists left out."""
    record = {}
    for name, value in values.items():
        if isinstance(value, str):
            value = value.strip()
        if value in (None, "", [], ()):
            continue
        record[name] = list(value) if isinstance(value, tuple) else value
    return record


def import_upload(kb: KnowledgeBase, name: str, data: bytes) -> dict[str, int]:
    """Add an uploaded record file (YAML, JSON, CSV) or ``.bib`` file; return counts per table.

    The file is read from a private temporary folder under its own base name; errors name
    it as the user did, never the server's temporary path.
    """
    shown = os.path.basename(name) or "upload"
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, shown)
        with open(path, "wb") as out:
            out.write(data)
        try:
            return {"sources": kb.import_bib(path)} if shown.endswith(".bib") else kb.add_file(path)
        except KBError as exc:
            raise KBError(str(exc).replace(path, shown).replace(folder + os.sep, "")) from None


# -- downloads --------------------------------------------------------------------------


def bibtex(sources: pd.DataFrame) -> str:
    """The raw BibTeX entries of these sources, one after another."""
    return "\n\n".join(b.strip() for b in sources["bibtex"].dropna()) + "\n"


def source_records(sources: pd.DataFrame) -> list[dict]:
    """Rows of ``kb.sources()`` as plain dicts, a missing value as None."""
    return [{k: None if missing(v) else v for k, v in row.items()}
            for row in sources.to_dict(orient="records")]


def ris(sources: pd.DataFrame) -> str:
    """These sources as RIS (:func:`kb.bib.to_ris`)."""
    return to_ris(source_records(sources))


def csl_json(sources: pd.DataFrame) -> str:
    """These sources as CSL-JSON (:func:`kb.bib.to_csl_json`), pretty-printed UTF-8."""
    return json.dumps(to_csl_json(source_records(sources)), ensure_ascii=False, indent=2) + "\n"


_MARKDOWN_SPECIALS = str.maketrans({c: "\\" + c for c in "\\`*_{}[]()#+-.!|~<>$&:"})
WORD_JOINER = "\u2060"  # invisible, and no line break: splits a pattern without showing
# what Streamlit's Markdown turns into links or icons even when every character is escaped:
# GFM autolinks (https://…, www.…, name@host) and Material icons (:material/…:)
_AUTOLINKS = re.compile(r"(?i)(?<=[a-z])(?=\\?:/)|(?<=www)(?=\\?\.)|(?=@)|(?<=\\:)(?=material)")


def plain(text) -> str:
    """Text safe to put in Markdown: every special character escaped, newlines as spaces.

    Titles and quotes come from users and files; shown through this they stay text (no
    links, images, emphasis, icons, LaTeX or HTML). Escaping alone does not stop
    Streamlit's autolinks and icons, so a word joiner (U+2060, invisible) splits their
    patterns (``https:``, ``www.``, ``@``, ``:material``).
    """
    if not isinstance(text, str):
        return ""
    escaped = " ".join(text.split()).translate(_MARKDOWN_SPECIALS)
    return _AUTOLINKS.sub(WORD_JOINER, escaped)


def reference_markdown(citation: str, doi) -> str:
    """A formatted reference as safe Markdown (:func:`plain`) with its DOI as a doi.org link:
    the ``doi:...`` the style printed becomes the link, or the link is added at the end."""
    text = plain(citation)
    url = doi_url(doi)
    if url is None:
        return text
    shown = plain(f"doi:{doi}")
    link = f"[{shown}]({url})"
    return text.replace(shown, link, 1) if shown in text else f"{text} {link}"


def scope_claims(kb: KnowledgeBase, study_id: str) -> pd.DataFrame:
    """Claims scoped to a study's biome or one of its mechanisms (not necessarily linked)."""
    study = kb.study(study_id)
    found = [kb.claims(biome=study["biome"])] if study.get("biome") else []
    found += [kb.claims(mechanism=m) for m in study.get("mechanisms") or []]
    if not found:
        return pd.DataFrame(columns=["claim_id", "text"])
    claims = pd.concat(found).drop_duplicates("id")
    return pd.DataFrame({"claim_id": claims["id"], "text": claims["text"]})


IMPACT_COLUMNS = ["claim_id", "n_supports_before", "n_supports_after", "n_contradicts_before",
                  "n_contradicts_after", "certainty_before", "certainty_after", "contested_after",
                  "data_before", "data_after"]


# -- claims -----------------------------------------------------------------------------


def claims_overview(kb: KnowledgeBase) -> pd.DataFrame:
    """Every claim with its balance (distinct studies for/against/qualifying), its evidence
    from data (cited syntheses by what their data say now), certainty grade from both and
    whether it is contested (with why), from :mod:`kb.claims.graph`."""
    from ..claims import graph

    G = graph.build_graph(kb)
    states = graph.claim_states(G)
    reasons = graph.contested_claims(G).set_index("id")["reasons"]
    claims = kb.claims()[["id", "text", "section"]]
    table = claims.join(states, on="id")
    table["contested"] = table["contested"].fillna(False).astype(bool)
    table["why contested"] = table["id"].map(reasons).fillna("")
    return table


@dataclass(frozen=True)
class ClaimView:
    """One claim as the Claims page shows it (plain values, so it caches): its evidence from
    the literature (``balance``, ``literature_grade``, ``evidence``) and from data
    (``data_balance``, ``data``: the cited syntheses run now), and the grade of both
    (``grade``) with the reasons for it (``reasons``: the literature's GRADE domains, then
    how the bodies of evidence combine)."""

    text: str
    balance: dict
    grade: str
    reasons: pd.DataFrame
    contested: list
    evidence: pd.DataFrame
    dot: str
    literature_grade: str = "no evidence"
    data_balance: dict | None = None
    data: pd.DataFrame | None = None


#: the columns of a claim's evidence from data the Claims page shows
DATA_VIEW_COLUMNS = ["synthesis_id", "relation", "expects", "data_relation", "result", "certainty",
                     "certainty_reasons", "title", "note"]


def claim_view(kb: KnowledgeBase, claim_id: str) -> ClaimView:
    from ..claims import graph

    G = graph.build_graph(kb)
    report = graph.claim_report(G, claim_id)
    reasons = (report.certainty.to_frame() if report.certainty
               else pd.DataFrame(columns=["domain", "levels", "text"]))
    if report.overall is not None and report.overall.reasons:
        combined = pd.DataFrame({"domain": "literature and data", "levels": 0,
                                 "text": list(report.overall.reasons)})
        reasons = pd.concat([reasons, combined], ignore_index=True) if len(reasons) else combined
    evidence = report.evidence[["study_id", "relation", "via", "study_type", "biome",
                                "soc_direction", "quote"]]
    literature = report.certainty.grade if report.certainty else "no evidence"
    return ClaimView(report.claim.get("text", ""), report.balance, report.grade, reasons,
                     report.contested, evidence, graph.to_dot(graph.claim_subgraph(G, claim_id)),
                     literature, report.data_balance, report.data[DATA_VIEW_COLUMNS])


# -- synthesis --------------------------------------------------------------------------


GROUPINGS = ("biome", "ecosystem", "mechanism", "depth_class", "warming_bin", "study_type")


def synthesis_rows(kb: KnowledgeBase, response: str) -> pd.DataFrame:
    """Effects on ``response`` plus direction-only studies (:func:`kb.claims.graph.synthesis_rows`)."""
    from ..claims.graph import synthesis_rows as rows

    return rows(kb, response=response)


def synthesis_file_stem(response: str, by: list[str], model: str) -> str:
    """``synthesis-<response>-by-<facets>-<model>``: a download's name says what it holds."""
    return f"synthesis-{response}-by-{'-'.join(by)}-{model}"


def group_labels(table: pd.DataFrame, by: list[str]) -> list[str]:
    """``boreal · forest`` for each row of a synthesis table."""
    return [" · ".join(str(v) for v in values) for values in table[list(by)].itertuples(index=False)]


def group_effects(rows: pd.DataFrame, by: list[str], label: str | None) -> pd.DataFrame:
    """The poolable effects of one group of a synthesis (all groups when ``label`` is None)."""
    from evidence.synthesis import prepare_groups

    frame = prepare_groups(rows, by) if by else rows
    if label is not None:
        frame = frame[[lbl == label for lbl in group_labels(frame, by)]]
    return poolable(frame.drop_duplicates(subset=["id"]) if "id" in frame else frame)


def evidence_map_frame(synthesis, studies: pd.DataFrame, rows: str, columns: str,
                       vocabularies: dict[str, list[str]],
                       labels: dict[str, dict[str, str]] | None = None) -> pd.DataFrame:
    """Study counts for two facets in long form (one row per cell, zeros kept), each value
    also as its label (``row_label``, ``column_label``)."""
    table = synthesis.evidence_map(studies.assign(study_id=studies["id"]), rows, columns,
                                   row_values=vocabularies.get(rows),
                                   column_values=vocabularies.get(columns))
    counts = table.stack().rename("n_studies").reset_index()
    return counts.assign(row_label=_facet_labels(counts[rows], rows, labels),
                         column_label=_facet_labels(counts[columns], columns, labels))


#: facets whose name does not read as a heading once its underscores are spaces
FACET_TITLES = {"soc_direction": "SOC direction", "warming_bin": "Warming (°C)",
                "depth_class": "Depth class", "study_type": "Study type"}


def facet_title(facet: str) -> str:
    """A facet as a heading: ``soc_direction`` -> ``SOC direction``."""
    return FACET_TITLES.get(facet) or facet.replace("_", " ").capitalize()


def _facet_labels(values: pd.Series, facet: str, labels: dict[str, dict[str, str]] | None) -> list[str]:
    names = (labels or {}).get(FACET_VOCABULARY.get(facet, ""))
    return [label(v, names) for v in values]


def cell_studies(studies: pd.DataFrame, rows: str, columns: str, row_value, column_value) -> pd.DataFrame:
    """The studies an evidence-map cell counts (as :func:`evidence.synthesis.evidence_map`
    counts them: a study in each of its mechanisms, warming in bins, a missing value as
    ``not_reported``), in the order of ``studies``."""
    from evidence.synthesis import prepare_groups

    if studies.empty:
        return studies
    data = prepare_groups(studies.assign(study_id=studies["id"]), [rows, columns])
    inside = data[(data[rows].astype(str) == str(row_value)) & (data[columns].astype(str) == str(column_value))]
    return studies[studies["id"].isin(set(inside["id"]))]


def chart_selection(state, name: str) -> list[dict]:
    """The points selected in a chart (``st.altair_chart(..., on_select="rerun")``'s state)
    by its selection parameter ``name``: one dict of field values per point; none before a
    click (Streamlit then gives an empty mapping)."""
    selection = (state or {}).get("selection") or {}
    chosen = selection.get(name)
    return [dict(point) for point in chosen] if isinstance(chosen, list) else []


#: evidence-map axes whose values a vocabulary lists (so empty cells show)
MAP_FACETS = ("biome", "ecosystem", "mechanism", "depth_class", "study_type", "soc_direction")


def leave_one_site_out(effects: pd.DataFrame, model: str = "multilevel",
                       method: str = "REML") -> pd.DataFrame:
    """The pooled lnRR with each site (``study_id``) left out in turn, fitted as the group is:
    omitted site, estimate, CI and I² (empty with fewer than two sites)."""
    sites = list(dict.fromkeys(effects["study_id"]))
    rows = []
    for site in sites if len(sites) > 1 else []:
        fit = evidence.fit_group(effects[effects["study_id"] != site], model=model, method=method)
        rows.append({"omitted": site, "estimate": fit.estimate, "ci_low": fit.ci_low,
                     "ci_high": fit.ci_high, "i2": fit.i2, "model": fit.model})
    return pd.DataFrame(rows, columns=["omitted", "estimate", "ci_low", "ci_high", "i2", "model"])


def egger_line(egger) -> str:
    """``Egger's test: z = 1.23, p = 0.219``."""
    stat = "z" if np.isnan(egger.df) else f"t({egger.df:g})"
    return f"Egger's test: {stat} = {egger.statistic:.2f}, p = {egger.pvalue:.3g}"

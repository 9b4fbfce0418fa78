"""A synthesis report: what was run and what came of it, in one HTML or PDF file.

:func:`build_report` runs a synthesis (the rows of :func:`kb.claims.graph.synthesis_rows`,
:func:`evidence.synthesize`, :func:`kb.claims.sensitivity.sensitivity_table`, the forest
and funnel plots of :mod:`kb.figures`) and keeps everything a reader needs:

- a methods paragraph written from the fit that was run (model, τ² estimator, test and CI,
  how dependence was handled, effects, sites and sources, every variance assumption with
  its count, the software and its versions), naming the R call it equals only where the
  golden tests (``tests/golden``) compare the two;
- the synthesis table (:func:`kb.claims.notes.table_layout`) with its footnotes, each
  group's certainty with its reasons, the figures, the sensitivity table and which groups
  are fragile;
- the reference list (pybtex, :meth:`KnowledgeBase.citation`) of every source behind the
  report's rows, each naming its studies, so every included study is named;
- the exact query, the command that re-runs it and a fingerprint of the data it used
  (:func:`fingerprint`): the same base gives the same fingerprint and the same report.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
from dataclasses import dataclass, field
from html import escape
from importlib import metadata

import numpy as np
import pandas as pd

from evidence import METHODS, EvidenceError
from evidence.certainty import DOMAINS, assumed_variance
from evidence.synthesis import SINGLE_SITE, VOTES_ONLY, check_model, synthesize

from .. import figures, schema
from ..errors import KBError
from ..render import MISSING, readable_cells, records, render_table
from .graph import synthesis_rows
from .notes import HEADERS, caption, export_notes, facet_labels, table_layout

#: report file formats, by file extension
REPORT_FORMATS = {".html": "html", ".htm": "html", ".pdf": "pdf"}
#: the synthesis columns the report's table shows (the rest: the CSV export, the reasons below)
TABLE_COLUMNS = ["model", "k_effects", "n_sites", "n_sources", "n_studies", "estimate", "ci_low",
                 "ci_high", "percent_change", "pi_low", "pi_high", "tau2", "i2", "q_pvalue",
                 "n_assumed_variance", "certainty"]
SENSITIVITY_COLUMNS = ["scenario", "dropped", "k_effects", "estimate", "ci_low", "ci_high",
                       "percent_change", "certainty", "changes", "fragile"]
#: what tests/golden compares with R: the versions its JSON files record, and for each model
#: the estimators and tests it covers (tests/golden/README.md)
METAFOR_VERSION = "3.8-1"
CLUBSANDWICH_VERSION = "0.5.8"
GOLDEN = {"multilevel": (("REML", "ML"), ("z", "t")), "independent": (METHODS, ("z", "knha")),
          "robust": (("REML", "DL", "FE"), ("t",))}
ESTIMATORS = {"REML": "restricted maximum likelihood (REML)", "ML": "maximum likelihood (ML)",
              "DL": "the DerSimonian–Laird estimator (DL)", "PM": "the Paule–Mandel estimator (PM)",
              "HS": "the Hunter–Schmidt estimator (HS)", "SJ": "the Sidik–Jonkman estimator (SJ)",
              "HE": "the Hedges estimator (HE)", "EB": "the empirical Bayes estimator (EB)",
              "FE": "a fixed-effect model (FE, τ² = 0)"}
TESTS = {"z": "z test (Wald-type 95 % CI from the normal distribution)",
         "t": "t test on k − 1 degrees of freedom (95 % CI from the t distribution)",
         "knha": "Knapp–Hartung t test (95 % CI from the t distribution)"}
SOFTWARE = ("soc-kb", "numpy", "scipy", "pandas", "matplotlib", "pybtex")
FINGERPRINT_CHARS = 16  # of the SHA-256 hex digest: ample to tell two bases apart
#: columns left out of the fingerprint: when a row was written, not what it says (two copies
#: of the shipped base made a second apart hold the same data)
UNPRINTED = ("added_at",)


@dataclass(frozen=True)
class ReportQuery:
    """What a report runs: the response, the grouping, the study filters and the model."""

    response: str
    by: tuple[str, ...]
    filters: dict
    model: str = "multilevel"
    method: str = "REML"
    test: str | None = None

    def to_dict(self) -> dict:
        return {"response": self.response, "by": list(self.by), "filters": _plain(self.filters),
                "model": self.model, "method": self.method, "test": self.test}

    def command(self, output: str = "report.html") -> str:
        """The ``soc-kb report`` command that re-runs this query."""
        words = ["soc-kb", "report", "--response", self.response, "--by", ",".join(self.by),
                 "--model", self.model, "--method", self.method]
        words += ["--test", self.test] if self.test else []
        for name, value in sorted(self.filters.items()):
            option = "--" + name.replace("_", "-")
            if value is True:
                words.append(option)
            elif isinstance(value, tuple | list) and len(value) == 2 and name != "response":
                words += [option, ":".join("" if v is None else f"{v:g}" for v in value)]
            else:
                words += [option, ",".join(map(str, value)) if isinstance(value, list | tuple)
                          else str(value)]
        return " ".join(_quoted(w) for w in [*words, "--output", output])


@dataclass(frozen=True)
class Reference:
    """One source of the reference list and the studies (sites) of the report it holds."""

    key: str | None  # None: studies without a source record
    text: str
    studies: tuple[str, ...]


@dataclass(frozen=True)
class SynthesisReport:
    """Everything a report shows; :meth:`to_html` and :meth:`to_pdf` lay it out."""

    query: ReportQuery
    title: str
    methods: str
    table: pd.DataFrame
    table_options: dict
    certainty: tuple  # (group label, grade, reasons)
    sensitivity: pd.DataFrame | None
    sensitivity_options: dict
    sensitivity_lines: tuple
    references: tuple[Reference, ...]
    study_ids: tuple[str, ...]
    fingerprint: str
    schema_version: int
    versions: dict
    figures: dict = field(default_factory=dict, compare=False)  # name -> (Figure, caption)
    problems: tuple = ()  # (section, why it is missing)

    def to_html(self) -> str:
        return _html(self)

    def to_pdf(self) -> bytes:
        return _pdf(self)

    def write(self, fmt: str) -> bytes:
        """The report as the bytes of an ``fmt`` file (html or pdf)."""
        return self.to_html().encode("utf-8") if fmt == "html" else self.to_pdf()


def report_format(path: str) -> str:
    """``html`` or ``pdf`` from a file name's extension; a one-line error otherwise."""
    suffix = "." + str(path).rpartition(".")[2].lower() if "." in str(path) else ""
    if suffix not in REPORT_FORMATS:
        raise KBError(f"--output: '{str(path)[-60:]}' must end in .html or .pdf (the report's format)")
    return REPORT_FORMATS[suffix]


def report_file_name(response: str, by, model: str, fmt: str) -> str:
    """``report-<response>-by-<facets>-<model>.<fmt>``: the name says what it holds."""
    return f"report-{response}-by-{'-'.join(by)}-{model}.{fmt}"


# -- building ---------------------------------------------------------------------------------


def build_report(store, response: str, by, *, model: str = "multilevel", method: str = "REML",
                 test: str | None = None, **filters) -> SynthesisReport:
    """Run the synthesis of ``response`` by ``by`` (one or two facets) on the rows the
    ``filters`` select, and compose its report. Raises :class:`KBError` (one line) when no
    row matches or the model refuses the options; a figure or the sensitivity analysis that
    cannot be made is left out with the reason in the report."""
    by = (by,) if isinstance(by, str) else tuple(by)
    query = ReportQuery(response, by, dict(filters), model, method, test)
    try:
        check_model(model, method, test)
    except EvidenceError as exc:
        raise KBError(str(exc)) from None
    responses = store.vocabulary_names("responses")
    if response not in responses:
        raise KBError(f"--response: unknown response '{str(response)[:40]}'; use one of "
                      f"{', '.join(responses)}")
    rows = synthesis_rows(store, response=response, **filters)
    if rows.empty:
        raise KBError(f"no effects or direction-only studies on '{response}' match; widen the "
                      "filters or choose another --response")
    try:
        table = synthesize(rows, list(by), method=method, test=test, model=model)
    except EvidenceError as exc:
        raise KBError(str(exc)) from None
    labels = facet_labels(store, [*by, "response"])
    response_label = labels.pop("response").get(response, response)
    title = caption(response_label, list(by), model, method)
    shown = table[[*by, *TABLE_COLUMNS]]
    options = table_layout(shown, labels, export_notes(rows, table, list(by), model, method, test),
                           title)
    references = _references(store, rows)
    sensitivity = _sensitivity(store, query, labels)
    figs, problems = _figures(rows, by, model, method, response_label)
    return SynthesisReport(
        query=query, title=f"Synthesis report: {title}",
        methods=methods_paragraph(rows, table, by, model, method, test, response_label),
        table=shown, table_options=options, certainty=_certainty(table, by, labels),
        sensitivity=sensitivity[0], sensitivity_options=sensitivity[1],
        sensitivity_lines=sensitivity[2], references=references,
        study_ids=tuple(sorted(_study_ids(rows))),
        fingerprint=fingerprint(rows, references, query), schema_version=schema.schema_version(),
        versions=software_versions(), figures=figs,
        problems=tuple(problems + sensitivity[3]))


def fingerprint(rows: pd.DataFrame, references=(), query: ReportQuery | None = None) -> str:
    """SHA-256 (first 16 hex digits) over the schema version, the query and a canonical
    dump of the rows and references the report used: every column (but
    :data:`UNPRINTED`), sorted by name, and every value as JSON (floats as their exact
    repr). Equal data give equal fingerprints."""
    frame = rows.reindex(sorted(set(rows.columns) - set(UNPRINTED)), axis=1)
    digest = hashlib.sha256(f"schema {schema.schema_version()}\n".encode())
    if query is not None:
        digest.update(json.dumps(query.to_dict(), sort_keys=True).encode("utf-8"))
    for record in records(frame):
        digest.update(json.dumps(record, sort_keys=True, ensure_ascii=False, default=str)
                      .encode("utf-8"))
        digest.update(b"\n")
    for reference in references:
        digest.update(f"{reference.key}\t{reference.text}\t{','.join(reference.studies)}\n".encode())
    return digest.hexdigest()[:FINGERPRINT_CHARS]


def software_versions() -> dict[str, str]:
    """The installed versions of the software behind the numbers."""
    versions = {}
    for name in SOFTWARE:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:  # run from a source tree without installing
            versions[name] = "not installed"
    return versions


def _study_ids(rows: pd.DataFrame) -> set[str]:
    return {str(s) for s in rows["study_id"].dropna()}


def _references(store, rows: pd.DataFrame) -> tuple[Reference, ...]:
    """Every source behind the rows, formatted, with its studies; the studies without a
    source record as one last entry."""
    studies = rows.assign(source_key=rows["source_key"].where(rows["source_key"].notna(), None))
    keyed = studies[studies["source_key"].notna()].groupby("source_key")["study_id"]
    out = [Reference(str(key), store.citation(str(key)), tuple(sorted(map(str, set(ids)))))
           for key, ids in keyed]
    out.sort(key=lambda r: (r.text.casefold(), r.key))
    loose = sorted(map(str, set(studies.loc[studies["source_key"].isna(), "study_id"].dropna())))
    if loose:
        out.append(Reference(None, "Studies without a source record", tuple(loose)))
    return tuple(out)


def _certainty(table: pd.DataFrame, by, labels: dict) -> tuple:
    return tuple((_group(row, by, labels), row["certainty"] or MISSING, row["certainty_reasons"] or "")
                 for row in table.to_dict(orient="records"))


def _group(row: dict, by, labels: dict) -> str:
    return " · ".join(str(labels.get(f, {}).get(row[f], row[f])) for f in by)


def _sensitivity(store, query: ReportQuery, labels: dict):
    """(table, render options, note lines, problems) of the standard scenarios."""
    from .sensitivity import sensitivity_table

    try:
        result = sensitivity_table(store, query.response, list(query.by), model=query.model,
                                   method=query.method, test=query.test, **query.filters)
    except KBError as exc:
        return None, {}, (), [("sensitivity", str(exc))]
    table = result.to_frame()[[*query.by, *SENSITIVITY_COLUMNS]]
    lines = [f"{row['name']}: {row['description']}" for row in
             result.scenarios.to_dict(orient="records")]
    fragile = [f"Fragile: {_group(row, query.by, labels)} — {row['fragile_under']}"
               for row in result.groups.to_dict(orient="records") if row["fragile"]]
    lines += fragile or ["No group changes its sign, significance or certainty under these "
                         "scenarios."]
    return table, table_layout(table, labels, lines), tuple(lines), []


def _figures(rows: pd.DataFrame, by, model: str, method: str, response_label: str):
    """The forest plot (one block per group of a single facet) and the funnel plot."""
    made, problems = {}, []
    facet = by[0] if len(by) == 1 else None
    groups = f", one block per {HEADERS.get(facet, facet).lower()}" if facet else ""
    plans = {"forest": (lambda: figures.forest_figure(rows, model=model, method=method, by=facet,
                                                      title=response_label),
                        f"Forest plot: each effect (or site) with its 95 % CI{groups}; the "
                        f"diamonds are the {model} pooled estimates with their prediction "
                        "intervals; † marks a number resting on an assumed variance."),
             "funnel": (lambda: figures.funnel_figure(rows, model=model, method=method,
                                                      title=f"Funnel plot: {response_label}"),
                        "Funnel plot of all pooled effects (contours at p = 0.10, 0.05, 0.01) "
                        "with the trim-and-fill effects as open circles; trim and fill treats "
                        "effects as independent.")}
    for name, (draw, text) in plans.items():
        try:
            made[name] = (draw(), text)
        except (KBError, EvidenceError) as exc:
            problems.append((f"{name} plot", str(exc)))
    return made, problems


# -- the methods paragraph --------------------------------------------------------------------


def methods_paragraph(rows: pd.DataFrame, table: pd.DataFrame, by, model: str, method: str,
                      test: str | None, response_label: str) -> str:
    """The methods as a paper states them, from what was run on ``rows``."""
    method, test = check_model(model, method, test)
    pooled = _poolable(rows)
    sites = rows.loc[pooled, "study_id"]
    sources = rows.loc[pooled, "source_key"].where(rows.loc[pooled, "source_key"].notna(), sites)
    groups = " and ".join(HEADERS.get(f, f).lower() for f in by)
    votes_only = len(_study_ids(rows)) - len(set(sites.dropna().astype(str)))
    parts = [
        f"We synthesised the effect of warming on {_in_sentence(response_label)} as the log response "
        f"ratio (lnRR, warmed vs control) by {groups}. {int(pooled.sum())} effects from "
        f"{sites.nunique()} sites in {sources.nunique()} sources had a sampling variance and were "
        f"pooled; {votes_only} further stud{'y' if votes_only == 1 else 'ies'} without a "
        "usable variance (an lnRR without one, or only a stated direction) count in the vote "
        "columns only (one vote per study, two-sided sign test).",
        _model_sentences(model, method, test) if pooled.any() else
        f"No group had a poolable effect, so the {model} model was not fitted.",
        _group_kinds(table),
        _variance_sentence(rows[pooled]),
        "Certainty was graded per group with GRADE adapted to this field ("
        + ", ".join(DOMAINS[1:]) + "; docs/synthesis.md); the reasons are listed with each "
        "grade. Sensitivity: each group was re-run with the SRDB error read as an SD "
        "(n = 3, 4, 6), without confounded or quality-flagged contrasts, and leaving one site "
        "out at a time; a group is fragile when a plausible scenario changes its sign, "
        "significance or certainty.",
        "Computed with " + ", ".join(f"{name} {version}" for name, version in
                                     software_versions().items()) + ".",
    ]
    return " ".join(p for p in parts if p)


def _in_sentence(label: str) -> str:
    """A label inside a sentence: "soil respiration (annual)", but "SOC stock" as it is."""
    return label if label[:2].isupper() else label[:1].lower() + label[1:]


def _model_sentences(model: str, method: str, test: str) -> str:
    estimator = ESTIMATORS.get(method, method)
    if model == "multilevel":
        text = ("Within each group, effects were pooled with a three-level random-effects model "
                "(effects nested in sites, sites nested in sources), the variance components "
                f"estimated by {estimator}, with a {TESTS[test]}; τ² is the sum of the three "
                "components, I² the multilevel I² of Cheung (2014), Q Cochran's test, and the "
                "95 % prediction interval adds τ² to the estimate's variance")
        call = (f'metafor {METAFOR_VERSION} rma.mv(yi, vi, random = ~ 1 | source/site/effect, '
                f'method = "{method}", test = "{test}")')
    elif model == "independent":
        text = ("Within each group, effects were pooled with a random-effects model that treats "
                f"every effect as independent (also effects of one site), τ² estimated by "
                f"{estimator}, with a {TESTS[test]}; dependence between effects of one site or "
                "source is not modelled, so intervals may be too narrow")
        call = f'metafor {METAFOR_VERSION} rma(yi, vi, method = "{method}", test = "{test}")'
    else:
        text = ("Within each group, a random-effects working model (τ² by "
                f"{estimator}) gave the estimate, and its standard error is cluster-robust by "
                "source (CR2) with a t test on Satterthwaite degrees of freedom; a group with "
                "one source gets no estimate")
        call = (f'clubSandwich {CLUBSANDWICH_VERSION} coef_test(rma(yi, vi, method = "{method}"), '
                'vcov = "CR2", cluster = source, test = "Satterthwaite")')
    methods, tests = GOLDEN[model]
    if method in methods and test in tests:
        return f"{text}, equivalent to {call}."
    return f"{text} (this estimator is not among the cases compared with R)."


def _group_kinds(table: pd.DataFrame) -> str:
    kinds = table["model"].value_counts()
    single, votes = int(kinds.get(SINGLE_SITE, 0)), int(kinds.get(VOTES_ONLY, 0))
    parts = []
    if single:
        parts.append(f"{single} group{'s' if single > 1 else ''} with a single site report that "
                     "site's own estimate, not a pooled multi-site result (certainty at most Low)")
    if votes:
        parts.append(f"{votes} group{'s' if votes > 1 else ''} without a poolable effect "
                     f"{'have' if votes > 1 else 'has'} votes only")
    return ("Of the " + f"{len(table)} groups, " + "; ".join(parts) + ".") if parts else ""


def _variance_sentence(pooled: pd.DataFrame) -> str:
    if pooled.empty:
        return "No effect had a variance, so nothing was pooled."
    assumed = np.asarray(assumed_variance(pooled), dtype=bool)
    if not assumed.any():
        return f"Every pooled effect's variance comes from the reported data (k = {len(pooled)})."
    notes = pooled.loc[assumed, "variance_note"].fillna("no note").value_counts()
    listed = "; ".join(f"{count} effect{'s' if count > 1 else ''}: {note}"
                       for note, count in notes.items())
    return (f"{int(assumed.sum())} of the {len(pooled)} pooled effects rest on an assumed "
            f"sampling variance ({listed}).")


def _poolable(rows: pd.DataFrame) -> np.ndarray:
    yi = pd.to_numeric(rows["yi"], errors="coerce")
    vi = pd.to_numeric(rows["vi"], errors="coerce")
    return (np.isfinite(yi) & np.isfinite(vi) & (vi > 0)).to_numpy()


# -- HTML -------------------------------------------------------------------------------------

_CSS = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;
line-height:1.45;color:#222}table{border-collapse:collapse;font-size:.85em;margin:1em 0;
display:block;overflow-x:auto}
th,td{border-top:1px solid #ccc;padding:.25em .5em;vertical-align:top}th{border-bottom:2px solid #333}
caption{font-weight:600;text-align:left;padding:.3em 0}.table-note{font-size:.8em;color:#444;margin:.2em 0}
figure{margin:1.5em 0}figure svg{max-width:100%;height:auto}figcaption{font-size:.85em;color:#444}
code,pre{background:#f4f4f4;padding:.1em .3em}pre{padding:.6em;overflow-x:auto;white-space:pre-wrap}
dt{font-weight:600}.refs li{margin-bottom:.4em}.problem{color:#8a4b00}"""


def _html(report: SynthesisReport) -> str:
    parts = [f"<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
             f"<title>{escape(report.title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>",
             f"<h1>{escape(report.title)}</h1>",
             "<h2>Methods</h2>", f"<p id=\"methods\">{escape(report.methods)}</p>",
             "<h2>Results</h2>", render_table(report.table, "html", **report.table_options),
             "<h3>Certainty of each group, and why</h3>", "<dl id=\"certainty\">",
             *[f"<dt>{escape(group)}: {escape(grade)}</dt><dd>{escape(reasons)}</dd>"
               for group, grade, reasons in report.certainty], "</dl>",
             "<h2>Figures</h2>", *[_html_figure(fig, text) for fig, text in report.figures.values()],
             "<h2>Sensitivity</h2>", _html_sensitivity(report),
             *[f'<p class="problem">Not shown — {escape(section)}: {escape(why)}</p>'
               for section, why in report.problems],
             "<h2>References</h2>", _html_references(report),
             "<h2>Reproducing this report</h2>", _html_query(report), "</body>\n</html>\n"]
    return "\n".join(parts)


def _html_figure(fig, text: str) -> str:
    svg = figures.figure_bytes(fig, "svg").decode("utf-8")
    svg = svg[svg.index("<svg"):]  # inline: no XML declaration or doctype inside HTML
    return f"<figure>\n{svg}\n<figcaption>{escape(text)}</figcaption>\n</figure>"


def _html_sensitivity(report: SynthesisReport) -> str:
    if report.sensitivity is None:
        return ""
    return render_table(report.sensitivity, "html", **report.sensitivity_options)


def _html_references(report: SynthesisReport) -> str:
    items = []
    for ref in report.references:
        studies = ", ".join(ref.studies)
        items.append(f'<li id="ref-{escape(ref.key or "none")}">{escape(ref.text)} '
                     f"<br><small>Studies: {escape(studies)}</small></li>")
    return f'<ol class="refs">\n{chr(10).join(items)}\n</ol>'


def _html_query(report: SynthesisReport) -> str:
    versions = ", ".join(f"{k} {v}" for k, v in report.versions.items())
    return "\n".join([
        "<dl id=\"query\">",
        f"<dt>Query</dt><dd><code>{escape(json.dumps(report.query.to_dict(), sort_keys=True))}</code></dd>",
        f"<dt>Command</dt><dd><pre>{escape(report.query.command())}</pre></dd>",
        f"<dt>Data fingerprint</dt><dd><code>{escape(report.fingerprint)}</code> (SHA-256 over "
        f"the {len(report.study_ids)} studies' rows, their references, the query and schema "
        f"version {report.schema_version}; equal on the same base)</dd>",
        f"<dt>Software</dt><dd>{escape(versions)}</dd>", "</dl>"])


# -- PDF --------------------------------------------------------------------------------------

_PDF_FONT = "DejaVu"


def _pdf(report: SynthesisReport) -> bytes:
    """The report as a PDF (fpdf2, pure Python; the DejaVu fonts matplotlib ships, so τ², σ²,
    ≥ and — print; figures as 300 dpi PNG)."""
    from fpdf import FPDF

    pdf = FPDF(format="A4")
    _pdf_fonts(pdf)
    pdf.set_auto_page_break(True, margin=15)
    pdf.add_page()
    pdf.set_font(_PDF_FONT, "B", 14)
    pdf.multi_cell(0, 7, report.title, new_x="LMARGIN", new_y="NEXT")
    _pdf_heading(pdf, "Methods")
    _pdf_text(pdf, report.methods)
    _pdf_heading(pdf, "Results")
    _pdf_table(pdf, report.table, report.table_options)
    _pdf_heading(pdf, "Certainty of each group, and why", size=10)
    for group, grade, reasons in report.certainty:
        _pdf_text(pdf, f"{group}: {grade}", style="B")
        _pdf_text(pdf, reasons, size=8)
    _pdf_heading(pdf, "Figures")
    for fig, text in report.figures.values():
        _pdf_figure(pdf, fig, text)
    _pdf_heading(pdf, "Sensitivity")
    if report.sensitivity is not None:
        _pdf_table(pdf, report.sensitivity, report.sensitivity_options)
    for section, why in report.problems:
        _pdf_text(pdf, f"Not shown — {section}: {why}", size=8)
    _pdf_heading(pdf, "References")
    for number, ref in enumerate(report.references, 1):
        _pdf_text(pdf, f"[{number}] {ref.text}", size=8)
        _pdf_text(pdf, "Studies: " + ", ".join(ref.studies), size=7)
    _pdf_heading(pdf, "Reproducing this report")
    _pdf_text(pdf, "Query: " + json.dumps(report.query.to_dict(), sort_keys=True), size=8)
    _pdf_text(pdf, "Command: " + report.query.command(), size=8)
    _pdf_text(pdf, f"Data fingerprint: {report.fingerprint} (SHA-256 over the "
                   f"{len(report.study_ids)} studies' rows, their references, the query and "
                   f"schema version {report.schema_version})", size=8)
    _pdf_text(pdf, "Software: " + ", ".join(f"{k} {v}" for k, v in report.versions.items()), size=8)
    return bytes(pdf.output())


def _pdf_fonts(pdf) -> None:
    from pathlib import Path

    import matplotlib

    fonts = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
    for style, name in (("", "DejaVuSans.ttf"), ("B", "DejaVuSans-Bold.ttf"),
                        ("I", "DejaVuSans-Oblique.ttf")):
        pdf.add_font(_PDF_FONT, style, str(fonts / name))


def _pdf_heading(pdf, text: str, size: int = 12) -> None:
    pdf.ln(3)
    pdf.set_font(_PDF_FONT, "B", size)
    pdf.multi_cell(0, size * 0.5, text, new_x="LMARGIN", new_y="NEXT")
    pdf.ln(1)


def _pdf_text(pdf, text: str, size: int = 9, style: str = "") -> None:
    pdf.set_font(_PDF_FONT, style, size)
    pdf.multi_cell(0, size * 0.45, _breakable(text), new_x="LMARGIN", new_y="NEXT", align="L")


def _breakable(text: str) -> str:
    """Long unbroken runs (paths, digests, R calls) get break points so a line can wrap."""
    return re.sub(r"(\S{60})(?=\S)", lambda m: m.group(1) + "\u200b", text)


def _pdf_table(pdf, frame: pd.DataFrame, options: dict) -> None:
    """A table on a landscape page of its own, columns as wide as their longest word."""
    headers, rows, numeric = readable_cells(frame, **{k: v for k, v in options.items()
                                                      if k not in ("notes", "caption")})
    pdf.add_page(orientation="L")
    if options.get("caption"):
        _pdf_text(pdf, options["caption"], size=9, style="B")
    widths = [max([_longest_word(h), *(min(len(c), 40) for c in column)]) + 2
              for h, column in zip(headers, zip(*rows, strict=True) if rows else
                                   [()] * len(headers), strict=True)]
    pdf.set_font(_PDF_FONT, "", 6.5)
    with pdf.table(text_align=["RIGHT" if n else "LEFT" for n in numeric], line_height=3,
                   col_widths=widths, first_row_as_headings=True,
                   headings_style=_headings_style()) as grid:
        for cells in [headers, *rows]:
            row = grid.row()
            for cell in cells:
                row.cell(_breakable(cell))
    for note in options.get("notes", ()):
        _pdf_text(pdf, note, size=7)
    pdf.add_page(orientation="P")


def _longest_word(text: str) -> int:
    return max((len(word) for word in text.split()), default=1)


def _headings_style():
    from fpdf.fonts import FontFace

    return FontFace(family=_PDF_FONT, emphasis="BOLD")


def _pdf_figure(pdf, fig, text: str) -> None:
    png = figures.figure_bytes(fig, "png")
    width_in, height_in = fig.get_size_inches()
    room_w = pdf.w - pdf.l_margin - pdf.r_margin
    room_h = pdf.h - pdf.t_margin - pdf.b_margin - 20  # the caption below it
    scale = min(room_w / width_in, room_h / height_in)
    w, h = width_in * scale, height_in * scale
    if pdf.get_y() + h > pdf.h - pdf.b_margin - 15:
        pdf.add_page()
    pdf.image(io.BytesIO(png), x=pdf.l_margin, w=w, h=h)
    _pdf_text(pdf, text, size=8, style="I")
    pdf.ln(2)


# -- small helpers ----------------------------------------------------------------------------


def _plain(filters: dict) -> dict:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in sorted(filters.items())}


def _quoted(word: str) -> str:
    return word if re.fullmatch(r"[\w.,:/=+-]+", word) else "'" + word.replace("'", "'\\''") + "'"

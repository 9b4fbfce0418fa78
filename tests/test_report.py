"""``soc-kb report`` and kb.claims.report: the reference list names every included study,
the methods paragraph names the model actually run, no nan/None/<NA> reaches the report,
the figures are embedded, and the query and fingerprint reproduce it."""

import io
import json
import re
import shlex
from html import escape
from pathlib import Path

import pytest
from click.testing import CliRunner
from pypdf import PdfReader

from evidence.synthesis import synthesize
from kb import KnowledgeBase
from kb.claims import graph
from kb.claims.report import (
    CLUBSANDWICH_VERSION,
    METAFOR_VERSION,
    build_report,
    fingerprint,
    methods_paragraph,
    report_file_name,
)
from kb.cli import cli

RESPONSE = "soil_respiration"
SMALL = {"biome": "mediterranean"}  # a few sites: a quick report for the tests that only read it


@pytest.fixture(scope="module")
def full(seeded_file):
    """The annual-Rs report by biome on the shipped base, and the rows it used."""
    with KnowledgeBase(seeded_file) as kb:
        report = build_report(kb, RESPONSE, ["biome"])
        rows = graph.synthesis_rows(kb, response=RESPONSE)
    return report, rows


@pytest.fixture(scope="module")
def html(full):
    return full[0].to_html()


def text_outside_figures(html: str) -> str:
    return re.sub(r"<svg.*?</svg>", "", html, flags=re.DOTALL)


def test_the_reference_list_names_every_included_study(full, html, seeded_file):
    report, rows = full
    included = set(rows["study_id"].astype(str))
    named = {study for ref in report.references for study in ref.studies}
    assert named == included == set(report.study_ids)
    for study in included:
        assert re.search(rf"Studies: [^<]*\b{re.escape(study)}\b", html), study
    sources = set(rows["source_key"].dropna())
    assert {ref.key for ref in report.references if ref.key} == sources
    with KnowledgeBase(seeded_file) as kb:
        for key in sources:  # each source's pybtex reference, escaped, in the list
            assert escape(kb.citation(key)) in html, key


def test_the_methods_paragraph_states_what_was_run(full, html):
    report, rows = full
    text = report.methods
    poolable = rows[rows["yi"].notna() & (rows["vi"].astype(float) > 0)]
    sources = poolable["source_key"].fillna(poolable["study_id"])
    assert (f"{len(poolable)} effects from {poolable['study_id'].nunique()} sites in "
            f"{sources.nunique()} sources") in text
    assert "three-level random-effects model" in text and "restricted maximum likelihood" in text
    assert (f'metafor {METAFOR_VERSION} rma.mv(yi, vi, random = ~ 1 | source/site/effect, '
            'method = "REML", test = "z")') in text
    table = synthesize(rows, ["biome"])
    assumed = int(table["n_assumed_variance"].sum())
    assert f"{assumed} of the {len(poolable)} pooled effects rest on an assumed sampling variance" in text
    for package in ("soc-kb", "numpy", "scipy", "pandas"):
        assert f"{package} {report.versions[package]}" in text
    assert escape(text) in html


@pytest.mark.parametrize("model,method,test,says", [
    ("multilevel", "ML", "t", 'rma.mv(yi, vi, random = ~ 1 | source/site/effect, method = "ML", test = "t")'),
    ("independent", "DL", "knha", f'metafor {METAFOR_VERSION} rma(yi, vi, method = "DL", test = "knha")'),
    ("robust", "REML", None, f'clubSandwich {CLUBSANDWICH_VERSION} coef_test(rma(yi, vi, method = "REML"), vcov = "CR2"'),
    ("robust", "PM", None, "not among the cases compared with R"),
])
def test_the_methods_name_the_model_and_the_r_call_only_where_compared(full, model, method, test, says):
    _, rows = full
    table = synthesize(rows, ["biome"], model=model, method=method, test=test)
    text = methods_paragraph(rows, table, ["biome"], model, method, test, "Soil respiration")
    assert says in text
    assert ("equivalent to" in text) == (says != "not among the cases compared with R")


def test_the_golden_versions_the_methods_cite_are_those_of_the_golden_files():
    golden = json.loads((Path(__file__).parent / "golden" / "metafor_synthesis.json").read_text())
    major_minor, _, patch = golden["source"]["metafor_version"].rpartition(".")
    assert f"{major_minor}-{patch}" == METAFOR_VERSION  # R's packageVersion prints 3.8.1
    assert golden["source"]["clubSandwich_version"] == CLUBSANDWICH_VERSION


def test_no_nan_none_or_na_in_the_html(html):
    text = text_outside_figures(html)
    assert not re.search(r"\bnan\b|\bNone\b|&lt;NA&gt;|<NA>", text)


def test_the_report_holds_table_certainty_figures_sensitivity_and_query(full, html):
    report, _ = full
    assert html.count("<svg") == 2 and "Forest plot" in html and "Funnel plot" in html
    assert "Estimate (lnRR)" in html and "Change (%)" in html and "< 0.001".replace("<", "&lt;") in html
    for group, grade, reasons in report.certainty:
        assert escape(f"{group}: {grade}") in html and escape(reasons) in html
    fragile = report.sensitivity.groupby("biome")["fragile"].any() if report.sensitivity is not None else {}
    for line in report.sensitivity_lines:
        assert escape(line) in html
    assert sum(line.startswith("Fragile:") for line in report.sensitivity_lines) == int(sum(fragile))
    assert escape(report.query.command()) in html and report.fingerprint in html


def test_the_same_base_gives_the_same_report_and_a_changed_row_another_fingerprint(seeded_copy):
    with KnowledgeBase(seeded_copy) as kb:
        first = build_report(kb, RESPONSE, ["ecosystem"], **SMALL)
        again = build_report(kb, RESPONSE, ["ecosystem"], **SMALL)
        assert first.to_html() == again.to_html() and first.fingerprint == again.fingerprint
        rows = graph.synthesis_rows(kb, response=RESPONSE, **SMALL)
        kb.update_effect(rows.loc[rows["yi"].notna(), "id"].iloc[0], notes="re-checked")
        changed = build_report(kb, RESPONSE, ["ecosystem"], **SMALL)
    assert changed.fingerprint != first.fingerprint
    assert fingerprint(rows) != fingerprint(rows.iloc[1:])


def test_the_recorded_command_reproduces_the_fingerprint(seeded_copy, tmp_path):
    with KnowledgeBase(seeded_copy) as kb:
        made = build_report(kb, RESPONSE, ["ecosystem"], model="independent", method="DL",
                            **SMALL)
    words = shlex.split(made.query.command(str(tmp_path / "again.html")))
    assert words[:2] == ["soc-kb", "report"]
    result = CliRunner().invoke(cli, ["--db", str(seeded_copy), *words[1:]])
    assert result.exit_code == 0, result.output
    assert f"data fingerprint {made.fingerprint}" in result.output
    assert (tmp_path / "again.html").read_text(encoding="utf-8") == made.to_html()


def test_the_pdf_names_every_study_and_holds_the_figures(seeded_copy, tmp_path):
    target = tmp_path / "report.pdf"
    result = CliRunner().invoke(cli, ["--db", str(seeded_copy), "report", "--response", RESPONSE,
                                      "--by", "ecosystem", "--biome", "mediterranean",
                                      "--output", str(target)])
    assert result.exit_code == 0, result.output
    reader = PdfReader(io.BytesIO(target.read_bytes()))
    text = " ".join(page.extract_text() for page in reader.pages).replace("\u200b", "")
    with KnowledgeBase(seeded_copy) as kb:
        rows = graph.synthesis_rows(kb, response=RESPONSE, **SMALL)
    for study in set(rows["study_id"]):
        assert study in text, study
    assert "three-level random-effects model" in " ".join(text.split())
    assert sum(len(page.images) for page in reader.pages) == 2  # forest and funnel


@pytest.mark.parametrize("args,message", [
    (["--output", "r.docx"], "must end in .html or .pdf"),
    (["--response", "soil_respiration,soc_stock", "--output", "r.html"], "a report is about one response"),
    (["--response", "no_such", "--output", "r.html"], "unknown response 'no_such'"),
    (["--response", RESPONSE, "--biome", "arctic", "--output", "r.html"], "no effects or direction-only"),
    (["--response", RESPONSE, "--by", "colour", "--output", "r.html"], "--by: 'colour'"),
    (["--response", RESPONSE, "--model", "multilevel", "--method", "DL", "--output", "r.html"], "DL"),
])
def test_bad_input_is_one_line_and_writes_nothing(seeded_copy, tmp_path, args, message):
    out = tmp_path / "out"
    out.mkdir()
    args = [str(out / a) if a.startswith("r.") else a for a in args]
    result = CliRunner().invoke(cli, ["--db", str(seeded_copy), "report", *args])
    assert result.exit_code == 1 and message in result.output
    assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1
    assert list(out.iterdir()) == []


def test_file_names_say_what_the_report_holds():
    assert report_file_name(RESPONSE, ["biome", "warming_bin"], "multilevel", "pdf") == \
        "report-soil_respiration-by-biome-warming_bin-multilevel.pdf"


def test_two_copies_of_the_shipped_base_have_one_fingerprint(seeded_file, tmp_path):
    # the same data, written at another moment: when a row was added is not what it says
    with KnowledgeBase(seeded_file) as kb:
        shipped = graph.synthesis_rows(kb, response=RESPONSE)
    with KnowledgeBase(tmp_path / "fresh.db") as kb:
        fresh = graph.synthesis_rows(kb, response=RESPONSE)
    assert fingerprint(shipped) == fingerprint(fresh)


def test_the_methods_of_a_votes_only_synthesis_claim_no_fit(full):
    _, rows = full
    rows = rows.assign(vi=float("nan"))  # no variance anywhere: every group votes only
    table = synthesize(rows, ["biome"])
    assert (table["k_effects"] == 0).all()
    text = methods_paragraph(rows, table, ["biome"], "multilevel", "REML", None, "SOC stock")
    assert "the multilevel model was not fitted" in text and "equivalent to" not in text
    assert "warming on SOC stock" in text

"""The one table renderer (kb.render): every format, numbers and p-values as a paper prints
them, missing values, headers and labels, escaping (HTML, Markdown, every LaTeX special
character and symbol), control characters from records, XLSX; and the synthesis table's
layout (kb.claims.notes.table_layout)."""

import io
import json
import re

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from openpyxl import load_workbook

from evidence.synthesis import synthesize
from kb import KnowledgeBase
from kb.claims import graph
from kb.claims.notes import HEADERS, export_notes, facet_labels, table_layout
from kb.cli import cli
from kb.render import (
    BINARY_FORMATS,
    FORMATS,
    MISSING,
    format_number,
    format_pvalue,
    latex_escape,
    render_table,
    table_bytes,
)

TEXT_FORMATS = [f for f in FORMATS if f not in BINARY_FORMATS]
READING_FORMATS = ["table", "markdown", "latex", "html"]

FRAME = pd.DataFrame({"id": ["a<b>", "esc\x1b[31m\x00"], "mechanisms": [["x", "y"], []],
                      "estimate": [0.123456, None], "q_pvalue": [0.000123456, 0.5]})
#: every kind of missing value pandas produces, next to a present one
GAPS = pd.DataFrame({"text": ["kept", None], "number": [1.5, np.nan],
                     "count": pd.array([3, pd.NA], dtype="Int64"),
                     "when": [pd.Timestamp("2024-01-02"), pd.NaT], "p": [0.2, np.nan]})


@pytest.mark.parametrize("fmt", TEXT_FORMATS)
def test_every_text_format_renders_every_row(fmt):
    text = render_table(FRAME, fmt, rounding=2, pvalues=("q_pvalue",))
    assert text.endswith("\n") and "x, y" in text


@pytest.mark.parametrize("fmt", READING_FORMATS)
def test_control_characters_are_shown_not_obeyed(fmt):
    text = render_table(FRAME, fmt)
    assert "\x1b" not in text and "\x00" not in text
    assert ("\\x1b" if fmt != "latex" else r"\textbackslash{}x1b") in text


def test_csv_and_json_keep_the_data_as_it_is():
    assert "esc\x1b[31m\x00" in render_table(FRAME, "csv")
    rows = json.loads(render_table(FRAME, "json", headers={"id": "Identifier"}, notes=["a note"]))
    assert rows[1]["id"] == "esc\x1b[31m\x00" and rows[1]["estimate"] is None
    assert rows[0]["mechanisms"] == "x, y" and "a note" not in json.dumps(rows)
    assert "0.123456" in render_table(FRAME, "csv", rounding=2)


@pytest.mark.parametrize("fmt", READING_FORMATS)
def test_no_nan_none_or_na_in_a_format_for_reading(fmt):
    text = render_table(GAPS, fmt, pvalues=("p",))
    assert not re.search(r"\bnan\b|\bNone\b|<NA>|\bNaT\b|&lt;NA&gt;", text, re.IGNORECASE)
    shown_missing = "---" if fmt == "latex" else MISSING  # LaTeX writes the em dash as ---
    assert text.count(shown_missing) >= 5, text  # one per missing cell


def test_csv_leaves_missing_values_empty():
    assert render_table(GAPS, "csv").splitlines()[2] == ",,,,"


@pytest.mark.parametrize("p,shown", [(1e-12, "< 0.001"), (0.00099, "< 0.001"), (0.0042, "0.004"),
                                     (0.25, "0.250"), (1.0, "1.000"), (np.nan, MISSING),
                                     (None, MISSING)])
def test_pvalues_read_as_in_a_paper(p, shown):
    assert format_pvalue(p) == shown


@pytest.mark.parametrize("value,decimals,shown", [
    (0.123456, 3, "0.123"), (0.1, 3, "0.100"), (-0.0001, 3, "0.000"), (-0.1234, 3, "-0.123"),
    (12.345, 1, "12.3"), (81.44, 1, "81.4"), (5, None, "5"), (np.int64(7), 3, "7"),
    (2016.0, None, "2016"), (0.000123456, None, "0.000123456"), (np.nan, 3, MISSING),
    (pd.NA, None, MISSING), (True, None, "yes"), (np.False_, None, "no")])
def test_numbers_have_the_decimals_of_their_kind(value, decimals, shown):
    assert format_number(value, decimals) == shown


def test_rounding_and_pvalues_apply_to_reading_formats_only():
    assert "0.12" in render_table(FRAME, "markdown", rounding=2)
    assert "< 0.001" in render_table(FRAME, "markdown", pvalues=("q_pvalue",))
    assert "0.500" in render_table(FRAME, "html", pvalues=("q_pvalue",))
    # a fixed number of decimals stays as written (Markdown must not re-read "0.100" as 0.1)
    assert "| 0.100 |" in render_table(pd.DataFrame({"x": [0.1]}), "markdown", rounding=3)


def test_headers_and_labels_are_for_reading_the_terminal_table_keeps_ids():
    frame = pd.DataFrame({"biome": ["temperate", "unknown_id"], "mechanisms": [["priming"], []],
                          "estimate": [0.1, 0.2]})
    options = {"headers": {"estimate": "Estimate (lnRR)"},
               "labels": {"biome": {"temperate": "Temperate"}, "mechanisms": {"priming": "Priming"}}}
    for fmt in ("markdown", "html", "latex"):
        text = render_table(frame, fmt, **options)
        assert "Estimate (lnRR)" in text and "Temperate" in text and "Priming" in text, fmt
        assert "unknown" in text  # an id without a label is shown as it is
    for fmt in ("table", "csv"):
        text = render_table(frame, fmt, **options)
        assert "estimate" in text and "temperate" in text and "Temperate" not in text


@pytest.mark.parametrize("char,latex", [
    ("_", r"\_"), ("%", r"\%"), ("&", r"\&"), ("#", r"\#"), ("$", r"\$"), ("{", r"\{"),
    ("}", r"\}"), ("~", r"\textasciitilde{}"), ("^", r"\textasciicircum{}"),
    ("\\", r"\textbackslash{}"), ("<", r"\ensuremath{<}"), ("τ", r"\ensuremath{\tau}"),
    ("²", r"\ensuremath{^{2}}"), ("≥", r"\ensuremath{\geq}"), ("−", r"\ensuremath{-}"),
    ("—", "---"), ("–", "--"), ("°", r"\ensuremath{^{\circ}}"), ("·", r"\ensuremath{\cdot}"),
    ("é", r"\'{e}"), ("ü", r'\"{u}'), ("ø", r"\o{}"), ("Σ", r"\ensuremath{\Sigma}"),
    ("中", "[U+4E2D]")])
def test_latex_escapes_every_special_character_and_symbol(char, latex):
    assert latex_escape(f"a{char}b") == f"a{latex}b"


def test_latex_is_a_booktabs_table_with_its_notes_and_minus_signs():
    frame = pd.DataFrame({"n_studies": [3], "not_reported": ["x_y"], "estimate": [-0.25]})
    text = render_table(frame, "latex", rounding={"estimate": 3}, notes=["Model: 50% & more"],
                        caption="Table_1")
    for part in (r"\toprule", r"\midrule", r"\bottomrule", r"n\_studies", r"not\_reported",
                 r"x\_y", r"\ensuremath{-}0.250", r"\textit{Notes.} Model: 50\% \& more",
                 r"\caption{Table\_1}", r"\begin{tabular}{rlr}"):
        assert part in text, part
    # no special character left bare: drop the escapes, the column separators and the
    # comment line, and nothing TeX reads as a command may remain
    lines = [line for line in text.splitlines() if not line.startswith("% ")]
    bare = [re.sub(r"\\[a-zA-Z]+|\\[_%&#${}]| & | \\\\$", "", line) for line in lines]
    assert not [line for line in bare if re.search(r"[_%&#$^~]", line)]


def test_markdown_keeps_one_cell_per_value():
    frame = pd.DataFrame({"a": ["x | y", "line\nbreak"], "b": ["<script>", "plain"]})
    lines = render_table(frame, "markdown").splitlines()
    assert all(line.replace("\\|", "").count("|") == 3 for line in lines)
    assert "<script>" not in "\n".join(lines) and "&lt;script>" in lines[2]


def test_html_escapes_cells_headers_notes_and_caption():
    text = render_table(FRAME, "html", headers={"id": "<b>id</b>"}, notes=["<i>note</i>"],
                        caption="<u>c</u>")
    assert "a&lt;b&gt;" in text and "&lt;b&gt;id&lt;/b&gt;" in text
    assert "&lt;i&gt;note&lt;/i&gt;" in text and "<caption>&lt;u&gt;c&lt;/u&gt;</caption>" in text
    assert "<b>" not in text and "<i>" not in text


def test_xlsx_keeps_numbers_as_numbers_and_has_a_notes_sheet():
    data = table_bytes(GAPS.assign(text=["Mü_1", "esc\x1b"]), "xlsx", rounding={"number": 3},
                       pvalues=("p",), headers={"number": "Number (unit)"}, notes=["one note"],
                       caption="caption")
    book = load_workbook(io.BytesIO(data))
    table, notes = book["Table"], book["Notes"]
    assert [c.value for c in table[1]][:3] == ["text", "Number (unit)", "count"]
    # a stored number reads back as the same float (XLSX keeps the shortest repr), so ==
    assert table["B2"].value == 1.5 and table["B2"].number_format == "0.000"
    assert table["C2"].value == 3 and table["B3"].value is None and table["C3"].value is None
    assert table["A3"].value == "esc\\x1b"  # XML refuses control characters: shown as text
    assert "< 0.001" in table["E2"].number_format and table["E2"].value == 0.2
    assert [r[0].value for r in notes.iter_rows()][:2] == ["caption", "one note"]


def test_an_empty_table_says_so_and_a_bad_or_binary_format_is_refused():
    assert render_table(FRAME.iloc[:0], "table") == "(no matching records)\n"
    with pytest.raises(ValueError, match="unknown table format 'pdf'"):
        render_table(FRAME, "pdf")
    with pytest.raises(ValueError, match="binary format; write it with table_bytes"):
        render_table(FRAME, "xlsx")


# -- the synthesis table as it reads in a paper ----------------------------------------------


@pytest.fixture(scope="module")
def synthesis(seeded_file):
    with KnowledgeBase(seeded_file) as kb:
        rows = graph.synthesis_rows(kb, response="soil_respiration")
        labels = facet_labels(kb, ["biome"])
    table = synthesize(rows, ["biome"])
    notes = export_notes(rows, table, ["biome"], "multilevel", "REML", None)
    return table, table_layout(table, labels, notes, "caption")


def test_synthesis_layout_has_units_labels_and_decimals_per_kind(synthesis):
    table, layout = synthesis
    text = render_table(table, "markdown", **layout)
    header = text.splitlines()[2]
    for column in ("estimate", "percent_change", "tau2", "i2", "q_pvalue"):
        assert HEADERS[column].format(m="lnRR") in header
    assert "Estimate (lnRR)" in header and "Change (%)" in header and "τ²" in header
    assert "Temperate" in text and "Not reported" in text and "not_reported" not in text
    row = table[table["biome"] == "temperate"].iloc[0]
    assert re.search(rf"\|\s+{row['estimate']:.3f} \|", text)
    assert re.search(rf"\|\s+{row['percent_change']:.1f} \|", text)
    assert row["q_pvalue"] < 0.001 and "< 0.001" in text  # the shipped base's temperate Q test
    assert not re.search(r"\bnan\b|\bNone\b|<NA>", text)


def test_synthesis_footnotes_name_model_estimator_dependence_and_assumed_variances(synthesis):
    _, layout = synthesis
    notes = " ".join(layout["notes"])
    assert "Model: multilevel, REML" in notes and "source/site/effect" in notes
    assert "pooled with an assumed variance" in notes
    for fmt in ("markdown", "html", "latex"):
        assert "pooled with an assumed variance" in render_table(pd.DataFrame({"x": [1]}), fmt,
                                                                 notes=layout["notes"])


# -- the command line meets the renderer -------------------------------------------------------


@pytest.mark.parametrize("table", ["studies", "effects", "sources", "claims"])
def test_query_markdown_shows_no_nan_none_or_na(seeded_file, table):
    result = CliRunner().invoke(cli, ["--db", str(seeded_file), "query", "--table", table,
                                      "--format", "markdown"])
    assert result.exit_code == 0, result.output
    # case matters: "none" is a value of the verification vocabulary, "None" is Python's
    assert not re.search(r"\bnan\b|\bNaN\b|\bNone\b|<NA>|\bNaT\b", result.stdout)


def test_synth_writes_xlsx_only_to_a_file(seeded_copy, tmp_path):
    args = ["--db", str(seeded_copy), "synth", "--by", "biome", "--response", "soil_respiration",
            "--format", "xlsx"]
    refused = CliRunner().invoke(cli, args)
    assert refused.exit_code == 1
    assert "--format xlsx writes a workbook: give --output FILE.xlsx" in refused.output
    target = tmp_path / "table.xlsx"
    assert CliRunner().invoke(cli, [*args, "--output", str(target)]).exit_code == 0
    book = load_workbook(target)
    assert "Estimate (lnRR)" in [c.value for c in book["Table"][1]]
    assert any("Model: multilevel, REML" in (r[0].value or "") for r in book["Notes"].iter_rows())

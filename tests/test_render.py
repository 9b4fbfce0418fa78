"""The one table renderer (kb.render): every format, missing values, lists, markup and
control characters from records."""

import json

import pandas as pd
import pytest

from kb.render import FORMATS, render_table

FRAME = pd.DataFrame({"id": ["a<b>", "esc\x1b[31m\x00"], "mechanisms": [["x", "y"], []],
                      "estimate": [0.123456, None], "q_pvalue": [0.000123456, 0.5]})


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_renders_every_row(fmt):
    text = render_table(FRAME, fmt, rounding=2, pvalues=("q_pvalue",))
    assert text.endswith("\n") and "x, y" in text


@pytest.mark.parametrize("fmt", ["table", "markdown", "latex", "html"])
def test_control_characters_are_shown_not_obeyed(fmt):
    text = render_table(FRAME, fmt)
    assert "\x1b" not in text and "\x00" not in text and "\\x1b" in text


def test_csv_and_json_keep_the_data_as_it_is():
    assert "esc\x1b[31m\x00" in render_table(FRAME, "csv")
    rows = json.loads(render_table(FRAME, "json"))
    assert rows[1]["id"] == "esc\x1b[31m\x00" and rows[1]["estimate"] is None
    assert rows[0]["mechanisms"] == "x, y"


def test_html_escapes_markup_and_rounding_applies_to_reading_formats_only():
    assert "a&lt;b&gt;" in render_table(FRAME, "html")
    assert "0.12" in render_table(FRAME, "markdown", rounding=2)
    assert "0.123456" in render_table(FRAME, "csv", rounding=2)
    assert "0.000123" in render_table(FRAME, "markdown", pvalues=("q_pvalue",))


def test_an_empty_table_says_so_and_a_bad_format_is_refused():
    assert render_table(FRAME.iloc[:0], "table") == "(no matching records)\n"
    with pytest.raises(ValueError, match="unknown table format 'pdf'"):
        render_table(FRAME, "pdf")

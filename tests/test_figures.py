"""Figures as a meta-analyst draws them (kb.figures, soc-kb plot): what each figure shows is
read back from the figure's texts and patches or from the SVG's text, never from pixels."""

from __future__ import annotations

import re
import struct
import subprocess
import sys
import threading
import xml.etree.ElementTree as ET

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from conftest import ROOT
from matplotlib.patches import Polygon

import evidence
from evidence.synthesis import synthesize
from kb import KnowledgeBase, figures
from kb.claims import graph
from kb.cli import cli
from kb.errors import KBError

README_FIGURE = ROOT / "docs" / "figures" / "forest-annual-rs.svg"
#: the command that makes README_FIGURE (README shows it; the test below re-runs it)
README_COMMAND = ["plot", "forest", "--response", "soil_respiration", "--origin", "srdb",
                  "--by", "ecosystem"]
SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture(scope="module")
def annual_rs(seeded_file) -> pd.DataFrame:
    """The shipped SRDB annual soil-respiration rows (as the srdb-rs-annual synthesis)."""
    with KnowledgeBase(seeded_file) as kb:
        return graph.synthesis_rows(kb, response="soil_respiration", origin="srdb")


@pytest.fixture(scope="module")
def poolable(annual_rs) -> pd.DataFrame:
    y = pd.to_numeric(annual_rs["yi"], errors="coerce")
    v = pd.to_numeric(annual_rs["vi"], errors="coerce")
    return annual_rs[np.isfinite(y) & np.isfinite(v) & (v > 0)]


def svg_texts(data: bytes) -> list[str]:
    """Every <text> of an SVG, in document order (text as text: svg.fonttype none)."""
    root = ET.fromstring(data)
    return ["".join(node.itertext()) for node in root.iter(f"{SVG}text")]


def figure_texts(fig) -> list[str]:
    return figures.drawn_texts(fig)


def row_positions(fig) -> dict[str, float]:
    """text -> its row (y in the axes' data units) for the rows a forest-like figure draws."""
    rows = next(a for a in fig.get_children() if isinstance(a, figures.RowText))
    return {text: y for _, y, text, *_ in rows.items}


def diamonds(fig) -> dict[str, tuple[float, float, float]]:
    """label -> (ci_low, estimate, ci_high) of every pooled diamond drawn."""
    out = {}
    for patch in fig.axes[0].patches:
        if isinstance(patch, Polygon) and patch.get_label().startswith("pooled"):
            xy = patch.get_xy()
            out[patch.get_label()] = (xy[0, 0], xy[1, 0], xy[2, 0])
    return out


def expected_label(row) -> str:
    """Author Year — site, written out here independently of kb.figures."""
    who = f"{row['first_author']} {int(row['year'])}" if pd.notna(row["first_author"]) \
        else row["study_id"]
    return f"{who} — {row['site']}" if pd.notna(row["site"]) else who


# ---------------------------------------------------------------- forest on the shipped data


def test_forest_svg_carries_study_labels_model_and_ci_text(annual_rs, poolable):
    texts = svg_texts(figures.figure_bytes(figures.forest_figure(annual_rs), "svg"))
    fit = evidence.fit_group(poolable)
    sites = poolable.drop_duplicates("study_id")
    short = [expected_label(r) for r in sites.to_dict(orient="records")
             if len(str(r["site"])) <= figures.MAX_SITE_CHARS]
    assert len(short) >= 15
    assert set(short) <= set(texts)
    pooled = f"{fit.estimate:.2f} [{fit.ci_low:.2f}, {fit.ci_high:.2f}] {figures.ASSUMED_MARK}"
    assert pooled in texts
    pct = 100 * np.expm1([fit.estimate, fit.ci_low, fit.ci_high])
    assert f"{pct[0]:+.1f} [{pct[1]:+.1f}, {pct[2]:+.1f}]" in texts
    assert f"[{fit.pi_low:.2f}, {fit.pi_high:.2f}]" in texts  # the prediction interval
    assert (f"multilevel (REML): effects nested in sites in sources; {fit.k} effects, "
            f"{fit.n_sites} sites, {fit.n_sources} sources") in texts
    assert any(t.startswith(f"{figures.ASSUMED_MARK} variance assumed") for t in texts)
    assert {"lnRR [95 % CI]", "% change [95 % CI]", "Weight"} <= set(texts)


def test_sites_without_author_fall_back_to_the_study_id(annual_rs, poolable):
    lone = poolable[poolable["first_author"].isna()]
    assert not lone.empty  # the shipped data has such sites (SRDB studies without a source)
    labels = figures.forest_panel(annual_rs).rows["label"].tolist()
    for study_id in lone["study_id"].unique():
        assert any(label.startswith(f"{study_id} — ") or label == study_id for label in labels)
    assert all(label.strip() for label in labels if label)


def test_subgroup_diamonds_are_the_groups_fits_and_the_synthesis_table(annual_rs, poolable):
    fig = figures.forest_figure(annual_rs, by="ecosystem")
    drawn = diamonds(fig)
    table = synthesize(annual_rs, "ecosystem").set_index("ecosystem")
    texts = figure_texts(fig)
    pooled_groups = 0
    for value, group in poolable.groupby("ecosystem"):
        fit = evidence.fit_group(group)
        if fit.k == 1:  # one effect: its row is the estimate, no diamond
            assert f"pooled: {value}" not in drawn
            continue
        pooled_groups += 1
        low, est, high = drawn[f"pooled: {value}"]
        # same fit drawn: equal up to float noise in the polygon's vertices
        assert (low, est, high) == pytest.approx((fit.ci_low, fit.estimate, fit.ci_high), abs=1e-12)
        row = table.loc[value]
        assert (est, low, high) == pytest.approx((row["estimate"], row["ci_low"], row["ci_high"]),
                                                 rel=1e-9)
        line = next(t for t in texts if t.startswith("Q = ") and f"df = {fit.k - 1}," in t
                    and f"I² = {fit.i2:.1f} %" in t)
        assert f"τ² = {fit.tau2:.4f}" in line
    assert pooled_groups >= 3
    overall = evidence.fit_group(poolable)
    assert drawn["pooled"] == pytest.approx((overall.ci_low, overall.estimate, overall.ci_high),
                                            abs=1e-12)
    assert any(t.startswith("Test for subgroup differences") and "QM(df = " in t for t in texts)


def test_per_site_rows_are_automatic_above_the_threshold(annual_rs, poolable):
    fit = evidence.fit_group(poolable)
    assert fit.k > figures.PER_SITE_ABOVE
    rows = figures.forest_panel(annual_rs).rows
    sites = rows[rows["kind"] == "site"]
    assert len(sites) == fit.n_sites
    assert sites["k"].sum() == fit.k
    assert sites["weight"].sum() == pytest.approx(100, abs=1e-6)  # shares of the GLS weight
    single = poolable.groupby("study_id").filter(lambda g: len(g) == 1).iloc[0]
    row = sites[sites["label"] == figures.study_label(single)]
    assert row["estimate"].item() == pytest.approx(single["yi"], abs=1e-12)
    few = figures.forest_panel(poolable.head(figures.PER_SITE_ABOVE)).rows
    assert set(few["kind"]) & {"effect", "site"} == {"effect"}


def test_effects_of_one_site_are_numbered_not_repeated(poolable):
    rows = figures.forest_panel(poolable, per_site=False).rows
    effects = rows[rows["kind"] == "effect"]["label"]
    assert len(effects) == len(poolable) and effects.is_unique


# ---------------------------------------------------------------- ordering, on made-up rows


@pytest.fixture
def made_up() -> pd.DataFrame:
    """Six made-up effects (not data) from three sources; estimates, years and weights are
    all distinct and far apart, so every order is unambiguous."""
    return pd.DataFrame({
        "id": [f"e{i}" for i in range(6)],
        "yi": [0.50, -0.30, 0.10, 0.80, -0.60, 0.25],
        "vi": [0.010, 0.040, 0.020, 0.090, 0.005, 0.060],
        "study_id": ["s1", "s2", "s3", "s4", "s5", "s6"],
        "source_key": ["cc", "aa", "bb", "aa", "cc", "bb"],
        "first_author": ["Cole", "Abel", "Bragg", "Abel", "Cole", "Bragg"],
        "year": [2011, 1995, 2003, 1999, 2015, 2007],
        "site": ["Site 1", "Site 2", "Site 3", "Site 4", "Site 5", "Site 6"],
    })


def _effect_labels(panel) -> list[str]:
    return panel.rows.loc[panel.rows["kind"] == "effect", "label"].tolist()


@pytest.mark.parametrize("order,key,descending", [
    ("estimate", "yi", False),
    ("year", "year", False),
    ("weight", "weight", True),
    ("group", "source_key", False),
])
def test_order_sorts_rows_as_said(made_up, order, key, descending):
    panel = figures.forest_panel(made_up, order=order, model="independent", per_site=False)
    frame = made_up.assign(label=[figures.study_label(r) for r in made_up.to_dict("records")])
    if key == "weight":
        frame["weight"] = evidence.fit_group(made_up, model="independent").weights
    expected = frame.sort_values([key, "label"], ascending=[not descending, True])["label"]
    assert _effect_labels(panel) == expected.tolist()


def test_figure_rows_are_drawn_in_the_panel_order(made_up):
    fig = figures.forest_figure(made_up, order="year", per_site=False)
    labels = _effect_labels(figures.forest_panel(made_up, order="year", per_site=False))
    drawn = row_positions(fig)
    assert [drawn[label] for label in labels] == sorted(drawn[label] for label in labels)
    assert len({drawn[label] for label in labels}) == len(labels)  # one row each


def test_one_effect_is_a_row_not_a_diamond(made_up):
    fig = figures.forest_figure(made_up.head(1))
    assert diamonds(fig) == {}
    texts = figure_texts(fig)
    assert "Cole 2011 — Site 1" in texts and "one effect: nothing pooled" in texts


# ---------------------------------------------------------------- funnel, bubble, refits


def test_funnel_draws_observed_and_filled_points(annual_rs, poolable):
    fig = figures.funnel_figure(annual_rs)
    result = evidence.trim_and_fill(poolable["yi"], poolable["vi"])
    offsets = {c.get_gid(): c.get_offsets() for c in fig.axes[0].collections if c.get_gid()}
    assert len(offsets["observed"]) == len(poolable)
    assert len(offsets.get("filled", [])) == result.k0
    observed = np.sort(np.asarray(offsets["observed"])[:, 1])
    assert observed == pytest.approx(np.sort(np.sqrt(poolable["vi"].to_numpy(float))))
    assert any(f"{result.k0} filled on the {result.side}" in t for t in figure_texts(fig))
    legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert {"0.10 < p ≤ 1.00", "0.05 < p ≤ 0.10", "0.01 < p ≤ 0.05"} <= set(legend)


@pytest.mark.parametrize("moderator", ["warming_c", "ecosystem"])
def test_bubble_draws_every_fitted_effect(annual_rs, moderator):
    analysis = evidence.moderator_analysis(annual_rs, moderator)
    fig = figures.bubble_figure(analysis)
    bubbles = next(c for c in fig.axes[0].collections if c.get_gid() == "bubbles")
    assert len(bubbles.get_offsets()) == analysis.k_effects
    assert np.sort(np.asarray(bubbles.get_offsets())[:, 1]) == pytest.approx(
        np.sort(analysis.points()["yi"].to_numpy()))


def test_leave_one_site_out_refits_without_each_site(poolable):
    panel = figures.leave_one_out_panel(poolable)
    refits = panel.rows[panel.rows["kind"] == "refit"]
    sites = poolable["study_id"].unique()
    assert len(refits) == len(sites)
    gone = sites[0]
    fit = evidence.fit_group(poolable[poolable["study_id"] != gone])
    label = "without " + figures.study_label(poolable[poolable["study_id"] == gone].iloc[0])
    assert refits.set_index("label").loc[label, "estimate"] == pytest.approx(fit.estimate, abs=1e-12)


def test_cumulative_adds_sites_oldest_first_and_ends_at_the_full_fit(poolable):
    panel = figures.cumulative_panel(poolable)
    steps = panel.rows[panel.rows["kind"] == "refit"]
    full = evidence.fit_group(poolable)
    assert steps["k"].is_monotonic_increasing and steps["k"].iloc[-1] == full.k
    assert steps["estimate"].iloc[-1] == pytest.approx(full.estimate, abs=1e-12)
    years = [int(re.search(r" (\d{4})", label).group(1)) for label in steps["label"]
             if re.search(r" (\d{4})", label)]
    assert years == sorted(years)


# ---------------------------------------------------------------- files


def png_dpi(data: bytes) -> float:
    """Dots per inch from a PNG's pHYs chunk (unit 1: pixels per metre)."""
    at = 8
    while at < len(data):
        length, kind = struct.unpack(">I4s", data[at:at + 8])
        if kind == b"pHYs":
            x, _, unit = struct.unpack(">IIB", data[at + 8:at + 17])
            assert unit == 1
            return x * 0.0254
        at += 12 + length
    raise AssertionError("no pHYs chunk")


def test_formats_are_valid_vector_and_300_dpi(made_up):
    fig = figures.forest_figure(made_up)
    svg, pdf, png = (figures.figure_bytes(fig, fmt) for fmt in figures.FORMATS)
    assert svg.startswith(b"<?xml") and b"<svg" in svg[:600] and b"<path" in svg
    assert "Cole 2011 — Site 1" in svg_texts(svg)  # text as text, not glyph outlines
    assert pdf.startswith(b"%PDF-") and pdf.rstrip().endswith(b"%%EOF")
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    assert png_dpi(png) == pytest.approx(300, abs=0.05)  # pHYs stores whole pixels per metre


@pytest.mark.parametrize("fmt", figures.FORMATS)
def test_same_data_same_bytes(made_up, fmt):
    first = figures.figure_bytes(figures.forest_figure(made_up), fmt)
    assert figures.figure_bytes(figures.forest_figure(made_up), fmt) == first


def test_exports_from_threads_do_not_interfere(made_up):
    expected = figures.figure_bytes(figures.forest_figure(made_up), "svg")
    results = [None] * 4

    def draw(i):
        results[i] = figures.figure_bytes(figures.forest_figure(made_up), "svg")

    threads = [threading.Thread(target=draw, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [expected] * 4


@pytest.mark.parametrize("fmt", figures.FORMATS)
def test_labels_are_drawn_as_written_never_as_mathtext(made_up, fmt):
    odd = made_up.assign(site=["Plot $A$ & $B_2$", *made_up["site"][1:]])
    fig = figures.forest_figure(odd, title="Costs in $ and $")
    data = figures.figure_bytes(fig, fmt)  # mathtext would fail on "$B_2$ …" or reshape it
    if fmt == "svg":
        assert {"Cole 2011 — Plot $A$ & $B_2$", "Costs in $ and $"} <= set(svg_texts(data))


def test_figures_never_load_pyplot():
    code = ("import sys, pandas as pd; from kb import figures; "
            "fig = figures.forest_figure(pd.DataFrame({'yi': [0.1, 0.3], 'vi': [0.01, 0.02]})); "
            "figures.figure_bytes(fig, 'png'); print('matplotlib.pyplot' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# ---------------------------------------------------------------- bad input: one line


@pytest.mark.parametrize("call,message", [
    (lambda d: figures.forest_figure([1, 2]), "must be a table"),
    (lambda d: figures.forest_figure(d.drop(columns="vi")), "no column 'vi'"),
    (lambda d: figures.forest_figure(d.assign(vi=np.nan)), "nothing to plot"),
    (lambda d: figures.forest_figure(d, order="alphabet"), "is not one of estimate"),
    (lambda d: figures.forest_figure(d, model="bayes"), "unknown model"),
    (lambda d: figures.forest_figure(d, method="DL"), "REML or ML"),
    (lambda d: figures.forest_figure(d, by="no_such_facet"), "no column 'no_such_facet'"),
    (lambda d: figures.figure_bytes(figures.forest_figure(d), "jpg"), "not one of svg"),
    (lambda d: figures.output_format("fig.jpg"), "unknown figure format '.jpg'"),
    (lambda d: figures.output_format("figure"), "(no extension)"),
    (lambda d: figures.bubble_figure(object()), "needs a moderator analysis"),
    (lambda d: figures.leave_one_out_figure(d.head(1)), "nothing to leave out"),
])
def test_bad_input_is_one_line(made_up, call, message):
    with pytest.raises(KBError) as caught:
        call(made_up)
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_a_huge_png_is_refused_not_drawn():
    rows = pd.DataFrame({"yi": np.linspace(-1, 1, 1500), "vi": 0.01,
                         "study_id": [f"s{i}" for i in range(1500)]})
    fig = figures.forest_figure(rows, per_site=False)
    with pytest.raises(KBError, match="save it as .svg or .pdf"):
        figures.figure_bytes(fig, "png")


# ---------------------------------------------------------------- soc-kb plot


# every kind once, and every format (the same code for every kind) on forest and funnel
@pytest.mark.parametrize("kind,extra,fmt", [
    ("forest", ["--by", "ecosystem"], "svg"),
    ("forest", ["--by", "ecosystem"], "pdf"),
    ("forest", ["--by", "ecosystem", "--group", "forest", "--per-effect", "--order", "year"], "png"),
    ("funnel", [], "svg"),
    ("funnel", [], "pdf"),
    ("funnel", [], "png"),
    ("bubble", ["--moderator", "warming_c"], "svg"),
    ("leave-one-out", [], "svg"),
    ("cumulative", ["--order", "weight"], "svg"),
])
def test_cli_plot_writes_every_kind_and_format(seeded_file, tmp_path, kind, extra, fmt):
    out = tmp_path / f"fig.{fmt}"
    result = CliRunner().invoke(cli, ["--db", str(seeded_file), "plot", kind, "--response",
                                      "soil_respiration", "--origin", "srdb", *extra,
                                      "--output", str(out)])
    assert result.exit_code == 0, result.output
    assert result.output == f"wrote {out} ({kind}, {fmt})\n"
    magic = {"svg": b"<?xml", "pdf": b"%PDF-", "png": b"\x89PNG"}[fmt]
    assert out.read_bytes().startswith(magic)


def test_cli_group_plots_only_that_group(seeded_file, tmp_path, annual_rs):
    out = tmp_path / "forest.svg"
    result = CliRunner().invoke(cli, ["--db", str(seeded_file), "plot", "forest", "--response",
                                      "soil_respiration", "--origin", "srdb", "--by", "ecosystem",
                                      "--group", "forest", "--output", str(out)])
    assert result.exit_code == 0, result.output
    texts = svg_texts(out.read_bytes())
    forest = annual_rs[annual_rs["ecosystem"] == "forest"]
    fit = evidence.fit_group(forest)
    assert f"{fit.estimate:.2f} [{fit.ci_low:.2f}, {fit.ci_high:.2f}] {figures.ASSUMED_MARK}" in texts
    assert not any("Dominguez" in t for t in texts)  # a shrubland site


@pytest.mark.parametrize("args,message", [
    (["forest", "--output", "fig.jpg"], "unknown figure format '.jpg'"),
    (["forest", "--response", "no_such_response", "--output", "fig.svg"], "no effects on"),
    (["forest", "--response", "heterotrophic_respiration", "--output", "fig.svg"],
     "nothing to plot"),
    (["forest", "--group", "forest", "--output", "fig.svg"], "--group needs --by"),
    (["forest", "--by", "colour", "--output", "fig.svg"], "is not a facet"),
    (["forest", "--by", "ecosystem", "--group", "tundra", "--output", "fig.svg"],
     "no ecosystem 'tundra'"),
    (["funnel", "--by", "ecosystem", "--output", "fig.svg"], "forest plot only"),
    (["bubble", "--model", "robust", "--output", "fig.svg"], "multilevel or independent"),
    (["forest", "--output", "no/such/dir/fig.svg"], "cannot write it"),
])
def test_cli_plot_errors_are_one_line_and_write_nothing(seeded_file, tmp_path, monkeypatch,
                                                        args, message):
    monkeypatch.chdir(tmp_path)
    if "--response" not in args:
        args = [*args, "--response", "soil_respiration"]
    result = CliRunner().invoke(cli, ["--db", str(seeded_file), "plot", *args])
    assert result.exit_code == 1
    assert message in result.output and len(result.output.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------- the README figure


def test_readme_figure_is_what_the_command_makes(seeded_file, tmp_path):
    """docs/figures/forest-annual-rs.svg is generated, not drawn: re-running the command
    shown in the README gives the same labels and CI text (positions may differ between
    matplotlib versions; the words may not)."""
    out = tmp_path / "forest.svg"
    result = CliRunner().invoke(cli, ["--db", str(seeded_file), *README_COMMAND,
                                      "--output", str(out)])
    assert result.exit_code == 0, result.output
    assert svg_texts(README_FIGURE.read_bytes()) == svg_texts(out.read_bytes())
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "docs/figures/forest-annual-rs.svg" in readme
    assert " ".join(["soc-kb", *README_COMMAND]) in readme

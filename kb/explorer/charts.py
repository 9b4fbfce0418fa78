"""Altair charts for the explorer, built from the frames of :mod:`kb.explorer`.

Nothing here needs a network: the map is drawn on a graticule, not on downloaded tiles
or a world topology, so it renders offline (CI, a laptop on a plane).
"""

from __future__ import annotations

import altair as alt
import pandas as pd

LNRR = "lnRR (warmed vs control)"


def site_map(points: pd.DataFrame) -> alt.LayerChart:
    """Study sites on an equal-earth graticule, coloured by biome."""
    projection = {"type": "equalEarth"}
    sphere = alt.Chart(alt.sphere()).mark_geoshape(fill="#eef3f7", stroke="#9aa7b0")
    grid = alt.Chart(alt.graticule(step=[30, 30])).mark_geoshape(stroke="#d5dde3", strokeWidth=0.5)
    sites = alt.Chart(points).mark_circle(size=60, opacity=0.8, stroke="white", strokeWidth=0.5).encode(
        longitude="lon:Q", latitude="lat:Q", color=alt.Color("biome:N", title="Biome"),
        tooltip=["study", "site", "biome", alt.Tooltip("lat:Q", format=".2f"),
                 alt.Tooltip("lon:Q", format=".2f")])
    return (sphere + grid + sites).project(**projection).properties(height=380)


def forest_plot(rows: pd.DataFrame, summary: pd.DataFrame) -> alt.LayerChart:
    """Study rows (lnRR with 95 % CI), the pooled diamond and its prediction interval."""
    order = [*rows["label"], *summary["label"]]
    # every row labelled: no overlap thinning, a fixed step per row
    y = alt.Y("label:N", sort=order, title=None, axis=alt.Axis(labelLimit=320, labelOverlap=False))
    x_title = f"{LNRR}, 95 % CI"
    tooltip = ["label", alt.Tooltip("yi:Q", title="lnRR", format=".3f"),
               alt.Tooltip("percent:Q", title="% change", format="+.1f"),
               alt.Tooltip("ci_low:Q", format=".3f"), alt.Tooltip("ci_high:Q", format=".3f"),
               alt.Tooltip("vi:Q", format=".4g"), alt.Tooltip("variance_note:N", title="variance note")]
    base = alt.Chart(rows).encode(y=y)
    ci = base.mark_rule(color="#4c6a85").encode(x=alt.X("ci_low:Q", title=x_title), x2="ci_high:Q")
    point = base.mark_square(color="#1f3b57").encode(
        x="yi:Q", size=alt.Size("weight:Q", legend=None, scale=alt.Scale(range=[20, 200])),
        tooltip=tooltip)
    diamond = _diamond(summary, y)
    pi = alt.Chart(summary).mark_rule(color="#c0392b", strokeDash=[4, 3], strokeWidth=2).encode(
        y=y, x="pi_low:Q", x2="pi_high:Q",
        tooltip=[alt.Tooltip("pi_low:Q", title="prediction low", format=".3f"),
                 alt.Tooltip("pi_high:Q", title="prediction high", format=".3f")])
    zero = alt.Chart(pd.DataFrame({"x": [0.0]})).mark_rule(color="#888", strokeDash=[2, 2]).encode(x="x:Q")
    return (zero + ci + point + pi + diamond).properties(height=alt.Step(22))


def _diamond(summary: pd.DataFrame, y: alt.Y) -> alt.Chart:
    """The pooled estimate as a diamond: a polygon through (low, est, high) at the row."""
    row = summary.iloc[0]
    corners = pd.DataFrame({"label": row["label"], "x": [row["ci_low"], row["yi"], row["ci_high"], row["yi"]],
                            "dy": [0, -7, 0, 7], "order": [0, 1, 2, 3]})
    corners = pd.concat([corners, corners.iloc[[0]]], ignore_index=True).assign(order=range(5))
    return alt.Chart(corners).mark_line(color="#c0392b", fill="#c0392b", filled=True).encode(
        x="x:Q", y=y, yOffset=alt.YOffset("dy:Q", scale=None), order="order:Q")


def funnel_plot(points: pd.DataFrame, funnel: pd.DataFrame, estimate: float) -> alt.LayerChart:
    """Effects against their standard error (inverted axis) with the pseudo 95 % funnel."""
    y = alt.Y("se:Q", title="standard error", scale=alt.Scale(reverse=True))
    lines = alt.Chart(funnel).mark_line(color="#9aa7b0", strokeDash=[4, 3]).encode(
        x=alt.X("yi:Q", title=LNRR), y=y, detail="side:N")
    centre = alt.Chart(pd.DataFrame({"x": [estimate]})).mark_rule(color="#c0392b").encode(x="x:Q")
    dots = alt.Chart(points).mark_circle(size=50, opacity=0.8).encode(
        x="yi:Q", y=y, color=alt.Color("kind:N", title=None,
                                       scale=alt.Scale(domain=["observed", "filled"],
                                                       range=["#1f3b57", "#e67e22"])),
        tooltip=[alt.Tooltip("yi:Q", format=".3f"), alt.Tooltip("se:Q", format=".3f"), "kind"])
    return (lines + centre + dots).properties(height=320)


def heat_map(counts: pd.DataFrame, rows: str, columns: str) -> alt.LayerChart:
    """Study counts for two facets; empty cells (the gaps) stay visible as a red 0."""
    base = alt.Chart(counts).encode(
        x=alt.X(f"{columns}:N", title=columns.replace("_", " "),
                axis=alt.Axis(labelLimit=200, labelOverlap=False)),
        y=alt.Y(f"{rows}:N", title=rows.replace("_", " "), axis=alt.Axis(labelOverlap=False)))
    cells = base.mark_rect(stroke="white").encode(
        color=alt.Color("n_studies:Q", title="studies", scale=alt.Scale(scheme="blues", domainMin=0)),
        tooltip=[rows, columns, alt.Tooltip("n_studies:Q", title="studies")])
    # gaps in red; counts on the darkest cells in white so they stay readable
    dark = 0.6 * max(int(counts["n_studies"].max()), 1)
    ink = alt.value("#222", condition=[{"test": "datum.n_studies == 0", "value": "#c0392b"},
                                       {"test": f"datum.n_studies > {dark}", "value": "white"}])
    text = base.mark_text(fontSize=11).encode(text="n_studies:Q", color=ink)
    # a fixed step per row: a fixed height would be shared with the long column labels
    return (cells + text).properties(height=alt.Step(26))


def timeline(counts: pd.DataFrame) -> alt.Chart:
    """Publications per year, stacked by study type."""
    return alt.Chart(counts).mark_bar().encode(
        x=alt.X("year:O", title="publication year"),
        y=alt.Y("publications:Q", title="publications"),
        color=alt.Color("study_type:N", title="study type"),
        tooltip=["year", "study_type", "publications"]).properties(height=260)


def leave_one_out(frame: pd.DataFrame, estimate: float) -> alt.LayerChart:
    """The pooled estimate with each site left out in turn, against the full estimate."""
    y = alt.Y("omitted:N", sort=list(frame["omitted"]), title=None,
              axis=alt.Axis(labelLimit=220, labelOverlap=False))
    rule = alt.Chart(frame).mark_rule(color="#4c6a85").encode(
        y=y, x=alt.X("ci_low:Q", title="pooled lnRR without that site, 95 % CI"), x2="ci_high:Q")
    dot = alt.Chart(frame).mark_circle(color="#1f3b57", size=50).encode(
        y=y, x="estimate:Q", tooltip=["omitted", alt.Tooltip("estimate:Q", format=".3f"),
                                      alt.Tooltip("i2:Q", title="I² (%)", format=".1f")])
    full = alt.Chart(pd.DataFrame({"x": [estimate]})).mark_rule(color="#c0392b", strokeDash=[4, 3]).encode(x="x:Q")
    return (rule + dot + full).properties(height=alt.Step(20))


def bubble_plot(points: pd.DataFrame, line: pd.DataFrame, moderator: str, unit: str = "") -> alt.LayerChart:
    """Meta-regression: each effect a bubble sized by its weight, the fitted line and its
    95 % CI band (``evidence.moderator_analysis(...).points()`` and ``.line()``)."""
    title = f"{moderator} ({unit})" if unit else moderator
    x = alt.X("x:Q", title=title)
    band = alt.Chart(line).mark_area(opacity=0.25, color="#4c6a85").encode(
        x=x, y=alt.Y("ci_low:Q", title=LNRR), y2="ci_high:Q")
    fitted = alt.Chart(line).mark_line(color="#1f3b57").encode(x=x, y="fitted:Q")
    bubbles = alt.Chart(points).mark_circle(opacity=0.6, color="#c0392b").encode(
        x=x, y="yi:Q", size=alt.Size("weight:Q", title="weight (%)", scale=alt.Scale(type="sqrt")),
        tooltip=["study_id", alt.Tooltip("x:Q", title=moderator, format=".2f"),
                 alt.Tooltip("yi:Q", format=".3f"), alt.Tooltip("weight:Q", format=".2f")])
    return (band + fitted + bubbles).properties(height=320)

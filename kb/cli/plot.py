"""``soc-kb plot``: forest, funnel, bubble, leave-one-out and cumulative figures as SVG, PDF or
PNG (thin: parse, read the rows, call :mod:`kb.figures`, write the file)."""

from __future__ import annotations

from pathlib import Path

import click

from evidence import METHODS, EvidenceError
from evidence.synthesis import MODELS, prepare_groups

from ..claims import graph
from ..errors import KBError
from ..records import shown
from .common import fail_cleanly, filter_options, note_missing, open_kb, parsed_filters
from .synth import FACETS, MODERATORS

KINDS = ("forest", "funnel", "bubble", "leave-one-out", "cumulative")


@click.command()
@click.argument("kind", type=click.Choice(KINDS))
@filter_options
@click.option("--by", help="forest: one facet, a diamond per group (biome, ecosystem, mechanism, "
                           "depth_class, warming, study_type, evidence_kind).")
@click.option("--group", "group_value",
              help="Only the effects of this group of --by (e.g. --by ecosystem --group forest).")
@click.option("--model", type=click.Choice(MODELS), default="multilevel", show_default=True,
              help="As soc-kb synth: multilevel (effects in sites in sources), independent, robust.")
@click.option("--method", type=click.Choice(METHODS), default="REML", show_default=True,
              help="Variance-component estimator (REML or ML for multilevel).")
@click.option("--order", type=click.Choice(["estimate", "year", "weight", "group"]),
              help="Row order: estimate (default; cumulative: year), year, weight, or group "
                   "(a source's sites together).")
@click.option("--per-site/--per-effect", default=None,
              help="forest: one row per site (effects combined) or per effect; default: per "
                   "site above 40 effects.")
@click.option("--moderator", type=click.Choice(MODERATORS),
              help="bubble: the moderator of the meta-regression (default warming_c).")
@click.option("--title", help="Figure title (default: the response).")
@click.option("--output", required=True, type=click.Path(dir_okay=False),
              help="File to write; the format comes from its extension: .svg, .pdf or .png "
                   "(300 dpi).")
@click.pass_context
@fail_cleanly
def plot(ctx, kind, by, group_value, model, method, order, per_site, moderator, title, output,
         **filters):
    """Draw a figure of the effects on --response (default soc_stock) as a meta-analyst draws
    it: forest (Author Year — site rows, estimate [95 % CI] and weight columns, diamonds,
    prediction interval), contour-enhanced funnel with trim-and-fill, bubble plot of a
    meta-regression, leave one site out, cumulative.

    Example: soc-kb plot forest --response soil_respiration --origin srdb --by ecosystem
    --output forest.pdf
    """
    from .. import figures

    fmt = figures.output_format(output)
    filters = parsed_filters(filters)
    response = filters.pop("response", None) or "soc_stock"
    facet = _facet(by) if by else None
    if group_value is not None and not facet:
        raise KBError("--group needs --by, e.g. --by ecosystem --group forest")
    with open_kb(ctx) as kb:
        rows = graph.synthesis_rows(kb, response=response, **filters)
        note_missing(kb, filters)
    if rows.empty:
        raise KBError(f"no effects on {response} match; widen the filters or choose another "
                      "--response")
    if group_value is not None:
        rows = _one_group(rows, facet, group_value)
        facet = None
    fig = _figure(figures, kind, rows, facet, model, method, order, per_site, moderator, title)
    data = figures.figure_bytes(fig, fmt)
    try:
        Path(output).write_bytes(data)
    except OSError as exc:
        raise KBError(f"--output {shown(output)}: cannot write it ({exc.strerror})") from None
    click.echo(f"wrote {output} ({kind}, {fmt})")


def _facet(by: str) -> str:
    if by not in FACETS:
        raise KBError(f"--by: {shown(by)} is not a facet; use one of "
                      f"{', '.join(sorted(set(FACETS.values())))}")
    return FACETS[by]


def _one_group(rows, facet: str, value: str):
    try:
        grouped = prepare_groups(rows, [facet])
    except EvidenceError as exc:
        raise KBError(str(exc)) from None
    chosen = grouped[grouped[facet].astype(str) == value]
    if chosen.empty:
        present = sorted(set(grouped[facet].astype(str)))
        raise KBError(f"--group: no {facet} {shown(value)} in this selection; it has "
                      f"{', '.join(present[:12])}")
    return chosen.drop(columns=[facet]) if facet not in rows else chosen


def _figure(figures, kind, rows, facet, model, method, order, per_site, moderator, title):
    if kind == "forest":
        return figures.forest_figure(rows, model=model, method=method, by=facet,
                                     order=order or "estimate", per_site=per_site, title=title)
    if facet:
        raise KBError(f"--by draws subgroups in a forest plot only; for {kind}, choose one "
                      "group with --by FACET --group VALUE")
    if kind == "funnel":
        return figures.funnel_figure(rows, model=model, method=method, title=title)
    if kind == "leave-one-out":
        return figures.leave_one_out_figure(rows, model=model, method=method,
                                            order=order or "estimate", title=title)
    if kind == "cumulative":
        return figures.cumulative_figure(rows, order=order or "year", model=model, method=method,
                                         title=title)
    return figures.bubble_figure(_moderation(rows, moderator or "warming_c", model, method),
                                 title=title)


def _moderation(rows, moderator: str, model: str, method: str):
    from evidence.moderators import moderator_analysis

    if model == "robust":
        raise KBError("bubble: --model multilevel or independent (no CR2 for moderators yet)")
    try:
        return moderator_analysis(rows, moderator, model=model, method=method)
    except EvidenceError as exc:
        raise KBError(f"bubble on {moderator}: {exc}") from None

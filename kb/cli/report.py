"""``soc-kb report``: a synthesis report as one HTML or PDF file (thin: parse, call
:func:`kb.claims.report.build_report`, write)."""

from __future__ import annotations

from pathlib import Path

import click

from evidence import METHODS
from evidence.synthesis import MODELS

from ..claims.report import build_report, report_format
from ..errors import KBError
from .common import fail_cleanly, filter_options, note_missing, open_kb, parsed_filters
from .synth import _facets


@click.command()
@filter_options
@click.option("--by", default="biome", show_default=True,
              help="One or two facets, comma-separated, as for soc-kb synth.")
@click.option("--model", type=click.Choice(MODELS), default="multilevel", show_default=True,
              help="multilevel (effects in sites in sources), independent or robust (CR2).")
@click.option("--method", type=click.Choice(METHODS), default="REML", show_default=True,
              help="Variance-component estimator (REML or ML for multilevel).")
@click.option("--test", type=click.Choice(["z", "t", "knha"]), help="As for soc-kb synth.")
@click.option("--output", required=True, type=click.Path(dir_okay=False),
              help="report.html or report.pdf: the extension chooses the format.")
@click.pass_context
@fail_cleanly
def report(ctx, by, model, method, test, output, **filters):
    """A synthesis report: methods written from the fit that was run, the synthesis table
    with its footnotes, certainty and its reasons, forest and funnel plots, sensitivity,
    the references of every included study, and the query and data fingerprint that
    reproduce it.

    --response is one response (default soc_stock); the study filters select the rows as
    for soc-kb synth. Nothing is written unless the whole report is made.
    """
    fmt = report_format(output)
    facets = _facets(by)
    filters = parsed_filters(filters)
    response = filters.pop("response", None) or "soc_stock"
    if "," in response:
        raise KBError(f"--response: '{response[:60]}' names several; a report is about one response")
    with open_kb(ctx) as kb:
        made = build_report(kb, response, facets, model=model, method=method, test=test, **filters)
        note_missing(kb, filters)
    data = made.write(fmt)
    Path(output).write_bytes(data)
    click.echo(f"wrote {output} ({len(made.study_ids)} studies, {len(made.references)} "
               f"references; data fingerprint {made.fingerprint})")

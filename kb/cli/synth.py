"""Commands for synthesis tables and the claim–evidence graph: ``synth``, ``claims`` and
``claim`` (thin: parse, call :mod:`kb.claims.graph` / :mod:`evidence`, print). The graph
exports are formats of ``soc-kb export`` (graphml, json-graph, dot)."""

from __future__ import annotations

import json
from pathlib import Path

import click
import pandas as pd

from evidence import METHODS, EvidenceError
from evidence.synthesis import MODELS, evidence_map, synthesize

from ..claims import graph
from ..claims.notes import (
    DECIMALS,
    PVALUES,
    caption,
    export_notes,
    facet_labels,
    notes_block,
    table_layout,
)
from ..errors import KBError
from ..records import shown
from ..render import render_table, table_bytes
from ..vocab import FACET_VOCABULARY
from .common import emit, fail_cleanly, filter_options, note_missing, open_kb, parsed_filters

#: --by names -> synthesis column
FACETS = {"biome": "biome", "ecosystem": "ecosystem", "mechanism": "mechanism",
          "depth_class": "depth_class", "depth-class": "depth_class", "warming": "warming_bin",
          "warming_bin": "warming_bin", "study_type": "study_type", "study-type": "study_type",
          "evidence_kind": "evidence_kind"}
TABLE_FORMATS = ["table", "csv", "markdown", "latex", "html", "json", "xlsx"]
#: formats whose notes go to stderr: the file stays data a program reads
DATA_FORMATS = ("csv", "json")
#: --moderator choices: columns of the synthesis rows (depth_mid_cm: the layer's mid-point)
MODERATORS = ("warming_c", "duration_years", "depth_mid_cm", "biome", "ecosystem")

def _facets(by: str) -> list[str]:
    names = [b.strip() for b in by.split(",") if b.strip()]
    unknown = [n for n in names if n not in FACETS]
    if unknown or not 1 <= len(names) <= 2:
        raise KBError(f"--by: '{by}' must be one or two of {', '.join(sorted(set(FACETS.values())))}"
                      ", comma-separated")
    return [FACETS[n] for n in names]


@click.command()
@filter_options
@click.option("--by", default="biome", show_default=True,
              help="One or two facets, comma-separated: biome, ecosystem, mechanism, "
                   "depth_class, warming (bins <1, 1–2, 2–4, ≥4 °C), study_type, evidence_kind.")
@click.option("--model", type=click.Choice(MODELS), default="multilevel", show_default=True,
              help="multilevel: effects nested in sites nested in sources (rma.mv); "
                   "independent: every effect as independent (rma); robust: rma with a CR2 "
                   "cluster-robust SE by source.")
@click.option("--method", type=click.Choice(METHODS), default="REML", show_default=True,
              help="Variance-component estimator: REML or ML for multilevel; any for "
                   "independent and robust (FE: fixed effect).")
@click.option("--test", type=click.Choice(["z", "t", "knha"]),
              help="z (default) or t for multilevel; z (default) or knha for independent; "
                   "robust always uses t on Satterthwaite df.")
@click.option("--sensitivity", is_flag=True,
              help="Instead of the table: each group re-run under alternative assumptions (the "
                   "SRDB error as an SD with n = 3, 4, 6; confounded and flagged contrasts "
                   "dropped; leave one site out), and which groups are fragile.")
@click.option("--scenarios", type=click.Choice(["all", "variance", "contrasts", "sites"]),
              default="all", show_default=True,
              help="With --sensitivity: all scenarios, or only the SRDB variance rule (variance), "
                   "the dropped contrasts (contrasts) or leave one site out (sites).")
@click.option("--moderator", type=click.Choice(MODERATORS),
              help="Instead of the table: a meta-regression of the selection on this moderator "
                   "(nesting-aware with --model multilevel), with the slope also as %% change "
                   "per unit, QM and R².")
@click.option("--map", "as_map", is_flag=True,
              help="Show the evidence map instead: studies per pair of the two --by facets "
                   "(all matching studies; with --response, those bearing on it).")
@click.option("--format", "fmt", type=click.Choice(TABLE_FORMATS), default="table", show_default=True,
              help="table (terminal; column and value ids), csv and json (data: full precision, "
                   "notes on stderr), markdown, latex (booktabs), html, xlsx (needs --output): for "
                   "papers, with labels, units in the headers and the notes as footnotes.")
@click.option("--columns", help="Columns to show, comma-separated (default: all).")
@click.option("--output", type=click.Path(dir_okay=False), help="Write to this file instead of stdout.")
@click.pass_context
@fail_cleanly
def synth(ctx, by, model, method, test, sensitivity, scenarios, moderator, as_map, fmt, columns,
          output, **filters):
    """Synthesis table: pooled effect, heterogeneity, votes and certainty per group.

    --response chooses the response (default soc_stock); studies without an effect on it
    but with a stated direction count in the vote columns. Every row says what stands
    behind its number (k_effects, n_sites, n_sources) and why its certainty is what it is
    (certainty_reasons); the model, estimator and variance assumptions are stated under
    the table (on stderr for csv and json).
    """
    facets = _facets(by)
    if fmt == "xlsx" and not output:
        raise KBError("--format xlsx writes a workbook: give --output FILE.xlsx")
    filters = parsed_filters(filters)
    response = filters.pop("response", None)
    if sum(map(bool, (sensitivity, moderator, as_map))) > 1:
        raise KBError("choose one of --sensitivity, --moderator and --map")
    if sensitivity:
        _write(*_sensitivity(ctx, response or "soc_stock", facets, model, method, test, filters,
                             scenarios, columns), fmt, output)
        return
    if moderator and fmt == "xlsx":
        raise KBError("--moderator gives two tables: choose a --format other than xlsx")
    if moderator:
        emit(_moderation(ctx, response or "soc_stock", moderator, model, method, test, filters, fmt),
             output)
        return
    with open_kb(ctx) as kb:
        if as_map and response is None:  # where evidence is missing: every study counts
            rows = kb.studies(**filters).rename(columns={"id": "study_id"})
        else:
            rows = graph.synthesis_rows(kb, response=response or "soc_stock", **filters)
        vocabularies = {f: kb.vocabulary_names(FACET_VOCABULARY[f]) for f in facets
                        if f in FACET_VOCABULARY}
        labels = facet_labels(kb, facets)
        response_label = facet_labels(kb, ["response"])["response"]
        note_missing(kb, filters)
    if as_map:
        _write(_map(rows, facets, vocabularies), {}, fmt, output)
        return
    table = _synthesis(rows, facets, model, method, test)
    notes = export_notes(rows, table, facets, model, method, test)
    chosen = _chosen(table, columns)
    response = response or "soc_stock"
    title = caption(response_label.get(response, response), facets, model, method)
    _write(chosen, table_layout(chosen, labels, notes, title), fmt, output)


def _write(frame: pd.DataFrame, options: dict, fmt: str, output: str | None) -> None:
    """The table in ``fmt`` to ``output`` or stdout; the notes of a data format (csv, json)
    go to stderr, so the file stays parseable, and the terminal table has no caption."""
    options = dict(options)
    if fmt in DATA_FORMATS and options.get("notes"):
        click.echo("\n".join(options["notes"]), err=True)
    if fmt == "table":
        options.pop("caption", None)
    if fmt == "xlsx":
        Path(output).write_bytes(table_bytes(frame, fmt, **options))
        click.echo(f"wrote {output}")
        return
    emit(render_table(frame, fmt, **options), output)


def _synthesis(rows: pd.DataFrame, facets: list[str], model: str, method: str,
               test: str | None) -> pd.DataFrame:
    if rows.empty:
        raise KBError("no effects or direction-only studies match; widen the filters or "
                      "choose another --response")
    try:
        return synthesize(rows, facets, method=method, test=test, model=model)
    except EvidenceError as exc:
        raise KBError(str(exc)) from None


SENSITIVITY_COLUMNS = ["scenario", "dropped", "model", "k_effects", "n_sites", "n_sources",
                       "estimate", "ci_low", "ci_high", "percent_change", "tau2", "i2",
                       "certainty", "changes", "fragile"]


def _sensitivity(ctx, response, facets, model, method, test, filters, family, columns):
    """The sensitivity table and its render options, its notes saying which groups are
    fragile and why."""
    from ..claims.sensitivity import SCENARIO_FAMILIES, sensitivity_table

    chosen = None if family == "all" else SCENARIO_FAMILIES[family]
    with open_kb(ctx) as kb:
        result = sensitivity_table(kb, response, facets, scenarios=chosen, model=model,
                                   method=method, test=test, **filters)
        labels = facet_labels(kb, facets)
        note_missing(kb, filters)
    table = _chosen(result.to_frame()[[*facets, *SENSITIVITY_COLUMNS]], columns)
    lines = [f"Sensitivity of the {model} synthesis of {response} by {', '.join(facets)}: each "
             "scenario re-runs the synthesis on changed rows; 'changes' names the conclusions "
             "(sign, significance, certainty) that differ from the base row."]
    for row in result.groups.to_dict(orient="records"):
        if row["fragile"]:
            group = " · ".join(str(row[f]) for f in facets)
            lines.append(f"Fragile: {group} — {row['fragile_under']}")
    return table, table_layout(table, labels, lines)


def _moderation(ctx, response, moderator, model, method, test, filters, fmt) -> str:
    """A meta-regression of the selection on one moderator: a summary row and the terms."""
    from evidence.moderators import moderator_analysis

    if model == "robust":
        raise KBError("--moderator fits --model multilevel or independent (no CR2 for moderators yet)")
    with open_kb(ctx) as kb:
        rows = graph.synthesis_rows(kb, response=response, **filters)
        note_missing(kb, filters)
    options = {"test": test} if test else {}
    try:
        result = moderator_analysis(rows, moderator, model=model, method=method, **options)
    except EvidenceError as exc:
        raise KBError(str(exc)) from None
    summary = result.to_frame()
    if fmt not in ("csv", "json"):  # one wide row reads better as field: value
        summary = summary.T.reset_index().set_axis(["field", "value"], axis=1)
    summary = _format(summary, fmt)
    terms = _format(result.coefficients.rename_axis("term").reset_index(), fmt)
    lines = [f"Meta-regression of {response} on {moderator} ({model}, {method}): "
             f"{result.k_effects} effects from {result.n_sites} sites in {result.n_sources} "
             f"sources; {result.k_missing} effects without a {moderator} value left out."]
    lines += [f"Note: {note}" for note in result.notes]
    if fmt in ("csv", "json"):
        click.echo("\n".join(lines), err=True)
        return summary if fmt == "json" else summary + "\n" + terms
    return _with_notes(summary + "\n" + terms, lines, fmt)


def _chosen(table: pd.DataFrame, columns: str | None) -> pd.DataFrame:
    """``--columns``: these columns of the table, in this order."""
    if not columns:
        return table
    chosen = [c.strip() for c in columns.split(",") if c.strip()]
    unknown = [c for c in chosen if c not in table.columns]
    if unknown:
        raise KBError(f"--columns: unknown column {shown(unknown[0])}; available: "
                      f"{', '.join(table.columns)}")
    return table[chosen]


def _with_notes(text: str, lines: list[str], fmt: str) -> str:
    if fmt in ("csv", "json"):  # keep the data file parseable: notes go to stderr
        click.echo("\n".join(lines), err=True)
        return text
    return text + notes_block(lines, fmt)


def _map(rows: pd.DataFrame, facets: list[str], vocabularies: dict) -> pd.DataFrame:
    if len(facets) != 2:
        raise KBError("--map needs two facets, e.g. --by biome,mechanism")
    if rows.empty:
        raise KBError("no studies match; widen the filters")
    table = evidence_map(rows, *facets, vocabularies.get(facets[0]), vocabularies.get(facets[1]))
    return table.reset_index()


def _format(frame: pd.DataFrame, fmt: str, options: dict | None = None) -> str:
    options = {k: v for k, v in (options or {"rounding": DECIMALS, "pvalues": PVALUES}).items()
               if k not in ("notes", "caption")}
    return render_table(frame, fmt, **options)


CLAIM_COLUMNS = ["id", "n_supports", "n_contradicts", "n_qualifies", "certainty", "leaning",
                 "contested", "text"]


@click.command()
@click.option("--contested", is_flag=True, help="Only claims with evidence on both sides or a "
                                                "contradicting claim, with the reasons.")
@click.option("--weak", is_flag=True, help="Only claims resting on a single study or only on models.")
@click.option("--study", "study_id", help="Only the claims this study bears on.")
@click.option("--top-studies", type=int, metavar="N",
              help="Instead of claims: the N studies that bear on the most claims.")
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json", "markdown"]),
              default="table", show_default=True)
@click.pass_context
@fail_cleanly
def claims(ctx, contested, weak, study_id, top_studies, fmt):
    """List claims with their balance of evidence, certainty and which way it leans."""
    if sum(map(bool, (contested, weak, study_id, top_studies is not None))) > 1:
        raise KBError("choose one of --contested, --weak, --study and --top-studies")
    if top_studies is not None and top_studies < 1:
        raise KBError(f"--top-studies: {top_studies} is not a positive number of studies")
    with open_kb(ctx) as kb:
        G = graph.build_graph(kb)
    frame = (graph.top_studies(G, top_studies) if top_studies
             else _claims_frame(G, contested, weak, study_id))
    click.echo(render_table(frame, fmt), nl=False)


def _claims_frame(G, contested: bool, weak: bool, study_id: str | None) -> pd.DataFrame:
    if study_id:
        return graph.study_claims(G, study_id)
    if contested:
        return graph.contested_claims(G)
    if weak:
        return graph.weak_claims(G)
    states = graph.claim_states(G).rename_axis("id").reset_index()
    states["text"] = [G.nodes[f"claim:{i}"].get("text") for i in states["id"]]
    return states[CLAIM_COLUMNS]


@click.command()
@click.argument("claim_id")
@click.option("--format", "fmt", type=click.Choice(["markdown", "json"]), default="markdown",
              show_default=True)
@click.pass_context
@fail_cleanly
def claim(ctx, claim_id, fmt):
    """One claim: its evidence, balance, contest, certainty and the reasons for it."""
    with open_kb(ctx) as kb:
        report = graph.claim_report(kb, claim_id)
    if fmt == "json":
        click.echo(json.dumps(report.to_dict(), ensure_ascii=False, indent=1, default=str))
    else:
        click.echo(report.to_markdown())


"""Commands on records: ``init``, ``add``, ``import-bib``, ``query``, ``export``, ``template``,
``remove`` and ``update``."""

from __future__ import annotations

from pathlib import Path

import click
import pandas as pd

from ..claims import GRAPH_FORMATS
from ..errors import KBError
from ..records import shown
from ..render import plain_value, render_table
from ..store import KnowledgeBase
from .common import (
    TABLE_NAMES,
    fail_cleanly,
    filter_options,
    note_missing,
    open_kb,
    parsed_filters,
    progress,
)

QUERY_FORMATS = ["table", "csv", "json", "markdown"]
RECORD_FORMATS = ["csv", "json", "yaml", "bib"]


@click.command()
@click.option("--empty", is_flag=True, help="Create an empty base instead of the shipped seed.")
@click.pass_context
@fail_cleanly
def init(ctx, empty):
    """Create the knowledge base (from the shipped seed unless --empty)."""
    path = Path(ctx.obj["db"])
    if path.exists():
        raise click.ClickException(f"{path} already exists; remove it or choose another --db")
    with open_kb(ctx, seed=not empty, create=True) as kb:
        counts = kb.counts()
    click.echo(f"created {path}: " + ", ".join(f"{n} {t}" for t, n in counts.items()))


@click.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True))
@click.option("--table", type=click.Choice(["sources", "studies", "effects", "claims", "claim_links"]),
              help="Table a CSV file holds (default: the file name, e.g. studies.csv).")
@click.pass_context
@fail_cleanly
def add(ctx, files, table):
    """Add the records of YAML, JSON, CSV or BibTeX FILES (all or nothing)."""
    from ..claims.graph import add_and_report
    from ..files import read_record_files

    records, origins = read_record_files(files, table)
    total = sum(len(rows) for rows in records.values())
    with open_kb(ctx) as kb, progress(total, "adding records") as bar:
        counts, impact = add_and_report(kb, records, progress=bar, origins=origins)
    click.echo("added " + (", ".join(f"{n} {t}" for t, n in counts.items()) or "nothing"))
    # what the new records change: the claims they touch, balance and certainty before -> after
    if not impact.to_frame().empty:
        click.echo("claims touched:\n" + impact.summary())


@click.command("import-bib")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.pass_context
@fail_cleanly
def import_bib(ctx, file):
    """Add every entry of a BibTeX FILE as a source (all or nothing)."""
    with open_kb(ctx) as kb:
        count = kb.import_bib(file)
    click.echo(f"added {count} sources from {file}")


@click.command()
@filter_options
@click.option("--table", "what", type=click.Choice(["studies", "effects", "claims", "sources"]),
              default="studies", show_default=True, help="What to list.")
@click.option("--format", "fmt", type=click.Choice(QUERY_FORMATS), default="table", show_default=True)
@click.option("--columns", help="Columns to show, comma-separated (default: a readable subset).")
@click.option("--limit", type=click.IntRange(min=1), help="At most this many rows (1 or more).")
@click.pass_context
@fail_cleanly
def query(ctx, what, fmt, columns, limit, **filters):
    """Query the evidence: studies (default), effects, claims or sources matching filters."""
    filters = parsed_filters(filters)
    with open_kb(ctx) as kb:
        frame = _select(kb, what, filters, limit)
        if what in ("studies", "effects"):
            note_missing(kb, filters)
    click.echo(render_table(frame, fmt, _columns(what, columns, fmt, frame)), nl=False)


def _select(kb: KnowledgeBase, what: str, filters: dict, limit):
    if what == "studies":
        return kb.studies(limit=limit, **filters)
    if what == "effects":
        return kb.effects(limit=limit, **filters)
    if what == "claims":
        return kb.claims(limit=limit, **_only(filters, CLAIM_FILTERS, "claims"))
    renamed = {("key" if k == "source_key" else k): v for k, v in filters.items()}
    return kb.sources(limit=limit, **_only(renamed, SOURCE_FILTERS, "sources"))


CLAIM_FILTERS = {"biome", "ecosystem", "mechanism", "depth_class", "text"}
SOURCE_FILTERS = {"year", "text", "key"}


def _only(filters: dict, allowed: set, what: str) -> dict:
    extra = sorted(set(filters) - allowed)
    if extra:
        raise KBError(f"--{extra[0].replace('_', '-')} does not apply to {what}; "
                      f"use {', '.join('--' + a.replace('_', '-') for a in sorted(allowed))}")
    return filters


DEFAULT_COLUMNS = {
    "studies": ["id", "first_author", "year", "study_type", "biome", "ecosystem", "depth_class",
                "warming_c", "soc_direction", "mechanisms"],
    "effects": ["id", "study_id", "response", "biome", "ecosystem", "warming_c", "mean_t",
                "mean_c", "yi", "vi", "variance_note"],
    "claims": ["id", "section", "text", "n_supports", "n_contradicts", "n_qualifies"],
    "sources": ["key", "first_author", "year", "title", "doi", "verification"],
}


def _columns(what: str, columns: str | None, fmt: str, frame: pd.DataFrame) -> list[str]:
    if columns:
        chosen = [c.strip() for c in columns.split(",")]
        unknown = [c for c in chosen if c not in frame.columns]
        if unknown:
            raise KBError(f"--columns: unknown column {shown(unknown[0])}; available: "
                          f"{', '.join(frame.columns)}")
        return chosen
    return DEFAULT_COLUMNS[what] if fmt in ("table", "markdown") else list(frame.columns)


@click.command()
@click.option("--format", "fmt", type=click.Choice([*RECORD_FORMATS, *GRAPH_FORMATS]),
              required=True, help="csv/json/yaml/bib: the records; graphml, json-graph "
              "(node-link JSON) or dot: the claim–evidence graph.")
@click.option("--output", required=True, type=click.Path(), help="File (or folder, for csv).")
@click.pass_context
@fail_cleanly
def export(ctx, fmt, output):
    """Export the whole knowledge base (csv writes a folder with one file per table), or
    its claim–evidence graph (graphml, json-graph, dot)."""
    with open_kb(ctx) as kb:
        if fmt in RECORD_FORMATS:
            path = kb.export(output, fmt)
        else:
            from ..claims.graph import export_graph

            path = export_graph(kb, output, fmt)
    click.echo(f"wrote {path}")


@click.command()
@click.option("--format", "fmt", type=click.Choice(["yaml", "json", "csv", "schema"]), default="yaml",
              show_default=True, help="yaml/json: a record file; csv: a studies.csv header; "
              "schema: the JSON Schema of every record type.")
def template(fmt):
    """Print a commented example record file to fill in."""
    from ..template import template_text

    click.echo(template_text(fmt), nl=False)


def _key(name: str, key: str):
    """The primary key as stored: claim links are numbered."""
    if name != "claim_links":
        return key
    if not (key.isascii() and key.isdigit()) or len(key) > 18:
        raise KBError(f"link id {shown(key)} is not a link number; links are numbered 1, 2, … "
                      "(soc-kb query --table claims shows them per claim)")
    return int(key)


@click.command()
@click.argument("table", type=click.Choice(list(TABLE_NAMES)))
@click.argument("key")
@click.option("--cascade", is_flag=True, help="Also remove the records that depend on it.")
@click.pass_context
@fail_cleanly
def remove(ctx, table, key, cascade):
    """Remove one record (refused if others depend on it, unless --cascade)."""
    name = TABLE_NAMES[table]
    with open_kb(ctx) as kb:
        count = kb.remove(name, _key(name, key), cascade=cascade)
    click.echo(f"removed {count} record{'s' if count != 1 else ''}")


@click.command()
@click.argument("table", type=click.Choice(list(TABLE_NAMES)))
@click.argument("key")
@click.argument("changes", nargs=-1, required=True, metavar="FIELD=VALUE...")
@click.pass_context
@fail_cleanly
def update(ctx, table, key, changes):
    """Change fields of one record (validated like an add; audited). FIELD= clears a field."""
    name = TABLE_NAMES[table]
    parsed = dict(_field_value(name, item) for item in changes)
    with open_kb(ctx) as kb:
        before = kb.get(name, _key(name, key))
        after = kb.update(name, _key(name, key), parsed)
    for field in parsed:
        click.echo(f"{field}: {plain_value(before.get(field))!r} -> {plain_value(after.get(field))!r}")


def _field_value(table: str, item: str) -> tuple[str, object]:
    """``FIELD=VALUE`` -> (field, value): numbers for numeric columns, ``;``-lists for a
    study's mechanisms and a claim's aliases."""
    from ..schema import COLUMNS

    field, sep, text = item.partition("=")
    field, text = field.strip(), text.strip()
    lists = {"studies": {"mechanisms": "LIST"}, "claims": {"aliases": "LIST"}}.get(table, {})
    columns = {**COLUMNS[table], **lists}
    if not sep or field not in columns:
        raise KBError(f"update: {shown(item)} must be FIELD=VALUE with FIELD one of "
                      f"{', '.join(sorted(columns))}")
    if not text:
        return field, None
    if columns[field] == "LIST":
        return field, [m.strip() for m in text.split(";") if m.strip()]
    if columns[field] in ("INTEGER", "REAL"):
        return field, _number(field, text, columns[field])
    return field, text


def _number(field: str, text: str, kind: str):
    try:
        return int(text) if kind == "INTEGER" else float(text)
    except ValueError:
        raise KBError(f"update: {field}={shown(text)} is not a"
                      f"{'n integer' if kind == 'INTEGER' else ' number'}") from None

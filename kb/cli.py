"""``soc-kb``: the command line over :class:`kb.KnowledgeBase` (thin: parse, call, print).

The database is ``--db PATH``, else ``$SOC_KB_DB``, else ``./soc-kb.db``. Errors print one
line (no traceback) and exit with status 1.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import json
import sys
from pathlib import Path

import click
import pandas as pd

from .errors import KBError
from .query import parse_range
from .store import KnowledgeBase

PROGRESS_THRESHOLD = 2000  # records; smaller imports finish before a bar is worth drawing


def _fail_cleanly(command):
    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except KBError as exc:
            raise click.ClickException(str(exc)) from None
    return wrapper


class _LazyGroup(click.Group):
    """A group whose heavier commands (graph, statistics, importers) load on first use.

    Those modules import helpers from this one, so loading them lazily also avoids an
    import cycle, and ``soc-kb query`` does not pay for networkx and scipy.
    """

    LAZY = {
        "import-srdb": "kb.importers.commands:import_srdb",
        "import-cosore": "kb.importers.commands:import_cosore",
        "synth": "kb.commands_synth:synth",
        "claims": "kb.commands_synth:claims",
        "claim": "kb.commands_synth:claim",
    }

    def list_commands(self, ctx):
        return sorted([*super().list_commands(ctx), *self.LAZY])

    def get_command(self, ctx, name):
        if name not in self.LAZY:
            return super().get_command(ctx, name)
        module, attribute = self.LAZY[name].split(":")
        return getattr(importlib.import_module(module), attribute)


@click.group(cls=_LazyGroup)
@click.version_option(package_name="soc-kb")
@click.option("--db", "db_path", envvar="SOC_KB_DB", default="soc-kb.db", show_default=True,
              type=click.Path(dir_okay=False), help="Database file (or set SOC_KB_DB).")
@click.pass_context
def cli(ctx, db_path):
    """soc-kb: an evidence knowledge base for soil organic carbon–climate feedbacks."""
    ctx.obj = {"db": db_path}


def _open(ctx, seed: bool = True) -> KnowledgeBase:
    return KnowledgeBase(ctx.obj["db"], seed=seed)


@cli.command()
@click.option("--empty", is_flag=True, help="Create an empty base instead of the shipped seed.")
@click.pass_context
@_fail_cleanly
def init(ctx, empty):
    """Create the knowledge base (from the shipped seed unless --empty)."""
    path = Path(ctx.obj["db"])
    if path.exists():
        raise click.ClickException(f"{path} already exists; remove it or choose another --db")
    with _open(ctx, seed=not empty) as kb:
        counts = kb.counts()
    click.echo(f"created {path}: " + ", ".join(f"{n} {t}" for t, n in counts.items()))


@cli.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True))
@click.option("--table", type=click.Choice(["sources", "studies", "effects", "claims", "claim_links"]),
              help="Table a CSV file holds (default: the file name, e.g. studies.csv).")
@click.pass_context
@_fail_cleanly
def add(ctx, files, table):
    """Add the records of YAML, JSON, CSV or BibTeX FILES (all or nothing)."""
    from .files import read_record_files
    from .graph import add_and_report

    records, origins = read_record_files(files, table)
    total = sum(len(rows) for rows in records.values())
    with _open(ctx) as kb, _progress(total, "adding records") as bar:
        counts, impact = add_and_report(kb, records, progress=bar, origins=origins)
    click.echo("added " + (", ".join(f"{n} {t}" for t, n in counts.items()) or "nothing"))
    # what the new records change: the claims they touch, balance and certainty before -> after
    if not impact.to_frame().empty:
        click.echo("claims touched:\n" + impact.summary())


@cli.command("import-bib")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.pass_context
@_fail_cleanly
def import_bib(ctx, file):
    """Add every entry of a BibTeX FILE as a source (all or nothing)."""
    with _open(ctx) as kb:
        count = kb.import_bib(file)
    click.echo(f"added {count} sources from {file}")


_FORMATS = ["table", "csv", "json", "markdown"]


def _filter_options(command):
    options = [
        click.option("--biome", help="Biome(s), comma-separated."),
        click.option("--ecosystem", help="Ecosystem(s), comma-separated."),
        click.option("--mechanism", help="Any of these mechanisms, comma-separated."),
        click.option("--depth-class", help="Depth class(es), comma-separated."),
        click.option("--depth-range", help="Sampled layer overlapping TOP:BOTTOM cm, e.g. 30:100."),
        click.option("--direction", help="SOC direction(s): increase, decrease, no_change, mixed, not_reported."),
        click.option("--respiration-direction", help="Respiration direction(s)."),
        click.option("--study-type", help="Study type(s), comma-separated."),
        click.option("--warming", help="Warming range in °C, LOW:HIGH (either end may be empty)."),
        click.option("--year", help="Publication year range, FROM:TO."),
        click.option("--response", help="Studies with effects on these responses."),
        click.option("--text", help="Free text over titles, summaries and quotes."),
        click.option("--source-key", help="Source key(s)."),
        click.option("--origin", help="Origin(s), e.g. soc_review, srdb, user."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


@cli.command()
@_filter_options
@click.option("--table", "what", type=click.Choice(["studies", "effects", "claims", "sources"]),
              default="studies", show_default=True, help="What to list.")
@click.option("--format", "fmt", type=click.Choice(_FORMATS), default="table", show_default=True)
@click.option("--columns", help="Columns to show, comma-separated (default: a readable subset).")
@click.option("--limit", type=int, help="At most this many rows.")
@click.pass_context
@_fail_cleanly
def query(ctx, what, fmt, columns, limit, **filters):
    """Query the evidence: studies (default), effects, claims or sources matching filters."""
    filters = _parsed_filters(filters)
    with _open(ctx) as kb:
        frame = _select(kb, what, filters, limit)
    click.echo(render(frame, fmt, _columns(what, columns, fmt, frame)), nl=False)


def _parsed_filters(filters: dict) -> dict:
    chosen = {k: v for k, v in filters.items() if v not in (None, "")}
    for name in ("warming", "year", "depth_range"):
        if name in chosen:
            chosen[name] = parse_range(chosen[name], "--" + name.replace("_", "-"))
    return chosen


def _select(kb: KnowledgeBase, what: str, filters: dict, limit):
    if what == "studies":
        return kb.studies(limit=limit, **filters)
    if what == "effects":
        return kb.effects(limit=limit, **filters)
    if what == "claims":
        return kb.claims(limit=limit, **_claim_filters(filters))
    return kb.sources(limit=limit, **_source_filters(filters))


def _claim_filters(filters: dict) -> dict:
    allowed = {"biome", "ecosystem", "mechanism", "depth_class", "text"}
    return _only(filters, allowed, "claims")


def _source_filters(filters: dict) -> dict:
    renamed = {("key" if k == "source_key" else k): v for k, v in filters.items()}
    return _only(renamed, {"year", "text", "key"}, "sources")


def _only(filters: dict, allowed: set, what: str) -> dict:
    extra = sorted(set(filters) - allowed)
    if extra:
        raise KBError(f"--{extra[0].replace('_', '-')} does not apply to {what}; "
                      f"use {', '.join('--' + a.replace('_', '-') for a in sorted(allowed))}")
    return filters


_DEFAULT_COLUMNS = {
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
            raise KBError(f"--columns: unknown column '{unknown[0]}'; available: {', '.join(frame.columns)}")
        return chosen
    return _DEFAULT_COLUMNS[what] if fmt in ("table", "markdown") else list(frame.columns)


def render(frame: pd.DataFrame, fmt: str, columns: list[str]) -> str:
    """A DataFrame as text: an aligned table, CSV, JSON records or a Markdown table."""
    frame = frame.loc[:, columns].copy()
    if "mechanisms" in frame:
        frame["mechanisms"] = [", ".join(m) if isinstance(m, list) else m for m in frame["mechanisms"]]
    if fmt == "json":
        return json.dumps(_records(frame), ensure_ascii=False, indent=1) + "\n"
    if fmt == "csv":
        return frame.to_csv(index=False)
    if frame.empty:
        return "(no matching records)\n"
    frame = frame.map(_short) if fmt == "table" else frame
    if fmt == "markdown":
        return frame.to_markdown(index=False) + "\n"
    return frame.to_string(index=False, na_rep="") + "\n"


def _records(frame: pd.DataFrame) -> list[dict]:
    return [{k: _plain(v) for k, v in row.items()} for row in frame.to_dict(orient="records")]


def _plain(value):
    if value is None or value is pd.NA or (isinstance(value, float) and pd.isna(value)):
        return None
    return value.item() if hasattr(value, "item") else value


def _short(value, width: int = 48):
    if isinstance(value, str) and len(value) > width:
        return value[:width - 1] + "…"
    return "" if value is None or value is pd.NA else value


GRAPH_FORMATS = ["graphml", "json-graph", "dot"]  # kb.graph.GRAPH_FORMATS


@cli.command()
@click.option("--format", "fmt", type=click.Choice(["csv", "json", "yaml", "bib", *GRAPH_FORMATS]),
              required=True, help="csv/json/yaml/bib: the records; graphml, json-graph "
              "(node-link JSON) or dot: the claim–evidence graph.")
@click.option("--output", required=True, type=click.Path(), help="File (or folder, for csv).")
@click.pass_context
@_fail_cleanly
def export(ctx, fmt, output):
    """Export the whole knowledge base (csv writes a folder with one file per table), or
    its claim–evidence graph (graphml, json-graph, dot)."""
    with _open(ctx) as kb:
        if fmt in GRAPH_FORMATS:
            from .graph import export_graph

            path = export_graph(kb, output, fmt)
        else:
            path = kb.export(output, fmt)
    click.echo(f"wrote {path}")


@cli.command()
@click.option("--format", "fmt", type=click.Choice(["yaml", "json", "csv", "schema"]), default="yaml",
              show_default=True, help="yaml/json: a record file; csv: a studies.csv header; "
              "schema: the JSON Schema of every record type.")
def template(fmt):
    """Print a commented example record file to fill in."""
    from .template import template_text

    click.echo(template_text(fmt), nl=False)


TABLE_NAMES = {"source": "sources", "study": "studies", "effect": "effects", "claim": "claims",
               "link": "claim_links"}


def _key(name: str, key: str):
    return int(key) if name == "claim_links" else key


@cli.command()
@click.argument("table", type=click.Choice(list(TABLE_NAMES)))
@click.argument("key")
@click.option("--cascade", is_flag=True, help="Also remove the records that depend on it.")
@click.pass_context
@_fail_cleanly
def remove(ctx, table, key, cascade):
    """Remove one record (refused if others depend on it, unless --cascade)."""
    name = TABLE_NAMES[table]
    with _open(ctx) as kb:
        count = kb.remove(name, _key(name, key), cascade=cascade)
    click.echo(f"removed {count} record{'s' if count != 1 else ''}")


@cli.command()
@click.argument("table", type=click.Choice(list(TABLE_NAMES)))
@click.argument("key")
@click.argument("changes", nargs=-1, required=True, metavar="FIELD=VALUE...")
@click.pass_context
@_fail_cleanly
def update(ctx, table, key, changes):
    """Change fields of one record (validated like an add; audited). FIELD= clears a field."""
    name = TABLE_NAMES[table]
    parsed = dict(_field_value(name, item) for item in changes)
    with _open(ctx) as kb:
        before = kb.get(name, _key(name, key))
        after = kb.update(name, _key(name, key), parsed)
    for field in parsed:
        click.echo(f"{field}: {_plain(before.get(field))!r} -> {_plain(after.get(field))!r}")


def _field_value(table: str, item: str) -> tuple[str, object]:
    """``FIELD=VALUE`` -> (field, value): numbers for numeric columns, ``;``-lists for mechanisms."""
    from .schema import COLUMNS

    field, sep, text = item.partition("=")
    field, text = field.strip(), text.strip()
    columns = {**COLUMNS[table], **({"mechanisms": "LIST"} if table == "studies" else {})}
    if not sep or field not in columns:
        raise KBError(f"update: '{item}' must be FIELD=VALUE with FIELD one of "
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
        raise KBError(f"update: {field}='{text}' is not a{'n integer' if kind == 'INTEGER' else ' number'}") from None


def _progress(total: int, label: str):
    """Progress on stderr for large imports: a bar on a terminal, a line per chunk otherwise."""
    if total < PROGRESS_THRESHOLD:
        return contextlib.nullcontext()
    if sys.stderr.isatty():
        return _Bar(click.progressbar(length=total, label=label, file=sys.stderr))
    return contextlib.nullcontext(_LineProgress(total, label))


class _LineProgress:
    """Prints ``label: done/total`` after each chunk (logs and pipes have no bar)."""

    def __init__(self, total: int, label: str):
        self.total, self.label, self.done = total, label, 0

    def __call__(self, count: int) -> None:
        self.done += count
        click.echo(f"{self.label}: {self.done}/{self.total}", err=True)


class _Bar:
    def __init__(self, bar):
        self.bar = bar

    def __enter__(self):
        self.bar.__enter__()
        return self.bar.update

    def __exit__(self, *exc):
        return self.bar.__exit__(*exc)

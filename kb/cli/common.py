"""What every ``soc-kb`` command shares: opening the database, one-line errors, the study
filter options, parsed ranges and progress for long imports."""

from __future__ import annotations

import contextlib
import functools
import sqlite3
import sys
from pathlib import Path

import click

from ..errors import KBError
from ..query import RANGE_FILTERS, parse_range
from ..schema import storage_problem
from ..store import KnowledgeBase

PROGRESS_THRESHOLD = 2000  # records; smaller imports finish before a bar is worth drawing

#: the CLI's singular table names -> tables
TABLE_NAMES = {"source": "sources", "study": "studies", "effect": "effects", "claim": "claims",
               "link": "claim_links"}


def fail_cleanly(command):
    """Turn the knowledge base's errors into one line on stderr and exit status 1."""
    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except KBError as exc:
            raise click.ClickException(str(exc)) from None
        except sqlite3.Error as exc:  # the store names these; a last guard against a traceback
            raise click.ClickException(storage_problem(click.get_current_context().obj["db"], exc)) from None
    return wrapper


def open_kb(ctx, seed: bool = True, create: bool = False) -> KnowledgeBase:
    """The knowledge base of ``--db``.

    A path named with ``--db`` or ``SOC_KB_DB`` must exist (a typo must not silently make a
    new base) unless ``create``; the default ``./soc-kb.db`` is made from the shipped seed
    on first use, and the command says so on stderr.
    """
    path = Path(ctx.obj["db"])
    first_use = not ctx.obj.get("named") and not path.exists()
    kb = KnowledgeBase(path, seed=seed, create=create or first_use)
    if first_use and not create:
        click.echo(f"created {path} from the shipped knowledge base (soc-kb init)", err=True)
    return kb


def filter_options(command):
    """The study filters every query-like command takes (``--biome``, ``--warming`` ...)."""
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
        click.option("--duration", help="Study duration range in years, LOW:HIGH."),
        click.option("--include-missing", is_flag=True, default=None,
                     help="Range filters keep studies that state no value for them."),
        click.option("--response", help="Studies with effects on these responses."),
        click.option("--text", help="Free text over titles, summaries and quotes."),
        click.option("--source-key", help="Source key(s)."),
        click.option("--origin", help="Origin(s), e.g. soc_review, srdb, user."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def parsed_filters(filters: dict) -> dict:
    """The given filter options, ranges parsed (``"1:2"`` -> ``(1.0, 2.0)``)."""
    chosen = {k: v for k, v in filters.items() if v not in (None, "")}
    for name in RANGE_FILTERS:
        if name in chosen:
            chosen[name] = parse_range(chosen[name], "--" + name.replace("_", "-"))
    return chosen


def note_missing(kb: KnowledgeBase, filters: dict) -> None:
    """On stderr: how many studies each range filter leaves out for lack of a value."""
    if filters.get("include_missing") or not any(name in filters for name in RANGE_FILTERS):
        return
    for name, count in kb.missing_values(**filters).items():
        if count:
            option = "--" + name.replace("_", "-")
            click.echo(f"note: {option} leaves out {count} stud{'y' if count == 1 else 'ies'} that "
                       f"state no {RANGE_FILTERS[name]}; add --include-missing to keep them", err=True)


def emit(text: str, output: str | None) -> None:
    """Print ``text``, or write it to ``output`` and say so."""
    if output:
        Path(output).write_text(text, encoding="utf-8")
        click.echo(f"wrote {output}")
    else:
        click.echo(text, nl=False)


def progress(total: int, label: str):
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

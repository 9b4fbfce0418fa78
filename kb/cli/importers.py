"""``soc-kb import-srdb`` and ``soc-kb import-cosore`` (thin: read, add, print).

Both take the raw-data folder; with ``--write-seed PATH`` they write the reviewable seed
file instead of touching a database. The importing itself is :mod:`kb.importers`.
"""

from __future__ import annotations

import importlib

import click

from ..errors import KBError
from ..importers import Imported, add_new, seed_doi_owner, write_seed
from .common import open_kb, progress


def _echo_summary(result: Imported) -> None:
    for label, count in result.summary:
        click.echo(f"{label}: {count}")


def _run(ctx, module: str, directory: str, seed_path: str | None) -> None:
    """Write the seed, or add what is new to the database; print the summary.

    Errors print one line (no traceback) and exit with status 1.
    """
    try:
        _import(ctx, importlib.import_module(f"kb.importers.{module}"), directory, seed_path)
    except KBError as exc:
        raise click.ClickException(str(exc)) from None


def _import(ctx, module, directory: str, seed_path: str | None) -> None:
    """Read the raw files; then write the seed, or add the new records in one transaction."""
    raw = module.read(directory)  # all reading and checking first: a bad file opens no database
    if seed_path:
        result = module.build(raw, seed_doi_owner())
        _echo_summary(result)
        write_seed(result.records, seed_path, module.SEED_HEADER)
        click.echo(f"wrote {seed_path}")
        return
    with open_kb(ctx) as kb:
        result = module.build(raw, kb.source_with_doi)
        _echo_summary(result)
        total = sum(len(rows) for rows in result.records.values())
        with progress(total, "adding records") as bar:
            added, present = add_new(kb, result.records, progress=bar)
    if not added:
        click.echo(f"nothing new: all {present} records are already in {ctx.obj['db']}")
        return
    click.echo("added " + ", ".join(f"{n} {t}" for t, n in added.items())
               + (f" ({present} already present)" if present else ""))


def _command(name: str, module: str, help_text: str):
    """A ``soc-kb import-<name> DIRECTORY [--write-seed PATH]`` command."""

    @click.command(name, help=help_text)
    @click.argument("directory", type=click.Path(exists=True, file_okay=False))
    @click.option("--write-seed", "seed_path", type=click.Path(dir_okay=False),
                  help="Write the records to this YAML seed file instead of the database.")
    @click.pass_context
    def command(ctx, directory, seed_path):
        _run(ctx, module, directory, seed_path)

    return command


import_srdb = _command(
    "import-srdb", "srdb",
    "Import SRDB-V5 warming contrasts from DIRECTORY (srdb-data.csv, srdb-studies.csv).")
import_cosore = _command(
    "import-cosore", "cosore",
    "Import the COSORE Terracosm warming dataset (d20200229_PHILLIPS) from DIRECTORY.")

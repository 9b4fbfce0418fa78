"""``soc-kb``: the command line over :class:`kb.KnowledgeBase` (thin: parse, call, print).

The database is ``--db PATH``, else ``$SOC_KB_DB``, else ``./soc-kb.db``. Errors print one
line (no traceback) and exit with status 1. Each command lives in a module of this package
and is loaded when it is first used, so ``soc-kb query`` does not pay for networkx and scipy.
"""

from __future__ import annotations

import importlib

import click

from ..store import DB_ENV, DEFAULT_DB

#: command -> "module:attribute" (modules of this package)
COMMANDS = {
    "init": "records:init",
    "add": "records:add",
    "import-bib": "records:import_bib",
    "query": "records:query",
    "export": "records:export",
    "template": "records:template",
    "remove": "records:remove",
    "update": "records:update",
    "import-srdb": "importers:import_srdb",
    "import-cosore": "importers:import_cosore",
    "synth": "synth:synth",
    "claims": "synth:claims",
    "claim": "synth:claim",
    "report": "report:report",
    "plot": "plot:plot",
}


class _LazyGroup(click.Group):
    """A group whose commands are imported on first use."""

    def list_commands(self, ctx):
        return sorted(COMMANDS)

    def get_command(self, ctx, name):
        if name not in COMMANDS:
            return None
        module, attribute = COMMANDS[name].split(":")
        return getattr(importlib.import_module(f"{__name__}.{module}"), attribute)


@click.group(cls=_LazyGroup)
@click.version_option(package_name="soc-kb")
@click.option("--db", "db_path", envvar=DB_ENV, default=DEFAULT_DB, show_default=True,
              type=click.Path(dir_okay=False), help="Database file (or set SOC_KB_DB).")
@click.pass_context
def cli(ctx, db_path):
    """soc-kb: an evidence knowledge base for soil organic carbon–climate feedbacks."""
    named = ctx.get_parameter_source("db_path") is not click.core.ParameterSource.DEFAULT
    ctx.obj = {"db": db_path, "named": named}

"""``python -m kb`` runs the soc-kb command line."""

from .cli import cli

cli(prog_name="soc-kb")

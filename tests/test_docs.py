"""The README's set-up commands are the ones CI runs, and its first command works."""

from __future__ import annotations

import re
import shlex

from click.testing import CliRunner
from conftest import ROOT

from kb.cli import cli


def _setup_commands() -> list[str]:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"```bash\n(.*?)```", readme, re.S).group(1)
    return [line for line in block.splitlines() if line.strip()]


def test_readme_opens_with_two_commands_and_ci_runs_the_second():
    first, second = _setup_commands()
    assert first.startswith("pip install ")
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").strip().splitlines()
    assert ci[-1] == second


def test_first_command_runs_on_the_shipped_knowledge_base(tmp_path):
    command = _setup_commands()[0].split("&&")[-1].strip()
    args = shlex.split(command)
    assert args[0] == "soc-kb"
    result = CliRunner().invoke(cli, ["--db", str(tmp_path / "first.db"), *args[1:]])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[0].split()[0] == "id"

"""The README's set-up commands are the ones CI runs, and its first command opens the explorer."""

from __future__ import annotations

import re
import shlex
import shutil
import sys
import urllib.request
from pathlib import Path

from conftest import ROOT
from test_browser import streamlit_server

FIRST_COMMAND = "pip install . && streamlit run app.py"


def _setup_commands() -> list[str]:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"```bash\n(.*?)```", readme, re.S).group(1)
    return [line for line in block.splitlines() if line.strip()]


def test_readme_opens_with_two_commands_and_ci_runs_the_second():
    first, second = _setup_commands()
    assert first == FIRST_COMMAND
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").strip().splitlines()
    assert ci[-1] == second


def _program(name: str) -> str:
    """``name`` from this interpreter's environment (where ``pip install .`` put it)."""
    beside = Path(sys.executable).with_name(name)
    return str(beside) if beside.exists() else shutil.which(name) or name


def test_first_command_serves_the_explorer(tmp_path):
    """Everything after ``pip install . &&`` runs as written (plus a free loopback port) and
    the server it starts answers its health check and serves the app page."""
    command = shlex.split(_setup_commands()[0].split("&&")[-1])
    assert command[:2] == ["streamlit", "run"]
    with streamlit_server([_program(command[0]), *command[1:]], tmp_path / "first.db") as url:
        with urllib.request.urlopen(f"{url}/_stcore/health", timeout=10) as health:
            assert health.read() == b"ok"
        with urllib.request.urlopen(url, timeout=10) as page:
            assert page.status == 200 and b'<div id="root">' in page.read()


# -- the README's example output is real ------------------------------------------------


def _readme() -> str:
    return (ROOT / "README.md").read_text(encoding="utf-8")


def _run_cli(tmp_path, *args) -> str:
    from click.testing import CliRunner

    from kb.cli import cli

    db = tmp_path / "readme.db"
    if not db.exists():
        assert CliRunner().invoke(cli, ["--db", str(db), "init"]).exit_code == 0
    result = CliRunner().invoke(cli, ["--db", str(db), *args])
    assert result.exit_code == 0, result.output
    return result.output


def test_readme_query_output_is_what_the_command_prints(tmp_path):
    block = re.search(r"```console\n\$ soc-kb (query [^\n]*)\n(.*?)```", _readme(), re.S)
    assert block, "README shows a `$ soc-kb query …` example with its output"
    args = shlex.split(block.group(1))
    assert _run_cli(tmp_path, *args).rstrip() == block.group(2).rstrip()


def test_readme_synthesis_table_is_what_synth_prints(tmp_path):
    command = "synth --by ecosystem --response soil_respiration --format markdown"
    readme = _readme()
    assert f"$ soc-kb {command}" in readme
    output = _run_cli(tmp_path, *command.split())
    table = [line for line in output.splitlines() if line.startswith("|")]
    assert len(table) > 3 and "\n".join(table) in readme


def test_readme_claim_report_is_what_claim_prints(tmp_path):
    match = re.search(r"\$ soc-kb claim (\S+)\n", _readme())
    assert match, "README shows a `$ soc-kb claim ID` example"
    output = _run_cli(tmp_path, "claim", match.group(1))
    quoted = "\n".join(f"> {line}" if line.strip() else ">" for line in output.strip().splitlines())
    assert quoted.replace("> ### Claim", "> **Claim**", 1) in _readme()

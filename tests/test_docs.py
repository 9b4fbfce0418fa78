"""The README's set-up commands are the ones CI runs, and its first command opens the explorer."""

from __future__ import annotations

import re
import shlex
import shutil
import sys
import urllib.request
from pathlib import Path

import pytest
from conftest import ROOT, require
from doc_examples import DOCUMENTS, SHARED, commands, examples, normalised, run_document
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


# -- one home per document; every example's output is real -----------------------------------


README_MAX_LINES = 200  # what it is, the two commands, a picture, three examples, layout, links


def test_readme_is_short_and_links_to_every_topic_page():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) <= README_MAX_LINES
    for page in sorted((ROOT / "docs").glob("*.md")):
        assert f"docs/{page.name}" in readme, f"the README does not link docs/{page.name}"


def test_every_relative_link_resolves():
    for document in DOCUMENTS:
        text = document.read_text(encoding="utf-8")
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text):
            if "://" in target:
                continue
            assert (document.parent / target).exists(), f"{document.name}: broken link {target}"


def test_no_document_names_a_module_that_is_gone():
    gone = ["kb/graph.py", "kb.graph.", "kb/explorer.py", "kb/charts.py", "kb/cli.py",
            "kb/commands_synth.py", "kb.checks", "docs/readme", "srdb_import.md"]
    for document in [*DOCUMENTS, *ROOT.glob("kb/**/*.py"), *ROOT.glob("evidence/*.py")]:
        text = document.read_text(encoding="utf-8")
        assert not [g for g in gone if g in text], document


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: p.name)
def test_examples_print_what_the_page_shows(document):
    if any(e.code.count("../shared/") for e in examples(document)):
        require(SHARED.exists(), "the example reads ../shared/data")
    for example, now in run_document(document):
        assert normalised(now) == normalised(example.shown), (
            f"{example.name}: the output differs; run `python tests/doc_examples.py` and read the diff")


def test_every_console_example_is_checked():
    """A console block that is not soc-kb would go unchecked: such output goes in a text block."""
    for document in DOCUMENTS:
        for example in examples(document):
            if example.kind == "console":
                lines = example.code.splitlines()
                assert lines and lines[0].startswith("$ soc-kb"), f"{example.name}: {lines[:1]}"
                assert all(c.startswith("soc-kb") for c in commands(example.code)), example.name

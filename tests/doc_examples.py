"""The examples in README.md and docs/*.md, run for real.

Two kinds of example are executed:

* a ``console`` block: ``$ soc-kb …`` lines, each followed by what it prints (stderr, then
  stdout). A console block may hold nothing but ``soc-kb`` commands; ``../shared/…`` paths
  point at the shared data beside the clone.
* a ``python`` block followed by a ``text`` block: the code must print exactly the text.

A block whose info string names a file (```` ```yaml file=new.yaml ````) is written to that
file before the examples after it run, so an example can add a record file it shows.

The examples of one document run in order in one fresh folder, as a reader following the
page would run them: ``soc-kb.db`` there is made from the shipped seed on first use.

``python tests/doc_examples.py`` rewrites every example's output from a real run (what
``cog`` does for other projects), so no output is ever typed by hand; the tests compare.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
_BLOCK = re.compile(r"```(console|python)\n(.*?)```(?:\n\n```text\n(.*?)```)?", re.S)
_FILE = re.compile(r"```\w* file=(\S+)\n(.*?)```", re.S)


@dataclass(frozen=True)
class Example:
    path: Path
    kind: str  # "console" or "python"
    code: str
    shown: str  # the output as the document shows it
    span: tuple[int, int]  # where the output stands in the document

    @property
    def name(self) -> str:
        line = self.path.read_text(encoding="utf-8").count("\n", 0, self.span[0]) + 1
        return f"{self.path.relative_to(ROOT)}:{line}"


def examples(path: Path) -> list[Example]:
    text = path.read_text(encoding="utf-8")
    found = []
    for match in _BLOCK.finditer(text):
        kind, body, output = match.group(1), match.group(2), match.group(3)
        if kind == "console":
            found.append(Example(path, kind, body, body, match.span(2)))
        elif output is not None:
            found.append(Example(path, kind, body, output, match.span(3)))
    return found



def run_document(path: Path) -> list[tuple[Example, str]]:
    """Each example of ``path`` with what it prints now, in the form the document shows it."""
    text = path.read_text(encoding="utf-8")
    files = [(m.start(), m.group(1), m.group(2)) for m in _FILE.finditer(text)]
    results = []
    with tempfile.TemporaryDirectory() as folder:
        for example in examples(path):
            for _, name, content in [f for f in files if f[0] < example.span[0]]:
                (Path(folder) / name).write_text(content, encoding="utf-8")
            results.append((example, _run(example, Path(folder))))
    return results


def _run(example: Example, folder: Path) -> str:
    if example.kind == "python":
        return _python(example.code, folder)
    return "".join(_console_step(command, folder) for command in commands(example.code))


def commands(console: str) -> list[str]:
    """The ``$ `` lines of a console block (without the prompt)."""
    return [line[2:] for line in console.splitlines() if line.startswith("$ ")]


def _console_step(command: str, folder: Path) -> str:
    args = shlex.split(command)
    if args[0] != "soc-kb":
        raise ValueError(f"console examples run soc-kb only, not {command!r}")
    args = [str(SHARED / a.removeprefix("../shared/")) if a.startswith("../shared/") else a
            for a in args[1:]]
    result = subprocess.run([sys.executable, "-m", "kb", *args], cwd=folder, capture_output=True,
                            text=True, env=_environment(), timeout=600)
    return f"$ {command}\n" + result.stderr + result.stdout


def _python(code: str, folder: Path) -> str:
    result = subprocess.run([sys.executable, "-c", code], cwd=folder, capture_output=True,
                            text=True, env=_environment(), timeout=600)
    if result.returncode:
        raise RuntimeError(f"the example failed:\n{result.stderr}")
    return result.stdout


def _environment() -> dict:
    import os

    env = {k: v for k, v in os.environ.items() if k != "SOC_KB_DB"}
    return env | {"COLUMNS": "200", "PYTHONPATH": str(ROOT)}


def normalised(text: str) -> str:
    return "\n".join(line.rstrip() for line in text.strip().splitlines())


def update(path: Path) -> int:
    """Rewrite the outputs of ``path``'s examples from real runs; return how many changed."""
    text = path.read_text(encoding="utf-8")
    changed = 0
    for example, now in reversed(run_document(path)):  # from the end: earlier spans stay valid
        if normalised(now) != normalised(example.shown):
            start, end = example.span
            text = text[:start] + now.rstrip("\n") + "\n" + text[end:]
            changed += 1
    path.write_text(text, encoding="utf-8")
    return changed


if __name__ == "__main__":
    for document in DOCUMENTS:
        print(f"{document.relative_to(ROOT)}: {update(document)} example(s) rewritten")

"""Imports point one way: evidence <- kb core <- importers / claims <- CLI / explorer <- pages.

Every import statement of every module is read (function-level imports included, since
lazy imports are still dependencies) and checked against the layer it may use.
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

#: layer -> its rank; a module may import from layers of lower or equal rank only
RANK = {"evidence": 0, "core": 1, "importers": 2, "claims": 2, "cli": 3, "explorer": 3, "pages": 4}
#: third-party packages a layer may not use at all
BANNED = {
    "evidence": {"kb", "streamlit", "sqlite3", "sqlite_utils", "click", "altair", "pages"},
    "core": {"click", "streamlit", "altair", "pages"},
    "importers": {"click", "streamlit", "altair", "pages"},
    "claims": {"click", "streamlit", "altair", "pages"},
    "cli": {"streamlit", "altair", "pages"},
    "explorer": {"click", "streamlit", "pages"},
    "pages": set(),
}


def layer(module: str) -> str | None:
    """The layer of a project module (dotted name), or None for a third-party one."""
    parts = module.split(".")
    if parts[0] == "evidence":
        return "evidence"
    if parts[0] in ("pages", "app"):
        return "pages"
    if parts[0] != "kb":
        return None
    if parts[1:] == ["__main__"]:  # ``python -m kb`` runs the CLI
        return "cli"
    return parts[1] if len(parts) > 1 and parts[1] in RANK else "core"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> list[tuple[int, str]]:
    """(line, absolute module) of every import in a file."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            # `from kb import explorer` imports the module kb.explorer
            found += [(node.lineno, f"{base}.{alias.name}" if _is_module(f"{base}.{alias.name}") else base)
                      for alias in node.names]
    return found


def _is_module(name: str) -> bool:
    path = ROOT.joinpath(*name.split("."))
    return path.with_suffix(".py").exists() or (path / "__init__.py").exists()


SOURCES = sorted([*ROOT.glob("evidence/**/*.py"), *ROOT.glob("kb/**/*.py"), *ROOT.glob("pages/*.py"),
                  ROOT / "app.py"])


def wrong_way(path: Path) -> list[str]:
    own = layer(module_name(path))
    problems = []
    for line, target in imports(path):
        top = target.split(".")[0]
        if top in BANNED[own]:
            problems.append(f"{path.relative_to(ROOT)}:{line}: {own} imports {target}")
            continue
        other = layer(target)
        if other and other != own and RANK[other] >= RANK[own]:
            problems.append(f"{path.relative_to(ROOT)}:{line}: {own} imports {target} ({other})")
    return problems


def test_every_source_file_is_checked():
    assert len(SOURCES) > 30
    assert {layer(module_name(p)) for p in SOURCES} == set(RANK)


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_imports_point_one_way(path):
    assert wrong_way(path) == []


@pytest.mark.parametrize("source,target,bad", [
    ("kb/store.py", "kb.cli.common", True),            # core -> CLI
    ("kb/claims/graph.py", "kb.explorer", True),       # claims -> explorer
    ("kb/cli/records.py", "kb.explorer.frames", True),  # one surface -> the other
    ("kb/explorer/frames.py", "kb.claims.graph", False),
    ("evidence/pooling.py", "kb.store", True),
    ("kb/importers/srdb.py", "click", True),
])
def test_the_checker_catches_a_wrong_way_arrow(tmp_path, monkeypatch, source, target, bad):
    """The walker itself: a planted import is reported exactly when it points the wrong way."""
    planted = ROOT / source
    text = planted.read_text(encoding="utf-8") + f"\nimport {target}\n"
    monkeypatch.setattr(Path, "read_text", lambda self, **kw: text if self == planted else
                        Path.read_bytes(self).decode(kw.get("encoding", "utf-8")))
    assert bool(wrong_way(planted)) is bad

"""The shipped seed: the review's bibliography, studies and claims, as text files in ``kb/seed/``.

``references.bib`` gives the sources; every ``*.yaml`` file gives record-file data. All of
it is added in one batch, so a broken seed file leaves the new database empty.
"""

from __future__ import annotations

from importlib.resources import as_file, files


def seed_files() -> list:
    """The seed's files: references.bib first, then the YAML files by name."""
    folder = files("kb") / "seed"
    names = sorted(p.name for p in folder.iterdir() if p.name.endswith((".bib", ".yaml")))
    return [folder / n for n in sorted(names, key=lambda n: (not n.endswith(".bib"), n))]


def load_seed(store) -> dict[str, int]:
    """Add the whole seed to ``store`` (inside the caller's transaction)."""
    paths = []
    for resource in seed_files():
        with as_file(resource) as path:
            paths.append(path)
    return store.add_file(*paths)

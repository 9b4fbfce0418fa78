"""What every page shares: the database path, cached reads, writes that clear the cache.

The database is opened per call (a cached sqlite connection breaks the second browser
session); results are cached with ``st.cache_data`` and the cache is cleared after writes.
"""

from __future__ import annotations

from contextlib import contextmanager
from importlib import import_module

import streamlit as st

from kb.explorer import db_path, display_table, file_version, open_base


@st.cache_data(show_spinner=False, ttl=600, max_entries=256)
def _read(path: str, version: tuple, what: str, **kwargs):
    with open_base(path) as kb:
        return getattr(kb, what)(**kwargs)


@st.cache_data(show_spinner=False, ttl=600, max_entries=64)
def _compute(path: str, version: tuple, function: str, **kwargs):
    module, _, name = function.rpartition(".")
    with open_base(path) as kb:
        return getattr(import_module(module), name)(kb, **kwargs)


def read(path: str, what: str, **kwargs):
    """``KnowledgeBase(path).<what>(**kwargs)``, cached on all arguments and on the file's
    version, so a write from elsewhere (the CLI, another process) is seen at the next run."""
    return _read(path, file_version(path), what, **kwargs)


def compute(path: str, function: str, **kwargs):
    """``module.function(KnowledgeBase(path), **kwargs)`` for a library function of a store,
    named ``"kb.explorer.study_claims"``, cached as :func:`read`."""
    return _compute(path, file_version(path), function, **kwargs)


def fetch(what: str, **kwargs):
    return read(db_path(), what, **kwargs)


@contextmanager
def writing():
    """A knowledge base to write to; the read cache is cleared afterwards, so every page
    (and every other browser session) sees the change at once."""
    kb = open_base(db_path())
    try:
        yield kb
    finally:
        kb.close()
        st.cache_data.clear()


def labels(vocabulary: str) -> dict[str, str]:
    """name -> label of a vocabulary, in its order."""
    frame = fetch("vocabulary", name=vocabulary)
    return dict(zip(frame["name"], frame["label"], strict=True))


def options(vocabulary: str) -> tuple[list[str], callable]:
    """A vocabulary's names and a format function that shows their labels."""
    names = labels(vocabulary)
    return list(names), lambda name: names.get(name, name)


def all_labels() -> dict[str, dict[str, str]]:
    """Every vocabulary as name -> label (cached as every read)."""
    return compute(db_path(), "kb.explorer.vocabulary_labels")


def table(frame, *, vocabularies=None, links=(), **kwargs):
    """``st.dataframe`` of a frame as every page shows one: vocabulary terms as labels,
    missing text as "—", a missing number (or link) as an empty cell (never None or NaN)."""
    shown = display_table(frame, all_labels(), vocabularies, links)
    return st.dataframe(shown, **{"hide_index": True, "width": "stretch", "placeholder": "", **kwargs})

"""BibTeX through pybtex: import with raw entries kept, formatted references, updates that
rewrite the stored entry (the whole-base round trip is in test_bib_roundtrip.py)."""

from __future__ import annotations

import pytest
from conftest import snapshot
from pybtex.database import parse_string

from kb import BibError, KnowledgeBase, RecordError
from kb.bib import format_reference, parse_bib, read_bib_file, record_bibtex

BIB = """@article{Smith2020,
  author = {M{\\"u}ller, Anna and Smith, Jane},
  title = {{CO$_2$} fluxes from warmed {SOC}},
  journal = {Soil Biology and Biochemistry},
  year = {2020},
  volume = {140},
  pages = {107--115},
  doi = {https://doi.org/10.1016/j.soilbio.2019.107},
  x-custom = {kept verbatim}
}
"""


def test_fields_are_read_and_latex_cleaned():
    (record,) = parse_bib(BIB, "refs.bib")
    assert record["key"] == "Smith2020" and record["year"] == 2020
    assert record["authors"] == "Müller, Anna and Smith, Jane"
    assert record["first_author"] == "Müller"
    assert record["title"] == "CO$_2$ fluxes from warmed SOC"
    assert record["doi"] == "10.1016/j.soilbio.2019.107"  # resolver prefix removed
    assert record["bibtex"] == BIB.strip()                # the raw entry, custom fields and all


def test_import_bib_adds_all_or_nothing(empty_kb, tmp_path):
    path = tmp_path / "refs.bib"
    path.write_text(BIB + "\n@article{Bad, year={2021}}\n", encoding="utf-8")
    with pytest.raises(BibError, match=r"refs.bib line 12: entry 'Bad': has no title"):
        empty_kb.import_bib(path)
    assert empty_kb.counts()["sources"] == 0


def test_seed_bibliography_keeps_verification_fields(seeded_kb):
    luo = seeded_kb.get("sources", "luo2019")
    assert luo["year"] is None                            # not verified, so not filled in
    assert luo["verification"] == "partial" and "year" in luo["unverified_fields"]
    assert "x-verified-from" in luo["bibtex"]
    full = seeded_kb.sources(verification="full")
    assert len(full) == 31                                # as the bibliography's header counts


def test_export_bib_round_trips(seeded_kb, tmp_path):
    out = seeded_kb.export(tmp_path / "out.bib", "bib")
    original = read_bib_file(_seed_bib())
    review_keys = {entry["key"] for entry in original}
    again = [entry for entry in read_bib_file(out) if entry["key"] in review_keys]
    assert again == original


def _seed_bib():
    from importlib.resources import files

    return files("kb") / "seed" / "references.bib"


def test_generated_bibtex_parses_back(source):
    text = record_bibtex(source | {"entry_type": "article"})
    entry = parse_string(text, "bibtex").entries["smith2024"]
    assert entry.fields["title"] == source["title"] and entry.fields["doi"] == source["doi"]
    assert [str(p) for p in entry.persons["author"]] == ["Smith, Jane", "Doe, John"]


@pytest.mark.parametrize("backend,fragment", [
    ("text", "Anna Müller and Jane Smith. CO$_2$ fluxes from warmed SOC. Soil Biology and Biochemistry, 140:107–115, 2020. doi:10.1016/j.soilbio.2019.107."),
    ("markdown", "Anna Müller and Jane Smith\\."),
    ("html", "<em>Soil Biology and Biochemistry</em>"),
])
def test_formatted_reference(backend, fragment):
    assert fragment in format_reference(BIB, backend)


def test_reference_without_title_is_still_formatted(seeded_kb):
    assert seeded_kb.citation("chen2023").startswith("Chen and others. 2023.")


# -- updates rewrite the stored entry ------------------------------------------------------

MARKED_UP = """@Article{muller2020,
  author = {M{\\"u}ller, Anna and Tu Chun},
  title = {{CO$_2$} fluxes from warmed {SOC}},
  journal = {Soil Biology and Biochemistry},
  year = {2020},
  volume = {140},
  pages = {107--115},
  doi = {10.1016/j.soilbio.2019.107},
  x-custom = {kept verbatim},
  x-verification = {full}
}"""


@pytest.fixture
def marked_up(empty_kb, tmp_path):
    path = tmp_path / "in.bib"
    path.write_text(MARKED_UP + "\n", encoding="utf-8")
    empty_kb.import_bib(path)
    return empty_kb


def _agrees_with_its_entry(stored: dict) -> bool:
    (read,) = parse_bib(stored["bibtex"])
    return read == {k: v for k, v in stored.items() if v is not None}


# (column, value given as the command line gives it, value stored)
UPDATES = [
    ("title", "Warming: 50% of {SOC} -- lost", "Warming: 50% of {SOC} -- lost"),
    ("authors", "Doe, Jane and Roe, R.", "Doe, Jane and Roe, R."),
    ("year", "2021", 2021),
    ("journal", "Global Change Biology", "Global Change Biology"),
    ("volume", "26", "26"),
    ("number", "3", "3"),
    ("pages", "7--9", "7--9"),
    ("publisher", "Elsevier", "Elsevier"),
    ("url", "https://example.org/paper?id=1&v=2", "https://example.org/paper?id=1&v=2"),
    ("doi", "10.1111/gcb.12345", "10.1111/gcb.12345"),
    ("entry_type", "inproceedings", "inproceedings"),
    ("verification", "partial", "partial"),
    ("verified_from", "https://example.org/list (title)", "https://example.org/list (title)"),
    ("unverified_fields", "pages", "pages"),
    ("note", "Checked against the PDF_2 copy.", "Checked against the PDF_2 copy."),
    ("first_author", "Tu", "Tu"),
]


@pytest.mark.parametrize("column,given,stored", UPDATES, ids=[u[0] for u in UPDATES])
def test_updating_a_bibliographic_field_rewrites_the_entry(marked_up, tmp_path, column, given, stored):
    after = marked_up.update("sources", "muller2020", {column: given})
    assert after[column] == stored
    assert _agrees_with_its_entry(after)                 # the entry says what the columns say
    assert "x-custom = {kept verbatim}" in after["bibtex"]
    if column != "authors":
        assert 'M{\\"u}ller, Anna and Tu Chun' in after["bibtex"]  # untouched fields keep their markup
    out = marked_up.export(tmp_path / "out.bib", "bib")
    with KnowledgeBase(tmp_path / "again.db", seed=False) as again:
        again.import_bib(out)
        assert again.get("sources", "muller2020") == after      # the round trip keeps the edit


def test_citation_and_export_show_the_new_title(marked_up, tmp_path):
    marked_up.update("sources", "muller2020", {"title": "A new title"})
    assert "A new title" in marked_up.citation("muller2020")
    assert "title = {A new title}" in marked_up.export(tmp_path / "out.bib", "bib").read_text("utf-8")


def test_clearing_a_field_removes_it_from_the_entry(marked_up):
    after = marked_up.update("sources", "muller2020", {"journal": None})
    assert after["journal"] is None and "journal" not in after["bibtex"]
    assert _agrees_with_its_entry(after)


def test_new_authors_give_a_new_first_author(marked_up):
    assert marked_up.get("sources", "muller2020")["first_author"] == "Müller"
    after = marked_up.update("sources", "muller2020", {"authors": "Doe, Jane"})
    assert after["first_author"] == "Doe" and "x-first-author" not in after["bibtex"]


def test_a_new_entry_replaces_the_columns(marked_up):
    entry = MARKED_UP.replace("{{CO$_2$} fluxes from warmed {SOC}}", "{Replaced}").replace("2020}", "2019}")
    after = marked_up.update("sources", "muller2020", {"bibtex": entry})
    assert (after["title"], after["year"], after["bibtex"]) == ("Replaced", 2019, entry)


@pytest.mark.parametrize("changes,fragment", [
    ({"title": "two\nlines"}, "field 'title': 'two\\nlines': line breaks, tabs and repeated spaces"),
    ({"pages": "1}2{"}, "field 'pages': '1}2{': its braces do not pair up"),
    ({"bibtex": "@article{other2020, title={T}, year={2020}}"}, "must be one entry with the key 'muller2020'"),
    ({"bibtex": MARKED_UP.replace("2020}", "2019}"), "title": "Something else"},
     "field 'title': 'Something else' disagrees with the new BibTeX entry"),
])
def test_an_edit_the_entry_cannot_hold_changes_nothing(marked_up, changes, fragment):
    before = snapshot(marked_up)
    with pytest.raises(RecordError) as caught:
        marked_up.update("sources", "muller2020", changes)
    assert fragment in str(caught.value) and "\n" not in str(caught.value)
    assert snapshot(marked_up) == before

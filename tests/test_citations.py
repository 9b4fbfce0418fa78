"""Citation exports: RIS and CSL-JSON written from the stored sources, read back by real
parsers (rispy for RIS; citeproc-py, which reads CSL-JSON and formats it with a CSL style)
for the whole shipped seed, and edge cases of names, pages and entry types."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import citeproc
import pandas as pd
import pytest
import rispy
from citeproc import (
    Citation,
    CitationItem,
    CitationStylesBibliography,
    CitationStylesStyle,
    formatter,
)
from citeproc.source.json import CiteProcJSON

from kb import KnowledgeBase, explorer
from kb.bib import CSL_TYPES, RIS_TYPES, parse_bib, to_csl_json, to_ris

#: a style citeproc-py ships (so the test needs no network)
STYLE = Path(citeproc.__file__).parent / "data" / "styles" / "harvard-cite-them-right.csl"
#: CSL-JSON name parts and the variables the writer uses, with their JSON types (CSL 1.0.2 schema)
NAME_PARTS = {"family", "given", "suffix", "literal"}
STRING_FIELDS = {"id", "type", "title", "container-title", "volume", "issue", "page", "publisher",
                 "DOI", "URL", "note"}
CSL_TYPE_NAMES = {"article-journal", "book", "pamphlet", "chapter", "paper-conference", "document",
                  "thesis", "report", "manuscript", "webpage", "dataset"}


@pytest.fixture(scope="module")
def seed_frame(seeded_file) -> pd.DataFrame:
    with KnowledgeBase(seeded_file) as kb:
        return kb.sources()


@pytest.fixture(scope="module")
def seed_sources(seed_frame) -> list[dict]:
    return explorer.source_records(seed_frame)


def stored_names(source: dict) -> list[str]:
    """The names as the ``authors`` column holds them, BibTeX's "others" left out."""
    return [n for n in (source.get("authors") or "").split(" and ") if n and n != "others"]


def stored_pages(source: dict) -> str | None:
    return source.get("pages")


# -- RIS ----------------------------------------------------------------------------------


def test_whole_seed_round_trips_through_a_ris_parser(seed_frame, seed_sources):
    records = rispy.loads(explorer.ris(seed_frame))  # what the Bibliography page downloads
    assert [r["id"] for r in records] == [s["key"] for s in seed_sources]
    for source, record in zip(seed_sources, records, strict=True):
        assert record["type_of_reference"] == RIS_TYPES.get(source["entry_type"], "GEN")
        assert record.get("authors", []) == stored_names(source), source["key"]
        for field, column in (("title", "title"), ("secondary_title", "journal"),
                              ("volume", "volume"), ("number", "number"), ("publisher", "publisher"),
                              ("doi", "doi")):
            assert record.get(field) == source.get(column), (source["key"], column)
        assert record.get("year") == (str(source["year"]) if source.get("year") else None)
        assert record.get("urls") == ([source["url"]] if source.get("url") else None)
        assert record.get("notes") == ([source["note"]] if source.get("note") else None)
        pages = "--".join(p for p in (record.get("start_page"), record.get("end_page")) if p)
        assert (pages or None) == stored_pages(source), source["key"]


def test_seed_has_what_the_round_trip_must_cover(seed_sources):
    """The round trips above are only as good as the seed's variety: page ranges and article
    numbers, names without a comma, "and others", sources without a title or year, notes."""
    assert any("--" in (s.get("pages") or "") for s in seed_sources)
    assert any(s.get("pages") and "--" not in s["pages"] for s in seed_sources)
    assert any(" and others" in (s.get("authors") or "") for s in seed_sources)
    assert any(n and "," not in n for s in seed_sources for n in stored_names(s))
    assert any(not s.get("title") for s in seed_sources) and any(not s.get("year") for s in seed_sources)
    assert any(s.get("note") for s in seed_sources) and any(s.get("doi") for s in seed_sources)


# -- CSL-JSON -------------------------------------------------------------------------------


def check_csl_item(item: dict) -> None:
    """An item as the CSL-JSON schema (csl-data.json, CSL 1.0.2) types these variables."""
    assert isinstance(item["id"], str) and item["type"] in CSL_TYPE_NAMES
    for field in STRING_FIELDS.intersection(item):
        assert isinstance(item[field], str) and item[field], field
    for role in ("author", "editor"):
        for name in item.get(role, []):
            assert name and set(name) <= NAME_PARTS and all(isinstance(v, str) and v for v in name.values())
            assert ("literal" in name) != ("family" in name)  # whole, or split: never both
    if "issued" in item:
        ((year,),) = item["issued"]["date-parts"]
        assert isinstance(year, int)
    assert set(item) <= STRING_FIELDS | {"author", "editor", "issued"}, set(item)


def test_whole_seed_round_trips_through_csl_json(seed_frame, seed_sources):
    items = json.loads(explorer.csl_json(seed_frame))  # what the Bibliography page downloads
    assert [i["id"] for i in items] == [s["key"] for s in seed_sources]
    for source, item in zip(seed_sources, items, strict=True):
        check_csl_item(item)
        assert item["type"] == CSL_TYPES.get(source["entry_type"], "document")
        names = [n.get("literal") or f"{n['family']}, {n['given']}" for n in item.get("author", [])]
        assert names == stored_names(source), source["key"]
        for field, column in (("title", "title"), ("container-title", "journal"), ("volume", "volume"),
                              ("issue", "number"), ("DOI", "doi"), ("note", "note")):
            assert item.get(field) == source.get(column), (source["key"], column)
        assert item.get("issued") == ({"date-parts": [[source["year"]]]} if source.get("year") else None)
        assert (item.get("page") or "").replace("-", "--") == (source.get("pages") or "")


def test_citeproc_reads_and_formats_every_seed_source(seed_sources):
    items = to_csl_json(seed_sources)
    style = CitationStylesStyle(str(STYLE), validate=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an unknown variable or a bad value would warn
        bibliography = CitationStylesBibliography(style, CiteProcJSON(items), formatter.plain)
        for item in items:
            bibliography.register(Citation([CitationItem(item["id"])]))
        entries = [str(entry) for entry in bibliography.bibliography()]
    assert len(entries) == len(seed_sources)
    by_title = {s["title"]: s for s in seed_sources if s.get("title")}
    for title, source in by_title.items():
        entry = next(e for e in entries if title in e)  # the title, as stored, in the formatted entry
        if source.get("doi"):
            assert f"https://doi.org/{source['doi']}" in entry
        if source.get("first_author"):
            assert source["first_author"] in entry


# -- edge cases -----------------------------------------------------------------------------

BIB_CASES = {
    # name: (BibTeX fields, RIS authors, CSL authors)
    "accented and braced": ('author = {M{\\"u}ller, Anna and {World Bank}}',
                            ["Müller, Anna", "World Bank"],
                            [{"family": "Müller", "given": "Anna"}, {"literal": "World Bank"}]),
    "particle and suffix": ("author = {van der Linden, Jan and Smith, Jr, John}",
                            ["van der Linden, Jan", "Smith, John, Jr"],
                            [{"family": "van der Linden", "given": "Jan"},
                             {"family": "Smith", "given": "John", "suffix": "Jr"}]),
    "no comma, and others": ("author = {Tu Chun and others}", ["Tu Chun"], [{"literal": "Tu Chun"}]),
    "an 'and' inside braces": ("author = {{Smith and Sons Ltd}}", ["Smith and Sons Ltd"],
                               [{"literal": "Smith and Sons Ltd"}]),
}


@pytest.mark.parametrize("case", BIB_CASES)
def test_names_are_split_as_bibtex_splits_them(case):
    fields, ris_names, csl_names = BIB_CASES[case]
    (source,) = parse_bib(f"@article{{k2020, {fields}, title = {{T}}, year = {{2020}}}}")
    assert rispy.loads(to_ris([source]))[0]["authors"] == ris_names
    (item,) = to_csl_json([source])
    check_csl_item(item)
    assert item["author"] == csl_names


@pytest.mark.parametrize("entry,pages,ris_pages,csl_page,ris_type,csl_type", [
    ("article", "107--115", ("107", "115"), "107-115", "JOUR", "article-journal"),
    ("article", "e2021MS002622", ("e2021MS002622", None), "e2021MS002622", "JOUR", "article-journal"),
    ("inproceedings", "1--9", ("1", "9"), "1-9", "CPAPER", "paper-conference"),
    ("misc", None, (None, None), None, "GEN", "document"),
    ("phdthesis", None, (None, None), None, "THES", "thesis"),
])
def test_pages_and_entry_types(entry, pages, ris_pages, csl_page, ris_type, csl_type):
    pages_field = f", pages = {{{pages}}}" if pages else ""
    (source,) = parse_bib(f"@{entry}{{k2020, author = {{Doe, Jane}}, title = {{T}}, year = {{2020}}"
                          f"{pages_field}}}")
    (record,) = rispy.loads(to_ris([source]))
    assert (record.get("start_page"), record.get("end_page")) == ris_pages
    assert record["type_of_reference"] == ris_type
    (item,) = to_csl_json([source])
    assert item.get("page") == csl_page and item["type"] == csl_type


def test_editors_without_authors_are_editors():
    (source,) = parse_bib("@book{k2020, editor = {Doe, Jane}, title = {T}, year = {2020}}")
    (record,) = rispy.loads(to_ris([source]))
    assert record["secondary_authors"] == ["Doe, Jane"] and "authors" not in record
    assert to_csl_json([source])[0]["editor"] == [{"family": "Doe", "given": "Jane"}]


def test_a_source_without_title_or_year_leaves_them_out():
    (source,) = parse_bib("@misc{k, author = {Chen}, x-verification = {none}}")
    (record,) = rispy.loads(to_ris([source]))
    assert "title" not in record and "year" not in record and record["authors"] == ["Chen"]
    (item,) = to_csl_json([source])
    check_csl_item(item)
    assert "title" not in item and "issued" not in item

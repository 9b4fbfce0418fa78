"""BibTeX through pybtex: import with raw entries kept, round trip, formatted references."""

from __future__ import annotations

import pytest
from pybtex.database import parse_string

from kb import BibError
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

"""BibTeX export then import-bib into an empty base gives back every ``sources`` row exactly.

The stored entry is the one truth: sources read from a .bib keep their raw entry, sources
added from record files get an entry written from their fields that reads back as exactly
those fields, and a value that cannot be written so is refused instead of changed.
"""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from conftest import ROOT, snapshot
from hypothesis import given, settings
from hypothesis import strategies as st

from kb import BibError, KnowledgeBase, RecordError
from kb.bib import latex_text, parse_bib, plain_text, record_bibtex
from kb.cli import cli

# derandomized: the same examples on every machine and run
PROPERTY = settings(derandomize=True, database=None, deadline=None, max_examples=300)


def source_rows(kb: KnowledgeBase) -> list[dict]:
    """Every column of every source, by key."""
    cursor = kb.db.execute("SELECT * FROM sources ORDER BY key")
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def round_trip(kb: KnowledgeBase, folder) -> list[dict]:
    """The sources of ``kb`` after export --format bib and import-bib into an empty base."""
    out = kb.export(folder / "out.bib", "bib")
    with KnowledgeBase(folder / "again.db", seed=False) as again:
        again.import_bib(out)
        return source_rows(again)


def seed_source_count() -> int:
    """Sources the seed files hold: references.bib and every YAML file's ``sources``."""
    import yaml
    from pybtex.database import parse_file

    seed = ROOT / "kb" / "seed"
    count = len(parse_file(str(seed / "references.bib")).entries)
    for path in seed.glob("*.yaml"):
        count += len((yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("sources", []))
    return count


def test_whole_seed_round_trips_through_the_command_line(tmp_path):
    runner = CliRunner()
    seed_db, new_db, out = tmp_path / "seed.db", tmp_path / "new.db", tmp_path / "out.bib"
    for args in (["--db", seed_db, "init"],
                 ["--db", seed_db, "export", "--format", "bib", "--output", out],
                 ["--db", new_db, "init", "--empty"],
                 ["--db", new_db, "import-bib", out]):
        result = runner.invoke(cli, [str(a) for a in args], catch_exceptions=False)
        assert result.exit_code == 0, result.output
    with KnowledgeBase(seed_db) as seed, KnowledgeBase(new_db) as new:
        before, after = source_rows(seed), source_rows(new)
    assert len(before) == seed_source_count() > 41  # the review's 41 works and the imported sources
    assert after == before                       # every column, bibtex included


def test_seed_sources_from_record_files_keep_their_fields_in_the_entry(seeded_kb):
    cosore = seeded_kb.get("sources", "bondlamberty2020cosore")
    assert cosore["pages"] == "7268--7283"        # as the importer wrote it, BibTeX's range
    assert "x-verified-from = {../shared/data/cosore" in cosore["bibtex"]
    assert "x-unverified-fields = {authors after the fourth" in cosore["bibtex"]
    (read,) = parse_bib(cosore["bibtex"])
    assert read == {k: v for k, v in cosore.items() if v is not None}


# (case, entry fields, column, value the column must hold)
BIB_CASES = [
    ("en-dash pages", "pages = {107--115}", "pages", "107--115"),
    ("unicode en dash pages", "pages = {107–115}", "pages", "107–115"),
    ("names without commas", "author = {Tu Chun and Li Fa-dong}", "authors", "Tu Chun and Li Fa-dong"),
    ("first author without comma", "author = {Tu Chun and Li Fa-dong}", "first_author", "Tu Chun"),
    ("von part", "author = {de Dato, G. and van der Berg, H.}", "first_author", "de Dato"),
    ("LaTeX accents", "author = {M{\\\"u}ller, A. and Garc{\\'\\i}a, P. and {\\O}rsted, H. and \\v{S}imek, J.}",
     "authors", "Müller, A. and García, P. and Ørsted, H. and Šimek, J."),
    ("braced corporate author", "author = {{Food and Agriculture Organization} and Doe, J.}",
     "first_author", "Food and Agriculture Organization"),
    ("braces in title", "title = {{CO$_2$} fluxes from {SOC} in {Alaska}}", "title",
     "CO$_2$ fluxes from SOC in Alaska"),
    ("escapes in title", "title = {50\\% of C \\& N lost}", "title", "50% of C & N lost"),
    ("dashes in title", "title = {Soil--climate feedbacks---a review}", "title", "Soil–climate feedbacks—a review"),
    ("math in title", "title = {$\\delta^{13}$C of soil}", "title", "$\\delta^{13}$C of soil"),
    ("emphasis in title", "title = {Warming \\emph{in situ}}", "title", "Warming in situ"),
    ("quoted value", 'journal = "Global Change Biology"', "journal", "Global Change Biology"),
    ("escaped url", "url = {https://example.org/a\\_b}", "url", "https://example.org/a_b"),
    ("doi with resolver", "doi = {https://doi.org/10.1234/abc.5}", "doi", "10.1234/abc.5"),
    ("verification", "x-verification = {partial}", "verification", "partial"),
    ("verified from", "x-verified-from = {https://x.org/Record/a%2F25 (title, 2016--2017)}",
     "verified_from", "https://x.org/Record/a%2F25 (title, 2016--2017)"),
    ("unverified fields", "x-unverified-fields = {pages}", "unverified_fields", "pages"),
]


@pytest.mark.parametrize("case,fields,column,value", BIB_CASES, ids=[c[0] for c in BIB_CASES])
def test_bib_edge_cases_read_and_round_trip(empty_kb, tmp_path, case, fields, column, value):
    entry = _entry(fields)
    path = tmp_path / "in.bib"
    path.write_text(entry + "\n", encoding="utf-8")
    empty_kb.import_bib(path)
    (stored,) = source_rows(empty_kb)
    assert stored[column] == value
    assert stored["bibtex"] == entry              # the raw entry, as written
    assert round_trip(empty_kb, tmp_path) == [stored]


def _entry(fields: str) -> str:
    defaults = {"author": "author = {Smith, Jane}", "title": "title = {A title}", "year": "year = {2020}"}
    given_names = fields.split("=", 1)[0].strip()
    lines = [line for name, line in defaults.items() if name != given_names] + [fields]
    return "@article{edge2020,\n  " + ",\n  ".join(lines) + "\n}"


def test_string_macros_are_expanded_in_the_stored_entry(empty_kb, tmp_path):
    path = tmp_path / "in.bib"
    path.write_text("@string{gcb = {Global Change Biology}}\n\n"
                    "@article{a2020, title = {T}, journal = gcb, year = 2020}\n", encoding="utf-8")
    empty_kb.import_bib(path)
    (stored,) = source_rows(empty_kb)
    assert stored["journal"] == "Global Change Biology"
    assert "journal = {Global Change Biology}" in stored["bibtex"]   # stands alone, no macro
    assert round_trip(empty_kb, tmp_path) == [stored]


# (case, fields of a record-file source); every given value must be stored as given
RECORD_CASES = [
    ("pages with BibTeX range", {"pages": "7268--7283"}),
    ("title with markup characters", {"title": "50% of {SOC} & N_2O #1 lost -- ''quoted'' \\ here"}),
    ("title with math", {"title": "$\\delta^{13}$C and CO$_2$ fluxes"}),
    ("title with lone dollar", {"title": "Costs $5 per plot"}),
    ("title with tilde and no-break space", {"title": "Site~A at 10\xa0cm"}),
    ("title with unicode dashes and accents", {"title": "Soil–climate feedbacks in Jobbágy’s data"}),
    ("names without commas", {"authors": "Tu Chun and Li Fa-dong"}),
    ("accented names", {"authors": "Müller, Anna and Ørsted, H."}),
    ("first author differing from the names", {"authors": "Tu Chun and Li Fa-dong", "first_author": "Tu"}),
    ("first author without names", {"authors": None, "first_author": "Chen", "title": None,
                                    "verification": "none"}),
    ("verification fields", {"verification": "partial", "year": None, "unverified_fields": "year",
                             "verified_from": "https://example.org/list (title; 10% sample)"}),
    ("note with markup characters", {"note": "From srdb-studies.csv @9d67250, Study_number 886."}),
    ("misc entry with url", {"entry_type": "misc", "url": "https://example.org/data?id=1&v=2"}),
]


@pytest.mark.parametrize("case,fields", RECORD_CASES, ids=[c[0] for c in RECORD_CASES])
def test_record_file_sources_keep_their_values_and_round_trip(empty_kb, tmp_path, source, case, fields):
    record = {k: v for k, v in {**source, **fields}.items() if v is not None}
    empty_kb.add_source(record)
    (stored,) = source_rows(empty_kb)
    assert {k: stored[k] for k in record} == record        # nothing changed on the way in
    assert round_trip(empty_kb, tmp_path) == [stored]


# (case, fields, field named in the message, message fragment)
REFUSED = [
    ("line break in title", {"title": "Warming and\nsoil carbon"}, "title", "line breaks, tabs and repeated spaces"),
    ("repeated spaces in note", {"note": "two  spaces"}, "note", "line breaks, tabs and repeated spaces"),
    ("unpaired brace in pages", {"pages": "1{2"}, "pages", "braces do not pair up"),
    ("unpaired brace in math", {"title": "$x^{$ and more"}, "title", "braces do not pair up"),
    ("too many commas in a name", {"authors": "Smith, J, Jr, Extra"}, "authors", "has 3 commas"),
]


@pytest.mark.parametrize("case,fields,field,fragment", REFUSED, ids=[c[0] for c in REFUSED])
def test_values_a_bibtex_entry_cannot_hold_are_refused(empty_kb, source, case, fields, field, fragment):
    before = snapshot(empty_kb)
    with pytest.raises(RecordError) as caught:
        empty_kb.add_source(source | fields)
    message = str(caught.value)
    assert f"field '{field}'" in message and fragment in message and "\n" not in message
    assert snapshot(empty_kb) == before


def test_too_many_commas_in_a_bib_name_is_one_line(empty_kb, tmp_path):
    path = tmp_path / "bad.bib"
    path.write_text("\n@article{a2020, author = {a, b, c, d}, title = {T}, year = {2020}}\n", encoding="utf-8")
    with pytest.raises(BibError, match=r"^\S*bad.bib line 2: entry 'a2020': name 'a, b, c, d' has 3 commas"):
        empty_kb.import_bib(path)
    assert empty_kb.counts()["sources"] == 0


# Any one-line text without "$" (math is kept as written, see the cases above) must be
# written so that it reads back unchanged; the alphabet is what LaTeX and BibTeX treat specially.
SPECIAL = st.text(alphabet=st.sampled_from(list("ab -\\{}%&#_~'`!?^\"@,é–\xa0")), min_size=1, max_size=30)


@PROPERTY
@given(SPECIAL)
def test_any_plain_text_is_written_so_that_it_reads_back(text):
    text = text.strip()
    if not text or "  " in text:
        return  # stripped and single-spaced on the way in; those are refused (above)
    assert plain_text(latex_text(text)) == text
    authors = f"Q{text.replace(',', '')}, R. and Doe, J."  # two names, surname first
    entry = record_bibtex({"key": "p2020", "title": text, "authors": authors, "year": 2020})
    (read,) = parse_bib(entry)
    assert (read["title"], read["authors"]) == (text, authors)

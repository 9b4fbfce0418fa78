"""The shipped seed (kb/seed/) against the review it was curated from.

Most tests read only the seed files (YAML + references.bib through pybtex) and the review
text, so they hold whatever the store does. The last group asks the same reader questions
through ``kb.KnowledgeBase`` (built from the shipped seed) and the ``soc-kb`` CLI.

The review is read from ``$SOC_KB_REVIEW`` or ``../shared/seeds/soc_review.md`` next to the
repository; the tests fail, never skip, when it is missing.

Citation matching rule (see ``_match``): a citation is "Surname et al., YEAR",
"Surname & Surname, YEAR", "Surname and Surname (YEAR)" or "Surname, YEAR". Surnames are
compared after folding accents, case, hyphens and spaces ("Bond-Lamberty" = "bondlamberty",
"Jobbágy" = "jobbagy", "Hicks Pries" = "hickspries"). A bib entry matches when its year
equals the citation year (entries whose year was not verified and is left out of the bib
carry it only in the key, e.g. luo2019; then the key's trailing year is used) and
- "et al.": its first author's surname matches and it has 3+ authors or ends in "others";
- two names: it has exactly two authors and both surnames match, in order;
- one name: it has exactly one author, whose surname matches.
Every citation must match exactly one entry.
"""

from __future__ import annotations

import json
import os
import re
import sys
import unicodedata
from collections import Counter
from pathlib import Path

import pytest
import yaml
from pybtex.database import parse_file

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run the repository's kb, installed or not
    sys.path.insert(0, str(ROOT))

from click.testing import CliRunner  # noqa: E402

from kb import KnowledgeBase, vocab  # noqa: E402
from kb.cli import cli  # noqa: E402

SEED = ROOT / "kb" / "seed"
REVIEW_PATH = Path(os.environ.get("SOC_KB_REVIEW", ROOT.parent / "shared" / "seeds" / "soc_review.md"))
N_WORKS = 41

STUDY_KEYS = (
    "id", "source_key", "study_type", "biome", "ecosystem", "site", "country", "lat", "lon",
    "depth_top_cm", "depth_bottom_cm", "depth_class", "warming_method", "warming_c",
    "warming_medium", "duration_years", "warming_level_c", "soc_direction",
    "respiration_direction", "mechanisms", "summary", "evidence_quote", "quote_location",
    "origin", "curator", "notes",
)
CLAIM_KEYS = (
    "id", "text", "section", "scope_biome", "scope_ecosystem", "scope_mechanism",
    "scope_depth_class", "quote", "origin", "aliases",
)
LINK_KEYS = ("claim_id", "study_id", "other_claim_id", "relation", "quote", "note")
STUDY_RELATIONS = {"supports", "contradicts", "qualifies"}
CLAIM_RELATIONS = {"supports", "contradicts", "qualifies", "refines"}
STUDY_VOCAB = {"study_type": "study_types", "biome": "biomes", "ecosystem": "ecosystems",
               "depth_class": "depth_classes", "warming_method": "warming_methods",
               "soc_direction": "directions", "respiration_direction": "directions"}
CLAIM_VOCAB = {"scope_biome": "biomes", "scope_ecosystem": "ecosystems",
               "scope_mechanism": "mechanisms", "scope_depth_class": "depth_classes"}
NUMERIC_RANGES = {"lat": (-90, 90), "lon": (-180, 180), "depth_top_cm": (0, 1000),
                  "depth_bottom_cm": (0, 1000), "warming_c": (0, 15), "warming_level_c": (0, 10),
                  "duration_years": (0, 200)}
DEEP = {"whole_profile", "subsoil", "deep_subsoil"}


# -- loading --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def review() -> str:
    assert REVIEW_PATH.is_file(), (
        f"the review {REVIEW_PATH} is missing; set SOC_KB_REVIEW to its path")
    return REVIEW_PATH.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def bib():
    return parse_file(str(SEED / "references.bib"))


def _yaml(name: str) -> dict:
    data = yaml.safe_load((SEED / name).read_text(encoding="utf-8"))
    assert isinstance(data, dict), f"{name}: top level must be a mapping"
    return data


@pytest.fixture(scope="module")
def studies() -> list[dict]:
    data = _yaml("studies.yaml")
    assert set(data) == {"studies"}
    return data["studies"]


@pytest.fixture(scope="module")
def claims_file() -> dict:
    data = _yaml("claims.yaml")
    assert set(data) == {"claims", "claim_links"}
    return data


@pytest.fixture(scope="module")
def claims(claims_file) -> list[dict]:
    return claims_file["claims"]


@pytest.fixture(scope="module")
def links(claims_file) -> list[dict]:
    return claims_file["claim_links"]


@pytest.fixture(scope="module")
def by_id(studies) -> dict[str, dict]:
    return {s["id"]: s for s in studies}


@pytest.fixture(scope="module")
def canonical(claims) -> dict[str, str]:
    """Every claim id and alias -> the id of the claim it names."""
    return {c["id"]: c["id"] for c in claims} | {
        alias: c["id"] for c in claims for alias in c.get("aliases", [])}


@pytest.fixture(scope="module")
def syntheses_file() -> dict:
    data = _yaml("syntheses.yaml")
    assert set(data) == {"syntheses", "synthesis_links"}
    return data


# -- the review: sections and citations -----------------------------------------------


def sections(text: str) -> dict[str, str]:
    """Heading text (without the #'s) -> the body up to the next heading of any level."""
    out: dict[str, str] = {}
    heading, body = None, []
    for line in text.splitlines():
        if line.startswith("#"):
            if heading is not None:
                out[heading] = "\n".join(body)
            heading, body = line.lstrip("#").strip(), []
        else:
            body.append(line)
    if heading is not None:
        out[heading] = "\n".join(body)
    return out


_NAME = r"[A-ZÀ-Þ][\w’'-]*"
_SURNAME = rf"{_NAME}(?: {_NAME})*"
_AUTHORS = rf"{_SURNAME}(?: et al\.|(?: and | & ){_SURNAME})?"
_NARRATIVE = re.compile(rf"(?<![\w-])({_AUTHORS}) \(((?:19|20)\d\d)\)")
_PARENS = re.compile(r"\(([^()]*)\)")
_ITEM = re.compile(rf"^({_AUTHORS}), ((?:19|20)\d\d)$")
_YEAR = re.compile(r"(?<!\d)(?:19|20)\d\d(?!\d)")


def citations(text: str) -> list[tuple[str, str]]:
    """Every author–year citation in the text, as (authors, year), in order of appearance.

    Fails if a 4-digit year in the text is not part of a recognised citation, so a
    citation in an unexpected form cannot be silently missed.
    """
    found: list[tuple[int, int, str, str]] = []
    covered: list[tuple[int, int]] = []
    for m in _NARRATIVE.finditer(text):
        found.append((m.start(), 0, m.group(1), m.group(2)))
        covered.append(m.span())
    for m in _PARENS.finditer(text):
        inner = m.group(1)
        if not _YEAR.search(inner) or re.fullmatch(r"(?:19|20)\d\d", inner):
            continue  # no year, or the year of a narrative citation (matched above)
        for j, part in enumerate(inner.split(";")):
            item = _ITEM.match(part.strip())
            assert item, f"unparsed citation {part.strip()!r} in ({inner})"
            found.append((m.start(), j, item.group(1), item.group(2)))
        covered.append(m.span())
    for y in _YEAR.finditer(text):
        assert any(a <= y.start() < b for a, b in covered), (
            f"year {y.group()} at {text[max(0, y.start() - 40):y.end() + 5]!r} is not in a citation")
    return [(names, year) for _, _, names, year in sorted(found)]


def _fold(name: str) -> str:
    name = unicodedata.normalize("NFKD", name)
    return re.sub(r"[^a-z]", "", "".join(c for c in name if not unicodedata.combining(c)).lower())


def _bib_authors(entry) -> tuple[list[str], bool]:
    people = entry.persons.get("author", [])
    names = [_fold(" ".join(p.prelast_names + p.last_names)) for p in people]
    others = bool(names) and names[-1] == "others"
    return (names[:-1] if others else names), others


def _bib_year(key: str, entry) -> str:
    year = entry.fields.get("year")
    if year:
        return str(year)
    tail = re.search(r"((?:19|20)\d\d)$", key)
    assert tail, f"{key}: no year field and no year in the key"
    return tail.group(1)


def _match(bib, names: str, year: str) -> list[str]:
    """The bib keys a citation matches under the rule in the module docstring."""
    if names.endswith(" et al."):
        wanted, kind = [_fold(names[: -len(" et al.")])], "etal"
    else:
        parts = re.split(r" and | & ", names)
        wanted, kind = [_fold(p) for p in parts], len(parts)
    keys = []
    for key, entry in bib.entries.items():
        if _bib_year(key, entry) != year:
            continue
        authors, others = _bib_authors(entry)
        if kind == "etal":
            ok = authors[:1] == wanted and (len(authors) >= 3 or others)
        else:
            ok = authors == wanted and not others
        if ok:
            keys.append(key)
    return keys


@pytest.fixture(scope="module")
def cited(review, bib) -> dict[tuple[str, str], str]:
    """Each distinct (authors, year) citation -> its bib key."""
    out = {}
    for names, year in citations(review):
        keys = _match(bib, names, year)
        assert len(keys) == 1, f"citation {names} ({year}) matches {keys or 'no bib entry'}"
        out[(names, year)] = keys[0]
    return out


# -- sources --------------------------------------------------------------------------


def test_bib_is_the_checked_bibliography(bib):
    shared = ROOT.parent / "shared" / "seeds" / "references.bib"
    if shared.is_file():
        assert (SEED / "references.bib").read_bytes() == shared.read_bytes()
    assert len(bib.entries) == N_WORKS
    for key, entry in bib.entries.items():
        assert entry.fields.get("x-verification") in {"full", "partial", "none"}, key
        assert entry.persons.get("author"), key


def test_citation_extractor_knows_the_forms():
    text = ("As shown (Hicks Pries et al., 2017; Bian & Xia, 2023; Lal, 2020), and "
            "Jobbágy and Jackson (2000) and Todd-Brown et al. (2014) agree; "
            "however, Bond-Lamberty et al. (2018) did too.")
    assert citations(text) == [
        ("Hicks Pries et al.", "2017"), ("Bian & Xia", "2023"), ("Lal", "2020"),
        ("Jobbágy and Jackson", "2000"), ("Todd-Brown et al.", "2014"),
        ("Bond-Lamberty et al.", "2018")]
    with pytest.raises(AssertionError, match="not in a citation"):
        citations("Soils changed in 2019 a lot.")
    with pytest.raises(AssertionError, match="unparsed citation"):
        citations("(see Smith, in press 2020)")


def test_every_citation_maps_to_one_bib_entry_and_every_entry_is_cited(cited, bib):
    keys = set(cited.values())
    assert keys == set(bib.entries), f"never cited: {sorted(set(bib.entries) - keys)}"
    assert len(keys) == N_WORKS
    # the two spellings of one work map to the same entry
    assert cited[("Bian and Xia", "2023")] == cited[("Bian & Xia", "2023")] == "bian2023"
    assert cited[("Hicks Pries et al.", "2017")] == "hickspries2017"
    assert cited[("Jobbágy & Jackson", "2000")] == "jobbagy2000"


def test_matching_rule_rejects_wrong_year_and_author_count(bib):
    assert _match(bib, "Lu et al.", "2013") == ["lu2013"]
    assert _match(bib, "Lu et al.", "2014") == []
    assert _match(bib, "Lehmann", "2015") == []          # two authors, cited as one
    assert _match(bib, "Crowther et al.", "2019") == ["crowther2019"]


# -- record shape ---------------------------------------------------------------------


def _check_keys(record: dict, allowed: tuple[str, ...], where: str) -> None:
    unknown = [k for k in record if k not in allowed]
    assert not unknown, f"{where}: unknown keys {unknown}"
    order = [allowed.index(k) for k in record]
    assert order == sorted(order), f"{where}: keys out of order {list(record)}"
    empty = [k for k, v in record.items() if v is None or v == "" or v == []]
    assert not empty, f"{where}: write no empty values, leave the key out: {empty}"


def test_study_records_are_well_formed(studies, bib):
    ids = [s.get("id") for s in studies]
    assert len(ids) == len(set(ids)), [i for i, n in Counter(ids).items() if n > 1]
    for s in studies:
        where = f"study {s.get('id')}"
        _check_keys(s, STUDY_KEYS, where)
        for key in ("id", "source_key", "soc_direction", "summary", "evidence_quote",
                    "quote_location", "origin", "curator"):
            assert isinstance(s.get(key), str) and s[key].strip() == s[key], f"{where}: {key}"
        assert s["source_key"] in bib.entries, where
        assert re.fullmatch(re.escape(s["source_key"]) + r"(-\d+)?", s["id"]), where
        assert s["origin"] == "soc_review" and s["curator"] == "soc-kb seed", where
    assert {s["source_key"] for s in studies} == set(bib.entries)


def test_study_vocabularies_and_numbers(studies):
    for s in studies:
        where = f"study {s['id']}"
        for field, vocabulary in STUDY_VOCAB.items():
            if field in s:
                assert s[field] in vocab.names(vocabulary), f"{where}: {field}={s[field]!r}"
        if "warming_medium" in s:
            assert s["warming_medium"] in vocab.WARMING_MEDIA, where
        if "mechanisms" in s:
            mech = s["mechanisms"]
            assert isinstance(mech, list) and len(mech) == len(set(mech)), where
            assert set(mech) <= set(vocab.names("mechanisms")), f"{where}: {mech}"
        for field, (low, high) in NUMERIC_RANGES.items():
            if field in s:
                value = s[field]
                assert isinstance(value, int | float) and not isinstance(value, bool), where
                assert low <= value <= high, f"{where}: {field}={value}"
        if "depth_top_cm" in s and "depth_bottom_cm" in s:
            assert s["depth_top_cm"] < s["depth_bottom_cm"], where


def test_claim_and_link_records_are_well_formed(claims, links, by_id):
    claim_ids = [c.get("id") for c in claims]
    assert len(claim_ids) == len(set(claim_ids)), [i for i, n in Counter(claim_ids).items() if n > 1]
    for c in claims:
        where = f"claim {c.get('id')}"
        _check_keys(c, CLAIM_KEYS, where)
        for key in ("id", "text", "section", "quote", "origin"):
            assert isinstance(c.get(key), str) and c[key].strip() == c[key], f"{where}: {key}"
        assert c["origin"] == "soc_review", where
        for alias in c.get("aliases", []):
            assert re.fullmatch(r"c(A|\d(\.\d)?)-[a-z0-9.-]+", alias), f"{where}: alias {alias!r}"
        for field, vocabulary in CLAIM_VOCAB.items():
            if field in c:
                assert c[field] in vocab.names(vocabulary), f"{where}: {field}={c[field]!r}"
    known = set(claim_ids)
    aliases = [a for c in claims for a in c.get("aliases", [])]
    assert len(aliases) == len(set(aliases)), [a for a, n in Counter(aliases).items() if n > 1]
    assert not known & set(aliases), f"an alias is also a claim id: {sorted(known & set(aliases))}"
    seen = set()
    for i, link in enumerate(links):
        where = f"claim_links[{i}] ({link.get('claim_id')})"
        _check_keys(link, LINK_KEYS, where)
        assert link["claim_id"] in known, where
        assert ("study_id" in link) != ("other_claim_id" in link), where
        if "study_id" in link:
            assert link["study_id"] in by_id, where
            assert link["relation"] in STUDY_RELATIONS, where
        else:
            assert link["other_claim_id"] in known, where
            assert link["other_claim_id"] != link["claim_id"], where
            assert link["relation"] in CLAIM_RELATIONS, where
        assert isinstance(link.get("quote"), str) and link["quote"].strip() == link["quote"], where
        row = (link["claim_id"], link.get("study_id"), link.get("other_claim_id"), link["relation"])
        assert row not in seen, f"{where}: duplicate link"
        seen.add(row)


def test_every_claim_has_evidence(claims, links):
    linked = {link["claim_id"] for link in links}
    assert not [c["id"] for c in claims if c["id"] not in linked]


# -- quotes against the review --------------------------------------------------------


def _under(review: str, heading: str, quote: str, where: str) -> None:
    body = sections(review)
    assert heading in body, f"{where}: no heading {heading!r} in the review"
    assert quote in review, f"{where}: quote is not verbatim review text: {quote[:80]!r}"
    assert quote in body[heading], f"{where}: quote is not under {heading!r}"


def test_study_quotes_are_verbatim_and_under_their_heading(studies, review):
    for s in studies:
        _under(review, s["quote_location"], s["evidence_quote"], f"study {s['id']}")


def test_claim_quotes_are_verbatim_and_under_their_section(claims, review):
    for c in claims:
        _under(review, c["section"], c["quote"], f"claim {c['id']}")


def test_link_quotes_are_verbatim(links, review):
    for i, link in enumerate(links):
        assert link["quote"] in review, f"claim_links[{i}] ({link['claim_id']}): {link['quote'][:80]!r}"


def test_quote_check_can_fail(review):
    heading = "3.1. Experimental warming and soil respiration"
    straight = "Permafrost regions store vast SOC stocks"          # under 2.3, not 3.1
    with pytest.raises(AssertionError, match="not under"):
        _under(review, heading, straight, "probe")
    with pytest.raises(AssertionError, match="not verbatim"):
        _under(review, heading, "warming generally increases soil respiration and can deplete SOC stocks "
               "especially", "probe")   # a comma dropped
    with pytest.raises(AssertionError, match="no heading"):
        _under(review, "3.1 Experimental warming and soil respiration", straight, "probe")


def test_each_study_quote_names_its_work(studies, bib):
    """The evidence quote cites the study's own work (or, for a pronoun, the sentence before does)."""
    for s in studies:
        authors, _ = _bib_authors(bib.entries[s["source_key"]])
        assert authors[0] in _fold(s["evidence_quote"]), f"study {s['id']}: quote does not name {authors[0]}"


# -- tensions -------------------------------------------------------------------------


def _claim_with(claims, phrase: str) -> str:
    ids = [c["id"] for c in claims if phrase in c["quote"]]
    assert len(ids) == 1, f"{phrase!r}: claims {ids}"
    return ids[0]


def _contradicting(links) -> set[frozenset]:
    return {frozenset((link["claim_id"], link["other_claim_id"]))
            for link in links if link.get("other_claim_id") and link["relation"] == "contradicts"}


def _supported_by(links, study_id: str) -> set[str]:
    return {link["claim_id"] for link in links
            if link.get("study_id") == study_id and link["relation"] == "supports"}


def _link_quote(links, claim_id: str, study_id: str, relation: str) -> str:
    found = [link["quote"] for link in links if link["claim_id"] == claim_id
             and link.get("study_id") == study_id and link["relation"] == relation]
    assert len(found) == 1, (claim_id, study_id, relation, found)
    return found[0]


def test_tension_a_models_under_or_over_estimate_soc_loss(claims, links, canonical):
    under = _claim_with(claims, "often underestimate the vulnerability of SOC to warming")
    over = _claim_with(claims, "biased toward excessive carbon loss")
    assert frozenset((under, over)) in _contradicting(links)
    # §7 repeats the Abstract; §3.3 and §5.2 read He et al. (2022) the two opposite ways:
    # each merged into the side it argues, its old id kept as an alias
    assert canonical["c7-models-underestimate-vulnerability"] == under
    assert canonical["c3.3-models-underestimate-turnover-feedback-stronger"] == under
    assert canonical["c5.2-models-too-leaky-inflate-feedbacks"] == over
    # He et al. (2022) is cited on both sides, each with the passage that reads it that way
    assert {under, over} <= _supported_by(links, "he2022")
    assert "may be stronger than models currently predict" in _link_quote(links, under, "he2022", "supports")
    assert "too “leaky,”" in _link_quote(links, over, "he2022", "supports")


def test_tension_b_warming_and_microbial_cue(claims, links):
    traditional = _claim_with(claims, "Traditional assumptions held that warming always reduces CUE")
    tao = _claim_with(claims, "higher microbial CUE at the global scale could promote SOC storage")
    assert frozenset((traditional, tao)) in _contradicting(links)
    assert tao in _supported_by(links, "tao2023")
    against = {link["study_id"] for link in links
               if link["claim_id"] == traditional and link.get("relation") == "contradicts"
               and link.get("study_id")}
    assert against == {"tao2023"}


def test_other_tensions_are_recorded(claims, links):
    pairs = _contradicting(links)
    inert = _claim_with(claims, "once treated as inert in many models")
    overturned = _claim_with(claims, "has overturned the earlier assumption that deep SOC is inert")
    assert frozenset((inert, overturned)) in pairs
    narrative = _claim_with(claims, "often portrayed as offering large, low-cost mitigation potential")
    doubt = _claim_with(claims, "questioning whether global SOC sequestration can deliver the scale")
    assert frozenset((narrative, doubt)) in pairs
    # capacity and its saturation caution are one claim: the work limits its own estimate
    capacity = _claim_with(claims, "reshaping expectations about SOC storage capacity")
    text = next(c["text"] for c in claims if c["id"] == capacity)
    assert "more mineral-associated SOC" in text and "saturation" in text
    assert "c5.1-maoc-saturation-limits" in next(c for c in claims if c["id"] == capacity)["aliases"]


# -- reader questions answered from the seed files ------------------------------------


def _ids(studies, **where) -> set[str]:
    def ok(s):
        for field, wanted in where.items():
            value = s.get(field)
            if field == "mechanisms":
                if not set(wanted) & set(value or []):
                    return False
            elif value not in (wanted if isinstance(wanted, set) else {wanted}):
                return False
        return True
    return {s["id"] for s in studies if ok(s)}


def test_reader_questions(studies, links):
    # Which studies found warming erodes mineral-associated carbon?
    assert {"chen2023", "georgiou2022"} <= _ids(studies, mechanisms=["mineral_protection"])
    # Which studies warmed or sampled deep soil? (the review names three whole-profile experiments)
    assert {"hickspries2017", "soong2021", "ofiti2021"} <= _ids(studies, depth_class=DEEP)
    assert _ids(studies, warming_method="whole_soil_heating") == {"hickspries2017", "soong2021", "ofiti2021"}
    # What does the seed hold on permafrost / high latitudes? Only Schuur et al. (2015).
    assert (_ids(studies, biome={"arctic", "high_latitude"})
            | _ids(studies, ecosystem="permafrost")) == {"schuur2015"}
    # Which works are policy analyses of NDCs and MRV?
    assert {"wiese2021", "smith2020"} <= _ids(studies, study_type="policy_analysis")
    # Which emergent-constraint studies does the review cite? (§5.3 lists them)
    assert _ids(studies, study_type="emergent_constraint") == {"xu2020", "varney2020", "ren2024"}
    # Which field warming experiments, and which meta-analyses?
    assert _ids(studies, study_type="field_experiment") == {
        "hickspries2017", "soong2021", "ofiti2021", "chen2023"}
    assert _ids(studies, study_type="meta_analysis") == {"lu2013", "tang2020"}
    # Warming in an alpine shrubland? Long experiments (five years or more)?
    assert _ids(studies, biome="alpine", ecosystem="shrubland") == {"chen2023"}
    assert {s["id"] for s in studies if s.get("duration_years", 0) >= 5} == {"soong2021", "chen2023"}
    # Where did respiration rise? Nowhere does the review report it falling.
    assert {"lu2013", "tang2020", "bondlamberty2018", "nissan2023", "hickspries2017"} <= _ids(
        studies, respiration_direction="increase")
    assert not _ids(studies, respiration_direction="decrease")
    # Studies reporting SOC gains: the review names none.
    assert not _ids(studies, soc_direction="increase")
    # Which studies bear on the most claims? Lu et al. (2013) and He et al. (2022) are among them.
    per_study = Counter(link["study_id"] for link in links if link.get("study_id"))
    top = {s for s, _ in per_study.most_common(6)}
    assert {"lu2013", "he2022"} <= top


def test_values_the_review_does_not_state_are_empty(studies, by_id):
    """Spot checks of data honesty: no site, country, coordinates or warming °C invented."""
    for s in studies:
        for field in ("site", "country", "lat", "lon", "depth_top_cm", "depth_bottom_cm"):
            assert field not in s, f"study {s['id']}: the review gives no {field}"
    # the review gives no experiment's warming in °C
    assert not [s["id"] for s in studies if "warming_c" in s]
    assert by_id["soong2021"]["duration_years"] == 5
    assert by_id["chen2023"]["duration_years"] == 20
    # "at 2 °C global warming": a global warming level of a model ensemble, not a treatment
    assert by_id["varney2020"]["warming_level_c"] == 2


# -- the same questions through the library and the CLI -------------------------------


@pytest.fixture(scope="module")
def kb_path(tmp_path_factory):
    return tmp_path_factory.mktemp("seed") / "seed.db"


@pytest.fixture(scope="module")
def kb(kb_path):
    store = KnowledgeBase(kb_path)
    yield store
    store.close()


def _imported(table: str) -> int:
    """Records of ``table`` in the importers' seed files (SRDB, COSORE)."""
    total = 0
    for path in SEED.glob("*.yaml"):
        if path.name not in ("studies.yaml", "claims.yaml", "syntheses.yaml"):
            total += len(yaml.safe_load(path.read_text(encoding="utf-8")).get(table, []))
    return total


def test_api_loads_the_whole_seed(kb, studies, claims, links, syntheses_file):
    counts = kb.counts()
    assert counts["syntheses"] == len(syntheses_file["syntheses"]) == 7
    assert counts["synthesis_links"] == len(syntheses_file["synthesis_links"]) == 12
    assert counts["sources"] == N_WORKS + _imported("sources")
    review_keys = set(parse_file(str(SEED / "references.bib")).entries.keys())
    assert review_keys <= set(kb.sources()["key"])
    assert counts["studies"] == len(studies) + _imported("studies")
    assert counts["effects"] == _imported("effects")
    assert counts["claims"] == len(claims)
    assert counts["claim_links"] == len(links)
    assert len(kb.claim_aliases()) == sum(len(c.get("aliases", [])) for c in claims)


def test_api_reader_questions(kb, studies):
    def ids(**filters):
        return set(kb.studies(**filters)["id"])
    assert ids(mechanism=["mineral_protection"]) == _ids(studies, mechanisms=["mineral_protection"])
    assert {"hickspries2017", "soong2021", "ofiti2021"} <= ids(depth_class=sorted(DEEP))
    assert ids(ecosystem="permafrost") == {"schuur2015"}
    assert ids(study_type="emergent_constraint") == {"xu2020", "varney2020", "ren2024"}
    assert ids(biome="alpine", ecosystem="shrubland", direction="decrease") == {"chen2023"}
    assert {"wiese2021", "smith2020"} <= ids(study_type="policy_analysis")
    assert "chen2023" in ids(text="shrubland")


def test_api_claim_links_show_the_cue_tension(kb):
    tao = kb.links(study_id="tao2023")
    assert "contradicts" in set(tao["relation"])
    assert "supports" in set(tao["relation"])


def test_cli_query_answers_a_reader_question(kb, kb_path):
    result = CliRunner().invoke(cli, ["--db", str(kb_path), "query", "--biome", "alpine",
                                      "--mechanism", "mineral_protection", "--format", "json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert [row["id"] for row in rows] == ["chen2023"]
    result = CliRunner().invoke(cli, ["--db", str(kb_path), "query", "--study-type",
                                      "field_experiment", "--mechanism", "microbial_decomposition",
                                      "--format", "json"])
    assert result.exit_code == 0, result.output
    assert {row["id"] for row in json.loads(result.output)} == {"hickspries2017", "soong2021", "ofiti2021"}


# -- syntheses and the claims that cite them (README "Syntheses and the claims that cite them")

RESPIRATION = {"soil_respiration", "soil_respiration_rate", "heterotrophic_respiration",
               "autotrophic_respiration", "root_contribution", "q10", "r10"}
IMPORTED_ORIGINS = {"srdb", "cosore"}  # the importers' records, never the review's studies
QUOTED = re.compile("“([^”]+)”")


def test_syntheses_are_reproducible_queries_of_the_imported_data(syntheses_file):
    cited = {link["synthesis_id"] for link in syntheses_file["synthesis_links"]}
    for synthesis in syntheses_file["syntheses"]:
        where = f"syntheses {synthesis['id']}"
        assert set(synthesis) <= {"id", "title", "response", "filters", "group_by", "group_value",
                                  "model", "method", "curator", "origin", "notes"}, where
        origins = synthesis["filters"]["origin"]
        assert origins and set(origins) <= IMPORTED_ORIGINS, where
        assert synthesis["curator"] == "soc-kb seed" and synthesis["id"] in cited, where


def test_synthesis_links_quote_the_claim_and_say_why(syntheses_file, claims, canonical):
    """A link may name a merged claim by its old id (an alias): the note's quoted words must
    then be in the text of the claim it was merged into."""
    texts = {c["id"]: c["text"] for c in claims}
    ids = {s["id"] for s in syntheses_file["syntheses"]}
    for i, link in enumerate(syntheses_file["synthesis_links"]):
        where = f"synthesis_links[{i}] ({link['claim_id']} <- {link['synthesis_id']})"
        assert link["claim_id"] in canonical and link["synthesis_id"] in ids, where
        quoted = QUOTED.findall(link["note"])
        assert quoted, f"{where}: the note quotes none of the claim's words"
        for words in quoted:
            assert words in texts[canonical[link["claim_id"]]], f"{where}: “{words}” is not the claim's text"
        assert link["relation"] in {"supports", "qualifies"}, where
        # a claim that predicts a direction says which; a qualifying link need not
        assert link.get("expects") == "increase" or link["relation"] == "qualifies", where


def test_respiration_data_are_never_soc_stock_evidence(syntheses_file, claims, canonical):
    """A claim that speaks of SOC or of carbon stores is linked to respiration data at most
    as ``qualifies``, and the note says what the data are not evidence on."""
    texts = {c["id"]: c["text"] for c in claims}
    responses = {s["id"]: s["response"] for s in syntheses_file["syntheses"]}
    for link in syntheses_file["synthesis_links"]:
        text = texts[canonical[link["claim_id"]]]
        if responses[link["synthesis_id"]] in RESPIRATION and re.search(r"\bSOC\b|carbon", text):
            assert link["relation"] == "qualifies", link["claim_id"]
            assert "not evidence on" in link["note"], link["claim_id"]


def test_the_claim_on_respiration_cites_the_respiration_syntheses(syntheses_file):
    cited = [(link["synthesis_id"], link["relation"]) for link in syntheses_file["synthesis_links"]
             if link["claim_id"] == "c2.2-warming-stimulates-respiration"]
    assert cited == [("srdb-rs-annual", "supports"), ("srdb-rh-annual", "supports"),
                     ("rs-rate-srdb-cosore", "supports")]


def test_api_claim_shows_its_evidence_from_data(kb):
    from kb.claims import graph

    report = graph.claim_report(kb, "c2.2-warming-stimulates-respiration")
    data = report.data.set_index("synthesis_id")
    assert list(data.index) == ["srdb-rs-annual", "srdb-rh-annual", "rs-rate-srdb-cosore"]
    annual = data.loc["srdb-rs-annual"]
    # every SRDB annual contrast with a variance is pooled; the review's studies are not
    srdb = kb.effects(response="soil_respiration", origin="srdb")
    assert annual["k_effects"] == int(srdb["vi"].notna().sum()) > 0
    assert annual["sign"] == ("increase" if annual["ci_low"] > 0 else
                              "decrease" if annual["ci_high"] < 0 else "none")
    assert "#### Evidence from the literature" in report.to_markdown()
    assert "#### Evidence from data" in report.to_markdown()


# -- the review's words decide study types, directions and mechanisms (README rules) ---


def _sentences(review: str) -> list[str]:
    return re.split(r"(?<=[.!?])\s+(?=[A-Z])", review)


def _cites(sentence: str, bib, key: str) -> bool:
    authors, _ = _bib_authors(bib.entries[key])
    return authors[0] in _fold(sentence)


#: study -> (its type, the review's words that state it); None where the review states none
STUDY_TYPE_WORDS = [
    ("luo2019", "model", "observation-based and modelling efforts"),
    ("oldfield2019", "data_synthesis", "Large-scale syntheses show"),
    ("paustian2016", "data_synthesis", "Large-scale syntheses show"),
    ("crowther2019", "data_synthesis", "global syntheses of soil biodiversity"),
    ("schuur2015", "review", "synthesized field, laboratory and modelling evidence"),
    ("tao2023", "model", "combined laboratory and field data with modelling"),
    ("schmidt2011", "perspective", "Conceptual models that treat SOC persistence"),
    ("lu2013", "meta_analysis", "A meta-analysis of experimental warming"),
    ("wiese2021", "policy_analysis", "reviewed first-round Nationally Determined Contributions"),
    ("lehmann2015", None, None),
    ("crowther2016", None, None),
    ("naipal2018", None, None),
]


@pytest.mark.parametrize("study_id,study_type,words", STUDY_TYPE_WORDS)
def test_a_study_type_is_the_one_the_review_states(by_id, review, bib, study_id, study_type, words):
    assert by_id[study_id].get("study_type") == study_type
    if words is not None:  # the words stand in a sentence that cites the work
        assert any(words in s and _cites(s, bib, study_id) for s in _sentences(review)), words


def test_tao2023_direction_says_why_it_is_not_a_gain(by_id, review):
    """§4.1's "might enhance, rather than reduce, SOC formation" is a conditional inference,
    not a measured or projected SOC change: the record keeps not_reported and says why, in
    the review's own words."""
    tao = by_id["tao2023"]
    assert tao["soc_direction"] == "not_reported"
    quoted = QUOTED.findall(tao["notes"])
    assert "might enhance, rather than reduce, SOC formation" in quoted
    for words in quoted:
        assert words in review, words


def test_a_global_warming_level_is_not_a_warming_treatment(kb, kb_path):
    """varney2020's "2 °C global warming" is a warming level of a model ensemble: a
    warming-range query over experiments does not list it."""
    assert kb.study("varney2020")["warming_level_c"] == pytest.approx(2.0)  # stored as given
    assert kb.study("varney2020")["warming_c"] is None
    assert "varney2020" not in set(kb.studies(warming=(1.5, 2.5), origin="soc_review")["id"])
    result = CliRunner().invoke(cli, ["--db", str(kb_path), "query", "--warming", "1.5:2.5",
                                      "--format", "json"])
    assert result.exit_code == 0, result.output
    listed = {row["id"] for row in json.loads(result.stdout)}
    assert listed and "varney2020" not in listed  # experiments warmed by 1.5-2.5 °C only


#: Every joint citation of the review (a parenthesis citing two or more works, and the one
#: narrative list in §4.2), with the mechanisms its sentence names by a vocabulary name,
#: synonym or description. Each cited work carries them all (README "mechanisms"). Benefits
#: SOC provides (yields, water retention, services) and places (permafrost emissions) name
#: no mechanism.
JOINT_MECHANISMS = [
    ("small percentage changes in SOC stocks can translate into large fluxes of carbon dioxide to or from the atmosphere (Crowther et al., 2016; Paustian et al., 2016)", set()),
    ("warming can stimulate microbial activity and soil respiration, accelerate decomposition of previously stable carbon, and trigger abrupt emissions from permafrost and peatlands (Schuur et al., 2015; Lu et al., 2013; Hicks Pries et al., 2017)", {"microbial_decomposition"}),
    ("increased plant productivity, altered root dynamics and improved soil management may enhance SOC sequestration in some regions (Lal, 2020; Oldfield et al., 2019)", {"plant_inputs", "land_management"}),
    ("this uncertainty is a major source of spread in climate projections (Bradford et al., 2016; Todd-Brown et al., 2014)", set()),
    ("degrees of association with minerals and pore networks, and residence times that emerge from interactions among climate, biota and soil structure (Schmidt et al., 2011; Lehmann & Kleber, 2015)", {"mineral_protection", "aggregation", "turnover_time"}),
    ("enhance water retention and nutrient cycling, linking SOC to food security and adaptation potential (Oldfield et al., 2019; Paustian et al., 2016)", set()),
    ("reconstructions of heterotrophic respiration and turnover (He et al., 2022; Tang et al., 2020)", {"microbial_decomposition", "turnover_time"}),
    ("stimulation of soil respiration and heterotrophic respiration across biomes (Lu et al., 2013; Tang et al., 2020)", {"microbial_decomposition"}),
    ("particularly where mineral protection or aggregation are weakened (Hicks Pries et al., 2017; Soong et al., 2021; Ofiti et al., 2021; Chen et al., 2023)", {"mineral_protection", "aggregation"}),
    ("reinforcing atmospheric warming (Crowther et al., 2016; He et al., 2022)", set()),
    ("Increased plant productivity and deeper rooting can supply more carbon to soils, especially in systems that were previously nutrient or water limited; improved aggregation and organo-mineral associations can then stabilise a fraction of this input (Lal, 2020; Oldfield et al., 2019)", {"plant_inputs", "nutrient_limitation", "soil_moisture", "aggregation", "mineral_protection"}),
    ("warming increases microbial maintenance costs or substrate limitation, lowering CUE and amplifying CO₂ losses; in others, enhanced root inputs and nutrient cycling partly offset decomposition (Lu et al., 2013; Hicks Pries et al., 2017; Ofiti et al., 2021)", {"substrate_limitation", "carbon_use_efficiency", "plant_inputs", "nutrient_limitation", "microbial_decomposition"}),
    ("apparent SOC turnover times vary by orders of magnitude across climate zones, textures and land uses, with much of the global SOC stock characterised by relatively slow cycling (Schmidt et al., 2011; Paustian et al., 2016; He et al., 2022)", {"turnover_time"}),
    ("rising soil respiration and heterotrophic respiration have already occurred over recent decades (Jian et al., 2021; Bond-Lamberty et al., 2018)", {"microbial_decomposition"}),
    ("demonstrating significant losses from subsoils and altered SOC composition down to nearly one metre depth (Hicks Pries et al., 2017; Soong et al., 2021; Ofiti et al., 2021)", set()),
    ("subsoil SOC turnover times are dominantly controlled by soil properties such as mineralogy and texture rather than climate alone, and that deep SOC can be as sensitive to perturbation as topsoil when protective mechanisms are disrupted (Luo et al., 2019; He et al., 2022)", {"turnover_time", "mineral_protection"}),
    ("high potential for sequestration under improved management, implying scope for locally negative feedbacks if policies and practices are aligned (Oldfield et al., 2019; Lal, 2020; Moinet et al., 2023)", {"land_management"}),
    ("At the microscale, physical protection, mineral associations and microbial traits determine the fate of individual carbon molecules (Schmidt et al., 2011; Lehmann & Kleber, 2015)", {"aggregation", "mineral_protection"}),
    ("vegetation type, management, hydrology and disturbance regimes shape SOC inputs and protection mechanisms, yielding contrasting feedback strengths among croplands, grasslands, forests and peatlands (Paustian et al., 2016; Luo et al., 2019)", {"land_management", "soil_moisture", "disturbance", "plant_inputs"}),
    ("data-driven estimates of heterotrophic respiration and biodiversity maps reveal coherent patterns that can inform model parameterisation and benchmarking (Crowther et al., 2016; Crowther et al., 2019; Jian et al., 2021; He et al., 2022)", {"microbial_decomposition", "microbial_community"}),
    ("Conceptual models that treat SOC persistence as an ecosystem property, conditioned by the interaction of soil properties, biota and climate, are increasingly being translated into model architectures and benchmarking frameworks (Schmidt et al., 2011; Tao et al., 2023)", {"permanence"}),
    ("including productivity, water regulation and biodiversity support – alongside climate mitigation can help avoid maladaptive interventions and guide more balanced strategies for managing SOC feedbacks (Lal, 2020; Moinet et al., 2023)", set()),
    ("its inclusion in Earth system models tends to increase projected warming for a given emissions pathway (Schuur et al., 2015; Todd-Brown et al., 2014)", set()),
    ("warming increases evapotranspiration and reduces soil moisture, which can suppress microbial activity and partially offset temperature-driven increases in decomposition (Lu et al., 2013; Tang et al., 2020)", {"soil_moisture", "microbial_decomposition"}),
    ("Nitrogen or phosphorus limitation can constrain plant responses to elevated carbon dioxide and warming, limiting increases in carbon inputs to soils (Paustian et al., 2016; Lal, 2020)", {"nutrient_limitation", "plant_inputs"}),
    ("in the magnitude and even sign of projected SOC changes under warming (Todd-Brown et al., 2014; Wei et al., 2022)", set()),
    ("reveals systematic discrepancies between observed soil CO₂ efflux and modelled heterotrophic respiration across biomes (Tang et al., 2020; Jian et al., 2021)", {"microbial_decomposition"}),
    ("When such empirically derived sensitivities are combined with constraints on present-day turnover, the net effect can be a narrowing of uncertainty around SOC–climate feedbacks, while still pointing to the potential for substantial soil carbon loss under strong warming (Nissan et al., 2023; Ren et al., 2024)", {"temperature_sensitivity", "turnover_time"}),
    ("Emergent-constraint studies (Xu et al., 2020; Varney et al., 2020; Ren et al., 2024), process-explicit SOC models (Abramoff et al., 2022; Dangal et al., 2022), and uncertainty-focused analyses (Bradford et al., 2016; Bian & Xia, 2023)", set()),
    ("often portrayed as offering large, low-cost mitigation potential through enhanced carbon sequestration (Paustian et al., 2016; Bossio et al., 2020)", set()),
    ("Hicks Pries et al. (2017), Soong et al. (2021) and Ofiti et al. (2021) collectively show that warming can mobilize carbon from deep horizons, particularly by stimulating decomposition of plant-derived compounds and altering root distributions", {"microbial_decomposition", "plant_inputs"}),
]


@pytest.mark.parametrize("words,mechanisms", JOINT_MECHANISMS, ids=lambda v: str(v)[:40])
def test_a_joint_citation_gives_every_cited_work_its_mechanisms(review, cited, by_id, words, mechanisms):
    assert words in review, "not verbatim review text"
    works = {cited[c] for c in citations(words)}
    assert len(works) >= 2
    assert mechanisms <= set(vocab.names("mechanisms"))
    for work in sorted(works):
        missing = mechanisms - set(by_id[work].get("mechanisms", []))
        assert not missing, f"{work} lacks {sorted(missing)} of the joint citation"


def test_every_joint_citation_is_listed(review):
    """Every parenthesis that cites two or more works lies in a JOINT_MECHANISMS entry, so
    no joint citation is applied one way here and another way there."""
    fragments = [words for words, _ in JOINT_MECHANISMS]
    joint = [m.group(0) for m in _PARENS.finditer(review)
             if ";" in m.group(1) and _YEAR.search(m.group(1))]
    assert len(joint) >= 30  # the review has 32; the extractor must not come back empty
    assert not [j for j in joint if not any(j in f for f in fragments)]


def test_no_quote_comes_from_the_limitations_paragraphs(review, studies, claims, links):
    """The §7 limitations paragraphs are about the review, not the evidence: no claim, link
    or study quotes them (README "Claims and links")."""
    start = review.index("This review is constrained by several limitations.")
    limitations = review[start:]
    quotes = ([s["evidence_quote"] for s in studies] + [c["quote"] for c in claims]
              + [link["quote"] for link in links])
    assert not [q[:60] for q in quotes if q in limitations]


def test_depth_class_labels_give_no_centimetres():
    """The review gives depths only as words ("surface", "subsoils", "whole-profile"); a
    label shows no centimetres. The bounds stay as extras: the depth filter's convention."""
    for term in vocab.DEPTH_CLASSES:
        assert not re.search(r"\d|cm\b", term.label), term.label
    bounds = {t.name: (t.extra.get("top_cm"), t.extra.get("bottom_cm")) for t in vocab.DEPTH_CLASSES}
    assert bounds["topsoil"] == (0.0, 30.0) and bounds["subsoil"] == (30.0, 100.0)

"""Claims as distinct propositions, and claim aliases (the retired ids of merged claims).

The first part reads the shipped seed (``kb/seed/claims.yaml``): no two claims are near
duplicates (by text, by quote, or by resting on the same studies without a link between
them), no claim only restates one study, the near-duplicates the review's first curation
held are one claim now, and every retired id still names a claim. The second part checks
the alias machinery end to end: records, the store, the graph, files and the migration.
"""

from __future__ import annotations

import itertools
import re
import shutil
import sqlite3
from collections import defaultdict
from pathlib import Path

import pytest
import yaml

from kb import KBError, KnowledgeBase
from kb.claims import graph as g
from kb.schema import migrations, schema_version

SEED = Path(__file__).resolve().parents[1] / "kb" / "seed"

# -- the shipped claims ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def seed() -> dict:
    claims = yaml.safe_load((SEED / "claims.yaml").read_text(encoding="utf-8"))
    studies = yaml.safe_load((SEED / "studies.yaml").read_text(encoding="utf-8"))["studies"]
    syntheses = yaml.safe_load((SEED / "syntheses.yaml").read_text(encoding="utf-8"))
    return {"claims": claims["claims"], "links": claims["claim_links"],
            "studies": {s["id"]: s for s in studies}, "synthesis_links": syntheses["synthesis_links"]}


@pytest.fixture(scope="module")
def canonical(seed) -> dict[str, str]:
    """Claim id or alias -> the id of the claim it names."""
    return {c["id"]: c["id"] for c in seed["claims"]} | {
        a: c["id"] for c in seed["claims"] for a in c.get("aliases", [])}


#: words that carry no content (articles, prepositions, modal and linking verbs)
_STOP = frozenset({
    "the", "a", "an", "and", "or", "of", "in", "to", "by", "is", "are", "be", "can", "may",
    "might", "could", "that", "this", "from", "for", "with", "as", "on", "at", "its", "their",
    "than", "more", "most", "often", "many", "some", "such", "which", "it", "into", "not",
    "rather", "also", "both", "so", "but", "while", "when", "where", "has", "have", "been",
    "being", "was", "were", "there", "these", "those"})


def _stems(text: str) -> set[str]:
    """Content words, cut to 6 letters so "warming"/"warmed" and "losses"/"loss" meet."""
    return {w[:6] for w in re.findall(r"[a-z0-9₂]+", text.lower()) if w not in _STOP and len(w) > 2}


def similarity(a: str, b: str) -> float:
    """Share of content words two texts have in common (Jaccard on word stems)."""
    sa, sb = _stems(a), _stems(b)
    return len(sa & sb) / len(sa | sb)


#: Two texts sharing this share of content words say the same thing. Restatements of one
#: proposition in the review's first curation scored 0.31-0.36 (e.g. the §3.1 and §7
#: net-loss claims below); the distinct claims of the shipped seed stay at or below 0.25.
NEAR_IDENTICAL = 0.3

_NET_LOSS_31 = ("Persistent warming tends to drive net SOC losses, especially in deep and "
                "mineral-associated pools, contributing to a positive feedback to climate.")
_NET_LOSS_7 = ("Warming generally increases soil respiration and drives net SOC losses in many "
               "systems, especially over longer timescales and in deep and mineral-associated pools.")
_INERT = "Deep soil carbon is inert (the earlier assumption, once built into many models)."
_BELOW_30 = ("A large fraction of SOC is stored below 30 cm depth, and its vertical distribution "
             "is shaped by climate, texture and vegetation type.")


@pytest.mark.parametrize("a,b,near", [
    (_NET_LOSS_31, _NET_LOSS_7, True),                                   # one proposition, twice
    (_NET_LOSS_7, _NET_LOSS_7.replace("generally", "usually"), True),     # a word changed
    (_BELOW_30, " ".join(reversed(_BELOW_30.split())), True),            # the same words reordered
    (_INERT, _BELOW_30, False),                                          # two propositions
    (_NET_LOSS_31, _BELOW_30, False),
])
def test_the_similarity_measure_flags_restatements_only(a, b, near):
    assert (similarity(a, b) >= NEAR_IDENTICAL) == near


def test_no_two_claims_have_near_identical_texts(seed):
    close = [(a["id"], b["id"], round(similarity(a["text"], b["text"]), 2))
             for a, b in itertools.combinations(seed["claims"], 2)
             if similarity(a["text"], b["text"]) >= NEAR_IDENTICAL]
    assert not close


def test_no_two_claims_have_the_same_quote(seed):
    quotes = [c["quote"] for c in seed["claims"]]
    assert len(quotes) == len(set(quotes))


def test_claims_on_the_same_studies_are_linked(seed):
    """Two claims resting on the same two or more supporting studies are one proposition,
    unless a link says how they differ (refines, qualifies, ...)."""
    supporters = defaultdict(set)
    for link in seed["links"]:
        if link.get("study_id") and link["relation"] == "supports":
            supporters[link["claim_id"]].add(link["study_id"])
    linked = {frozenset((link["claim_id"], link["other_claim_id"]))
              for link in seed["links"] if link.get("other_claim_id")}
    same = [(a, b) for a, b in itertools.combinations(supporters, 2)
            if supporters[a] == supporters[b] and len(supporters[a]) >= 2
            and frozenset((a, b)) not in linked]
    assert not same


def test_no_claim_only_restates_one_study(seed):
    """A claim whose only connection is one study, in that study's own words, is the
    study's finding, not a proposition of the review: it belongs to its parent claim."""
    connections = defaultdict(list)
    for link in seed["links"]:
        connections[link["claim_id"]].append(link.get("study_id") or link["other_claim_id"])
        if link.get("other_claim_id"):
            connections[link["other_claim_id"]].append(link["claim_id"])
    restating = []
    for claim in seed["claims"]:
        linked = set(connections[claim["id"]])
        study = seed["studies"].get(next(iter(linked))) if len(linked) == 1 else None
        if study and (claim["quote"] in study["evidence_quote"] or study["evidence_quote"] in claim["quote"]):
            restating.append(claim["id"])
    assert not restating


@pytest.mark.parametrize("ids", [
    ("cA-soils-store-more-than-air-and-plants", "c1-soils-2-3x-atmosphere"),
    ("cA-esms-underestimate-vulnerability", "c7-models-underestimate-vulnerability"),
    ("cA-constraints-narrowing-but-diverge", "c5.1-constraints-reduce-spread-not-risk",
     "c5.2-empirical-constraints-narrow-uncertainty"),
    ("c2.3-deep-soc-not-inert", "c4.2-deep-soils-active"),
    ("c4.1-higher-cue-may-enhance-soc", "c2.2-higher-cue-may-increase-retention"),
    ("c3.1-persistent-warming-net-loss", "c7-warming-drives-net-losses"),
])
def test_near_duplicates_of_the_first_curation_are_one_claim(canonical, ids):
    assert len({canonical[i] for i in ids}) == 1


def test_every_old_id_names_a_claim(seed, canonical):
    """The 97 ids of the first curation all still name a claim: kept, or as an alias."""
    aliases = [a for c in seed["claims"] for a in c.get("aliases", [])]
    assert len(seed["claims"]) + len(aliases) == 97
    assert all(canonical[a] != a for a in aliases)
    cited = {link["claim_id"] for link in seed["synthesis_links"]}
    assert cited <= set(canonical)  # syntheses.yaml may name a claim by its old id


def test_every_alias_resolves_in_the_store_and_the_graph(seeded_file, seed, canonical):
    with KnowledgeBase(seeded_file, create=False) as kb:
        G = g.build_graph(kb)
        stored = dict(kb.claim_aliases().itertuples(index=False))
        assert stored == {a: c for a, c in canonical.items() if a != c}
        for alias, claim_id in stored.items():
            assert kb.claim(alias)["id"] == claim_id
            assert list(kb.claims(claim_id=alias)["id"]) == [claim_id]
            assert kb.links(claim_id=alias).equals(kb.links(claim_id=claim_id))
            assert g.resolve_claim(G, alias) == claim_id
        report = g.claim_report(G, "c7-models-underestimate-vulnerability")
        assert report.claim_id == report.claim["id"] == "cA-esms-underestimate-vulnerability"
        # the links of syntheses.yaml that name an old id are stored under the claim's own
        assert set(kb.synthesis_links()["claim_id"]) == {canonical[link["claim_id"]]
                                                        for link in seed["synthesis_links"]}


def test_the_review_tensions_stay_contested(seeded_file):
    with KnowledgeBase(seeded_file, create=False) as kb:
        contested = set(g.contested_claims(kb)["id"])
    assert {"cA-esms-underestimate-vulnerability", "c5.1-esms-biased-toward-excess-loss",
            "c4.1-warming-always-reduces-cue", "c4.1-higher-cue-may-enhance-soc",
            "c4.2-deep-soils-inert-assumption", "c2.3-deep-soc-not-inert",
            "c6.1-soils-large-low-cost-mitigation", "c6.1-scale-permanence-doubtful",
            "c7-sink-role-constrained"} <= contested


# -- aliases end to end -----------------------------------------------------------------------

BASE = {"claims": [{"id": "a", "text": "Claim A", "aliases": ["old-a", "older-a"]},
                   {"id": "b", "text": "Claim B"}]}


@pytest.fixture
def kb(empty_kb):
    empty_kb.add_records(BASE)
    return empty_kb


def test_a_link_may_name_a_claim_by_its_alias(kb):
    kb.add_source({"key": "s1", "title": "T", "year": 2020})
    kb.add_study({"id": "st", "source_key": "s1", "soc_direction": "decrease"})
    kb.add_records({"claim_links": [{"claim_id": "older-a", "study_id": "st", "relation": "supports"},
                                    {"claim_id": "b", "other_claim_id": "old-a", "relation": "refines"}]})
    links = kb.links()
    assert list(links["claim_id"]) == ["a", "b"] and links["other_claim_id"].iloc[1] == "a"
    assert g.claim_report(kb, "old-a").balance["n_supports"] == 1


def test_aliases_in_the_same_batch_resolve(empty_kb):
    empty_kb.add_records({"claims": [{"id": "new", "text": "N", "aliases": ["retired"]},
                                     {"id": "other", "text": "O"}],
                          "claim_links": [{"claim_id": "other", "other_claim_id": "retired",
                                           "relation": "contradicts"}]})
    assert empty_kb.links()["other_claim_id"].tolist() == ["new"]


@pytest.mark.parametrize("records,message", [
    ({"claims": [{"id": "c", "text": "x", "aliases": ["c"]}]}, "'c' is the claim's own id"),
    ({"claims": [{"id": "c", "text": "x", "aliases": ["r", "r"]}]}, "'r' is listed twice"),
    ({"claims": [{"id": "c", "text": "x", "aliases": ["b"]}]}, "'b' is the id of a claim"),
    ({"claims": [{"id": "c", "text": "x", "aliases": ["d"]}, {"id": "d", "text": "y"}]},
     "'d' is the id of a claim"),
    ({"claims": [{"id": "c", "text": "x", "aliases": ["old-a"]}]}, "already an alias of claim 'a'"),
    ({"claims": [{"id": "c", "text": "x", "aliases": ["r"]}, {"id": "d", "text": "y", "aliases": ["r"]}]},
     "already an alias of claim 'c'"),
    ({"claims": [{"id": "old-a", "text": "x"}]}, "'old-a' is an alias of claim 'a'"),
    ({"claim_links": [{"claim_id": "old-a", "other_claim_id": "a", "relation": "refines"}]},
     "links claim 'a' to itself"),
    ({"claim_links": [{"claim_id": "gone", "other_claim_id": "a", "relation": "refines"}]},
     "'gone' is not a known claim key"),
    ({"claims": [{"id": "c", "text": "x", "aliases": "old-b"}]}, "field 'aliases'"),
])
def test_bad_aliases_are_refused_in_one_line(kb, records, message):
    before = (kb.counts(), kb.claim_aliases().values.tolist())
    with pytest.raises(KBError, match=re.escape(message)) as error:
        kb.add_records(records)
    assert "\n" not in str(error.value)
    assert (kb.counts(), kb.claim_aliases().values.tolist()) == before


def test_update_and_remove_through_an_alias(kb):
    assert kb.update_claim("older-a", aliases=["old-a", "r2"])["aliases"] == ["old-a", "r2"]
    assert kb.claim("r2")["id"] == "a" and kb.resolve_claim("older-a") == "older-a"  # freed
    with pytest.raises(KBError, match="'b' is the id of a claim"):
        kb.update_claim("a", aliases=["b"])
    assert kb.claim("a")["aliases"] == ["old-a", "r2"]
    kb.remove_claim("old-a")
    assert kb.counts()["claims"] == 1 and kb.claim_aliases().empty


def test_sqlite_refuses_an_alias_that_is_a_claim_id(kb):
    """The rule holds even for a write that bypasses the Python layer."""
    for sql in ("INSERT INTO claim_aliases (alias, claim_id) VALUES ('b', 'a')",
                "INSERT INTO claims (id, text) VALUES ('old-a', 'x')"):
        with pytest.raises(sqlite3.IntegrityError):
            kb.db.execute(sql)


@pytest.mark.parametrize("fmt,name", [("json", "out.json"), ("yaml", "out.yaml"), ("csv", "out")])
def test_export_then_import_keeps_the_aliases(kb, tmp_path, fmt, name):
    out = kb.export(tmp_path / name, fmt)
    with KnowledgeBase(tmp_path / "copy.db", seed=False) as copy:
        copy.add_file(out)
        for table in ("claims", "claim_aliases"):
            rows = f'SELECT * FROM "{table}" ORDER BY rowid'
            assert copy.db.execute(rows).fetchall() == kb.db.execute(rows).fetchall()
        assert copy.export_records() == kb.export_records()


def test_what_changes_names_the_claim_a_record_links_by_alias(seeded_copy):
    with KnowledgeBase(seeded_copy) as kb:
        records = {"claim_links": [{"claim_id": "c7-warming-drives-net-losses",
                                    "study_id": "xu2020", "relation": "contradicts"}]}
        rows = g.what_changes(kb, records).to_frame().set_index("claim_id")
    assert "c3.1-persistent-warming-net-loss" in rows.index
    assert "c7-warming-drives-net-losses" not in rows.index


def test_graph_exports_keep_the_aliases(seeded_file, tmp_path):
    with KnowledgeBase(seeded_file, create=False) as kb:
        G = g.build_graph(kb)
    H = g.read_graphml(g.write_graphml(G, tmp_path / "g.graphml"))
    assert g.resolve_claim(H, "c6.3-mrv-requirements") == "c7-policy-must-reflect-reversibility"
    with pytest.raises(KBError, match="no record with id 'c-nothing'"):
        g.resolve_claim(H, "c-nothing")


def test_a_base_from_before_the_aliases_migrates_on_open(seeded_file, tmp_path):
    assert "m004_claim_aliases" in [m.name for m in migrations._migrations]
    old = tmp_path / "old.db"
    shutil.copy(seeded_file, old)
    conn = sqlite3.connect(old)  # what m001-m003 left: no claim_aliases, version 3
    conn.execute("DROP TABLE claim_aliases")
    conn.execute('DROP TRIGGER "claims_not_an_alias"')
    conn.execute("DELETE FROM _sqlite_migrations WHERE name = 'm004_claim_aliases'")
    conn.execute("PRAGMA user_version = 3")
    conn.commit()
    claims = conn.execute("SELECT count(*) FROM claims").fetchone()[0]
    conn.close()
    with KnowledgeBase(old) as kb:
        assert kb.counts()["claims"] == claims and kb.claim_aliases().empty
        kb.update_claim("cA-policy-gaps", aliases=["c6.2-ndcs-rarely-include-soc"])
        assert kb.claim("c6.2-ndcs-rarely-include-soc")["id"] == "cA-policy-gaps"
    conn = sqlite3.connect(old)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == schema_version()
    conn.close()

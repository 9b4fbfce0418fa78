"""The claim–evidence graph (kb/claims/graph.py) on the shipped knowledge base."""

import shutil

import networkx as nx
import pandas as pd
import pytest
from conftest import contradicting_study

from kb import KnowledgeBase
from kb.claims import graph as g
from kb.errors import NotFoundError, RecordError

#: the review's known tensions (claim ids are stable, see kb/seed/README.md)
ESM_TENSION = ("cA-esms-underestimate-vulnerability", "c5.1-esms-biased-toward-excess-loss")
CUE_TENSION = ("c4.1-warming-always-reduces-cue", "c4.1-higher-cue-may-enhance-soc")
TENSIONS = [ESM_TENSION, CUE_TENSION,
            ("c7-models-underestimate-vulnerability", "c5.1-esms-biased-toward-excess-loss"),
            ("c4.2-deep-soils-inert-assumption", "c2.3-deep-soc-not-inert"),
            ("c6.1-soils-large-low-cost-mitigation", "c6.1-scale-permanence-doubtful")]


@pytest.fixture(scope="module")
def seeded_file(tmp_path_factory):
    """The shipped seed loaded once; tests that write get a copy of the file."""
    path = tmp_path_factory.mktemp("graph") / "kb.db"
    KnowledgeBase(path).close()
    return path


@pytest.fixture(scope="module")
def shipped(seeded_file):
    with KnowledgeBase(seeded_file) as store:
        yield store


@pytest.fixture(scope="module")
def G(shipped):
    return g.build_graph(shipped)


@pytest.fixture
def kb(seeded_file, tmp_path):
    shutil.copy(seeded_file, tmp_path / "kb.db")
    with KnowledgeBase(tmp_path / "kb.db") as store:
        yield store


def test_graph_holds_every_record_and_link(shipped, G):
    kinds = nx.get_node_attributes(G, "kind")
    counts = shipped.counts()
    assert sum(k == "study" for k in kinds.values()) == counts["studies"]
    assert sum(k == "claim" for k in kinds.values()) == counts["claims"]
    link_edges = [d for *_, d in G.edges(data=True) if "link_id" in d]
    assert len(link_edges) == counts["claim_links"]
    for node, data in G.nodes(data=True):
        assert node.startswith(data["kind"] + ":")
        assert all(v is not None and not isinstance(v, list) for v in data.values())


@pytest.mark.parametrize("a,b", TENSIONS)
def test_the_known_tensions_are_contested(G, a, b):
    contested = g.contested_claims(G).set_index("id")
    assert {a, b} <= set(contested.index)
    # each names the other, and the claim report says so too
    assert f"claim '{b}' contradicts it" in contested.loc[a, "reasons"]
    assert f"claim '{a}' contradicts it" in contested.loc[b, "reasons"]
    assert b in g.claim_report(G, a).counter_claims


def test_uncontradicted_claims_with_one_sided_evidence_are_not_contested(G):
    contested = set(g.contested_claims(G)["id"])
    for claim_id in g.claim_ids(G):
        evidence = g.claim_evidence(G, claim_id)
        if not g.counter_claims(G, claim_id) and (evidence["relation"] == "supports").all():
            assert claim_id not in contested, claim_id


def test_a_study_reached_through_two_counter_claims_counts_once(G):
    # he2022 supports c5.1 directly and, through the claims c7 and cA that contradict c5.1,
    # counts against it twice more; graded, it sits on neither side
    report = g.claim_report(G, "c5.1-esms-biased-toward-excess-loss")
    rows = report.evidence[report.evidence["study_id"] == "he2022"]
    assert sorted(rows["relation"]) == ["contradicts", "contradicts", "supports"]
    sides = {}
    for study, relation in set(zip(report.evidence["study_id"], report.evidence["relation"], strict=True)):
        sides[study] = sides.get(study, 0) + {"supports": 1, "contradicts": -1}.get(relation, 0)
    assert report.certainty.n_for == sum(v > 0 for v in sides.values())
    assert report.certainty.n_against == sum(v < 0 for v in sides.values())
    assert report.certainty.n_studies == len(sides)


@pytest.mark.parametrize("claim_id,leaning", [("c4.2-deep-soils-inert-assumption", "against"),
                                              ("c2.3-deep-soc-not-inert", "for")])
def test_leaning_follows_the_side_of_the_evidence(G, claim_id, leaning):
    report = g.claim_report(G, claim_id)
    assert report.leaning == leaning
    assert g.claim_states(G, [claim_id]).loc[claim_id, "leaning"] == leaning
    assert {"for": "supports the claim", "against": "goes against the claim"}[leaning] in report.to_markdown()


def test_evidence_rows_carry_system_depth_warming_direction_and_quote(shipped, G):
    report = g.claim_report(G, "c2.3-deep-soc-not-inert")
    studies = shipped.studies().set_index("id")
    assert len(report.evidence)
    for row in report.evidence.to_dict(orient="records"):
        study = studies.loc[row["study_id"]]
        for column in ("biome", "ecosystem", "depth_class", "depth_top_cm", "depth_bottom_cm",
                       "warming_c", "soc_direction", "respiration_direction"):
            assert (pd.isna(row[column]) and pd.isna(study[column])) or row[column] == study[column]
        assert row["quote"]
    hicks = report.evidence.set_index("study_id").loc["hickspries2017"]
    assert f"SOC {hicks['soc_direction']}; Rs {hicks['respiration_direction']}" in report.to_markdown()
    # the shipped studies give no depths in cm; a test value shows how they are printed
    H = G.copy()
    H.nodes["study:hickspries2017"].update(depth_top_cm=0, depth_bottom_cm=90)
    assert "whole_profile, 0–90 cm" in g.claim_report(H, "c2.3-deep-soc-not-inert").to_markdown()


def test_contest_is_computed_from_links(shipped, G):
    contested = g.contested_claims(G).set_index("id")
    links = shipped.links()
    pairs = links[links["other_claim_id"].notna() & (links["relation"] == "contradicts")]
    for a, b in zip(pairs["claim_id"], pairs["other_claim_id"], strict=True):
        assert a in contested.index and b in contested.index
        assert f"claim '{b}' contradicts it" in contested.loc[a, "reasons"]
    direct = links[links["study_id"].notna()].groupby("claim_id")["relation"].agg(set)
    both = {c for c, rels in direct.items() if {"supports", "contradicts"} <= rels}
    assert both <= set(contested.index)
    quiet = set(g.claim_ids(G)) - both - set(pairs["claim_id"]) - set(pairs["other_claim_id"])
    assert not quiet & set(contested.index)


def test_claim_report_lists_the_store_links(shipped, G):
    for claim_id in ESM_TENSION:
        report = g.claim_report(G, claim_id)
        direct = report.evidence[report.evidence["via"].isna()]
        stored = shipped.links(claim_id=claim_id)
        stored = stored[stored["study_id"].notna()]
        assert sorted(zip(direct["study_id"], direct["relation"], strict=True)) == sorted(
            zip(stored["study_id"], stored["relation"], strict=True))
        assert report.certainty is not None and report.contested
        text = report.to_markdown()
        assert claim_id in text and f"Certainty: {report.grade}" in text
        assert report.to_dict()["balance"] == report.balance


def test_counter_claim_support_counts_against(G):
    a, b = ESM_TENSION
    report = g.claim_report(G, a)
    via = report.evidence[report.evidence["via"] == b]
    supporters_of_b = {u.split(":", 1)[1] for u, _, d in G.in_edges(f"claim:{b}", data=True)
                       if d["relation"] == "supports" and G.nodes[u]["kind"] == "study"}
    assert set(via["study_id"]) == supporters_of_b
    assert (via["relation"] == "contradicts").all()


def test_model_only_claim_is_graded_below_one_resting_on_several_experiments(G):
    grades = g.claim_states(G)
    levels = {"no evidence": 0, "Very low": 1, "Low": 2, "Moderate": 3, "High": 4}
    model_only = g.weak_claims(G).query("reason.str.startswith('only model')")["id"]
    experimental = [c for c in g.claim_ids(G)
                    if (g.claim_evidence(G, c).query("relation == 'supports' and via.isna()")
                        ["evidence_kind"] == "experimental").sum() >= 3]
    assert len(model_only) and experimental
    worst_experimental = min(levels[grades.loc[c, "certainty"]] for c in experimental)
    best_model = max(levels[grades.loc[c, "certainty"]] for c in model_only)
    assert best_model < worst_experimental


def test_weak_claims_rest_on_one_study_or_only_models(shipped, G):
    kinds = g.evidence_kinds(shipped)
    studies = shipped.studies().set_index("id")
    links = shipped.links(relation="supports")
    for row in g.weak_claims(G).to_dict(orient="records"):
        support = links[(links["claim_id"] == row["id"]) & links["study_id"].notna()]["study_id"].unique()
        only_models = all(kinds.get(studies.loc[s, "study_type"]) == "model" for s in support)
        assert len(support) == row["n_supports"] and (len(support) == 1 or only_models)


def test_study_claims_and_top_studies_match_the_links(shipped, G):
    top = g.top_studies(G, n=5)
    links = shipped.links()
    evidence = links[links["study_id"].notna()]
    reach = evidence.groupby("study_id")["claim_id"].nunique().sort_values(ascending=False)
    assert top["n_claims"].tolist() == reach.head(5).tolist()
    first = top["study_id"].iloc[0]
    claims = g.study_claims(G, first)
    assert sorted(claims["claim_id"]) == sorted(evidence.loc[evidence["study_id"] == first, "claim_id"])
    with pytest.raises(NotFoundError):
        g.study_claims(G, "no-such-study")
    with pytest.raises(NotFoundError):
        g.claim_report(G, "no-such-claim")


def test_what_changes_reports_a_contradicting_study_and_writes_nothing(kb):
    claim_id = "c3.1-persistent-warming-net-loss"
    before = g.claim_report(kb, claim_id)
    counts = kb.counts()
    report = g.what_changes(kb, contradicting_study(claim_id))
    assert kb.counts() == counts
    row = report.to_frame().set_index("claim_id").loc[claim_id]
    assert row["n_contradicts_before"] == before.balance["n_contradicts"]
    assert row["n_contradicts_after"] == before.balance["n_contradicts"] + 1
    assert row["balance_moved"] and bool(row["contested_after"])
    assert claim_id in report.changed["claim_id"].tolist()
    assert claim_id in report.summary() and "now contested" in report.summary()


def test_add_and_report_adds_and_matches_what_changes(kb):
    records = contradicting_study("c3.1-persistent-warming-net-loss")
    preview = g.what_changes(kb, records).to_frame()
    n_links = kb.counts()["claim_links"]
    counts, report = g.add_and_report(kb, records)
    assert kb.counts()["claim_links"] == n_links + 1
    assert counts["claim_links"] == 1
    assert report.to_frame().equals(preview)
    after = g.claim_report(kb, "c3.1-persistent-warming-net-loss")
    assert after.balance["n_contradicts"] == preview["n_contradicts_after"].iloc[0]


def test_what_changes_refuses_a_bad_batch_and_writes_nothing(kb):
    counts = kb.counts()
    records = contradicting_study("no-such-claim")
    with pytest.raises(RecordError):
        g.what_changes(kb, records)
    assert kb.counts() == counts and not kb.db.conn.in_transaction


def test_a_study_without_links_touches_no_claim(kb):
    records = contradicting_study("c3.1-persistent-warming-net-loss")
    del records["claim_links"]
    assert g.what_changes(kb, records).to_frame().empty


def test_graphml_and_node_link_read_back_equal(G, tmp_path):
    back = g.read_graphml(g.write_graphml(G, tmp_path / "g.graphml"))
    assert nx.utils.graphs_equal(G, back)
    assert nx.utils.graphs_equal(G, g.read_node_link(g.write_node_link(G, tmp_path / "g.json")))


def test_export_drops_none_and_joins_lists(G, tmp_path):
    H = G.copy()
    H.add_node("study:x", kind="study", label=None, mechanisms=["a", "b"])
    back = g.read_graphml(g.write_graphml(H, tmp_path / "h.graphml"))
    assert back.nodes["study:x"] == {"kind": "study", "mechanisms": "a;b"}


def test_dot_names_every_node_and_edge(G, shipped, tmp_path):
    dot = g.to_dot(G)
    assert dot.startswith("digraph") and dot.rstrip().endswith("}")
    assert sum(" -> " in line for line in dot.splitlines()) == G.number_of_edges()
    assert all(f'"{n}" [' in dot for n in G.nodes)
    sub = g.claim_subgraph(G, CUE_TENSION[0])
    assert {f"claim:{c}" for c in CUE_TENSION} <= set(sub.nodes)
    path = g.export_graph(shipped, tmp_path / "g.dot", "dot")
    assert path.read_text(encoding="utf-8") == dot


def test_synthesis_rows_add_direction_only_studies(shipped):
    rows = g.synthesis_rows(shipped, response="soc_stock")
    effects = shipped.effects(response="soc_stock")
    studies = shipped.studies()
    voting = studies[studies["soc_direction"].isin(["increase", "decrease", "no_change"])
                     & ~studies["id"].isin(effects["study_id"])]
    assert len(rows) == len(effects) + len(voting)
    assert rows["evidence_kind"].notna().sum() == rows["study_type"].notna().sum()


@pytest.mark.parametrize("flag,kept", [
    (None, True), ("SRDB Quality_flag Q01 (warmed), Q01 (control)", True),
    ("confounded: CO2", True),  # droppable by the user, but in by default
    ("part of smith2024-a/season", False), ("part of smith2024-a/season (breakdown by month)", False),
])
def test_synthesis_rows_leave_out_breakdowns_of_another_effect(kb_with_study, effect, flag, kept):
    season = {**effect, "id": "smith2024-a/season"}
    month = {**effect, "id": "smith2024-a/month", "mean_t": 4000, "quality_flag": flag}
    kb_with_study.add_records({"effects": [season, month]})
    rows = g.synthesis_rows(kb_with_study, response="soc_stock")
    assert list(rows["id"]) == ["smith2024-a/month", "smith2024-a/season"][0 if kept else 1:]
    assert "smith2024-a/month" in set(kb_with_study.effects()["id"])  # still stored and shown


def test_shipped_monthly_cosore_effects_are_not_synthesised(shipped):
    rows = g.synthesis_rows(shipped, response="soil_respiration_rate")
    stored = shipped.effects(response="soil_respiration_rate")
    months = stored[stored["study_id"].str.startswith("cosore") & ~stored["period"].str.startswith("season")]
    assert len(months) == 12 and not set(months["id"]) & set(rows["id"])
    assert len(rows[rows["id"].notna()]) == len(stored) - len(months)


@pytest.mark.parametrize("links,contested", [
    ([{"claim_id": "cnew", "study_id": "he2022", "relation": "supports"}], False),
    ([{"claim_id": "cnew", "study_id": "he2022", "relation": "supports"},
      {"claim_id": "cnew", "other_claim_id": "c2.3-deep-soc-not-inert", "relation": "contradicts"}], True),
])
def test_a_new_claim_is_reported_as_new(kb, links, contested):
    records = {"claims": [{"id": "cnew", "text": "A made-up test claim.", "section": "test"}],
               "claim_links": links}
    rows = g.what_changes(kb, records).to_frame().set_index("claim_id")
    row = rows.loc["cnew"]
    assert row["new_claim"] and row["n_supports_after"] == 1
    assert bool(row["contest_moved"]) == contested == bool(row["contested_after"])
    line = next(x for x in g.what_changes(kb, records).summary().splitlines() if x.startswith("cnew"))
    # the supporters of a claim it contradicts count against it
    against = len(g.claim_report(kb, "c2.3-deep-soc-not-inert").evidence.query(
        "relation == 'supports'")) if contested else 0
    assert line.startswith(f"cnew (new claim): for/against/qualifying 1/{against}/0")
    assert "no longer" not in line and line.endswith("contested") == contested
    if contested:  # the claim it contradicts moves too, and is not new
        assert not rows.loc["c2.3-deep-soc-not-inert", "new_claim"]

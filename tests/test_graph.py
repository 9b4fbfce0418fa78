"""The claim–evidence graph (kb/claims/graph.py) on the shipped knowledge base."""

import shutil

import networkx as nx
import numpy as np
import pandas as pd
import pytest
from conftest import contradicting_study

from kb import KnowledgeBase
from kb.claims import graph as g
from kb.errors import NotFoundError, RecordError

#: the review's known tensions (claim ids are stable, see kb/seed/README.md; a merged claim's
#: old id is an alias of the claim it was merged into)
ESM_TENSION = ("cA-esms-underestimate-vulnerability", "c5.1-esms-biased-toward-excess-loss")
CUE_TENSION = ("c4.1-warming-always-reduces-cue", "c4.1-higher-cue-may-enhance-soc")
TENSIONS = [ESM_TENSION, CUE_TENSION,
            ("c4.2-deep-soils-inert-assumption", "c2.3-deep-soc-not-inert"),
            ("c6.1-soils-large-low-cost-mitigation", "c6.1-scale-permanence-doubtful"),
            ("c6.1-soils-large-low-cost-mitigation", "c7-sink-role-constrained")]


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
    # moinet2023 contradicts c6.1 directly and, through the claims c6.1-scale-permanence
    # and c7-sink-role that contradict c6.1 and that it supports, twice more: one study against
    report = g.claim_report(G, "c6.1-soils-large-low-cost-mitigation")
    rows = report.evidence[report.evidence["study_id"] == "moinet2023"]
    assert sorted(rows["relation"]) == ["contradicts", "contradicts", "contradicts"]
    assert rows["via"].notna().sum() == 2
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


# -- the whole-graph questions equal claim_report, claim by claim ---------------------------

class FrameStore:
    """The reads build_graph makes, over made-up frames (test records, not data)."""

    KINDS = {"field_experiment": "experimental", "meta_analysis": "synthesis",
             "observational": "observational", "model": "model"}

    def __init__(self, sources, studies, claims, links):
        self._frames = {"sources": sources, "studies": studies, "claims": claims, "links": links}

    def sources(self):
        return self._frames["sources"]

    def studies(self):
        return self._frames["studies"]

    def claims(self):
        return self._frames["claims"]

    def links(self):
        return self._frames["links"]

    def vocabulary(self, name):
        assert name == "study_types"
        return pd.DataFrame({"name": list(self.KINDS), "evidence_kind": list(self.KINDS.values())})


def synthetic_store(seed=11, n_studies=60, n_claims=30):
    """Made-up studies and claims with every shape the contest and weakness rules read:
    studies on both sides of a claim (and one study on both sides itself), counter-claims
    in one and in both directions, a claim with two counter-claims, studies supporting a
    claim and its counter-claim, other claim-to-claim relations, model-only and
    single-study support, qualifying-only support, a study type outside the vocabulary,
    and claims without any link."""
    rng = np.random.default_rng(seed)
    biomes, mechanisms = ["boreal", "arctic", "temperate", None], ["priming", "permafrost_thaw", "soil_moisture"]
    types = [*FrameStore.KINDS, "unlisted_type"]
    ids = [f"s{i}" for i in range(n_studies)]
    studies = pd.DataFrame({
        "id": ids, "source_key": ids, "study_type": rng.choice(types, n_studies, p=[.4, .1, .2, .25, .05]),
        "biome": [biomes[i] for i in rng.integers(0, len(biomes), n_studies)],
        "ecosystem": rng.choice(["forest", "peatland"], n_studies), "depth_class": "topsoil",
        "warming_c": rng.uniform(0.5, 5, n_studies), "soc_direction": "decrease",
        "first_author": "Test", "year": 2000 + rng.integers(0, 25, n_studies),
        "evidence_quote": [f"quote of {i}" for i in ids],
        "mechanisms": [list(rng.choice(mechanisms, rng.integers(0, 3), replace=False)) for _ in ids]})
    studies.loc[[0, 1, 2], "study_type"] = "field_experiment"  # the shared supporters below
    studies.loc[[3, 4], "study_type"] = "model"
    sources = pd.DataFrame({"key": ids, "first_author": "Test", "year": studies["year"],
                            "title": "made-up test source", "doi": None})
    claim_ids = [f"c{i}" for i in range(n_claims)]
    claims = pd.DataFrame({"id": claim_ids, "text": [f"made-up claim {c}" for c in claim_ids],
                           "section": "test",
                           "scope_biome": [biomes[i] for i in rng.integers(0, len(biomes), n_claims)],
                           "scope_mechanism": [None, "priming"] * (n_claims // 2)})
    random_links = [(c, s, r) for c in claim_ids[:22] for s in rng.choice(ids[5:], rng.integers(0, 7))
                    for r in [rng.choice(["supports", "supports", "contradicts", "qualifies"])]]
    fixed = [  # (claim, study or None, other claim or None, relation)
        ("c0", None, "c1", "contradicts"), ("c1", None, "c0", "contradicts"),
        ("c0", None, "c2", "contradicts"), ("c3", None, "c4", "contradicts"),
        ("c5", None, "c6", "refines"), ("c7", None, "c8", "qualifies"), ("c9", None, "c10", "supports"),
        ("c0", "s0", None, "supports"), ("c1", "s0", None, "supports"), ("c2", "s0", None, "supports"),
        ("c3", "s1", None, "supports"), ("c4", "s1", None, "supports"), ("c4", "s2", None, "supports"),
        ("c11", "s2", None, "supports"), ("c11", "s2", None, "contradicts"),
        ("c22", "s3", None, "supports"), ("c22", "s4", None, "supports"),
        ("c23", "s2", None, "supports"), ("c24", "s5", None, "qualifies"),
        ("c25", "s3", None, "supports"), ("c25", "s6", None, "supports")]
    rows = [(c, s, None, r) for c, s, r in random_links] + fixed
    links = pd.DataFrame(rows, columns=["claim_id", "study_id", "other_claim_id", "relation"])
    links = links.drop_duplicates(["claim_id", "study_id", "other_claim_id", "relation"])
    links = links.assign(id=range(len(links)),
                         quote=[f"link quote {i}" if i % 3 else None for i in range(len(links))])
    return FrameStore(sources, studies, claims, links.reset_index(drop=True))


@pytest.fixture(scope="module")
def synthetic_G():
    return g.build_graph(synthetic_store())


@pytest.fixture(scope="module", params=["shipped", "synthetic"])
def any_graph(request, G, synthetic_G):
    return G if request.param == "shipped" else synthetic_G


def all_reports(G):
    """claim_report of every claim: the one-claim-at-a-time path the others must equal."""
    return {c: g.claim_report(G, c) for c in g.claim_ids(G)}


@pytest.fixture(scope="module")
def reports(any_graph):
    return all_reports(any_graph)


def plain(frame):
    """Rows as dicts with every missing value None, so frames compare by value, not dtype."""
    return frame.astype(object).where(frame.notna(), None).to_dict(orient="records")


def test_claim_states_equal_claim_report(any_graph, reports):
    states = g.claim_states(any_graph)
    assert list(states.index) == list(reports)
    for claim_id, report in reports.items():
        expected = {**report.balance, "certainty": report.grade,
                    "contested": bool(report.contested), "leaning": report.leaning,
                    **report.data_balance, "data": g.data_state(report.data)}
        assert states.loc[claim_id].to_dict() == expected, claim_id


def test_claim_states_of_some_claims_equal_those_of_all(any_graph):
    ids = g.claim_ids(any_graph)
    some = [ids[-1], "no-such-claim", *ids[:3], ids[-1]]  # order, an unknown id, a repeat
    expected = g.claim_states(any_graph).loc[[ids[-1], *ids[:3]]]
    pd.testing.assert_frame_equal(g.claim_states(any_graph, some), expected)
    assert g.claim_states(any_graph, []).empty


def test_contested_claims_equal_claim_report(any_graph, reports):
    expected = [{"id": c, "text": r.claim.get("text"), **r.balance,
                 "counter_claims": ", ".join(r.counter_claims), "reasons": "; ".join(r.contested)}
                for c, r in reports.items() if r.contested]
    assert g.contested_claims(any_graph).to_dict(orient="records") == expected


def test_weak_claims_equal_the_rule_on_claim_report(any_graph, reports):
    expected = []
    for claim_id, report in reports.items():
        support = report.evidence.query("relation == 'supports' and via.isna()").drop_duplicates("study_id")
        kinds = support["evidence_kind"]
        if support.empty:
            continue
        if kinds.notna().all() and (kinds == "model").all():
            reason = f"only model evidence ({len(support)} stud{'y' if len(support) == 1 else 'ies'})"
        elif len(support) == 1:
            reason = f"a single supporting study ({support['study_id'].iloc[0]})"
        else:
            continue
        expected.append({"id": claim_id, "text": report.claim.get("text"), "n_supports": len(support),
                         "evidence_kinds": ", ".join(sorted(set(kinds.dropna()))), "reason": reason})
    assert g.weak_claims(any_graph).to_dict(orient="records") == expected


def test_evidence_table_holds_every_claim_evidence_in_order(any_graph, reports):
    table = g.evidence_table(any_graph)
    assert list(dict.fromkeys(table["claim_id"])) == [c for c, r in reports.items() if len(r.evidence)]
    for claim_id, report in reports.items():
        rows = table[table["claim_id"] == claim_id].drop(columns="claim_id")
        assert plain(rows) == plain(report.evidence), claim_id
    some = g.evidence_table(any_graph, list(reports)[:2])
    assert plain(some) == plain(table[table["claim_id"].isin(list(reports)[:2])])
    with pytest.raises(NotFoundError):
        g.evidence_table(any_graph, ["no-such-claim"])


def test_the_synthetic_base_exercises_every_rule(synthetic_G):
    """Guard for the equality tests above: on the made-up base each rule fires, so they
    compare something."""
    reports = all_reports(synthetic_G)
    reasons = " | ".join("; ".join(r.contested) for r in reports.values())
    assert "studies support it and" in reasons or "study supports it and" in reasons
    assert "claim 'c1' contradicts it" in reasons and "claim 'c0' contradicts it" in reasons
    assert "study 's0' supports both it and claim 'c1'" in reasons
    assert reports["c0"].counter_claims == ["c1", "c2"] and reports["c1"].counter_claims == ["c0"]
    assert not reports["c5"].counter_claims and not reports["c9"].counter_claims
    weak = g.weak_claims(synthetic_G).set_index("id")["reason"]
    assert weak["c22"].startswith("only model") and weak["c23"].startswith("a single")
    assert reports["c26"].grade == "no evidence"
    assert reports["c24"].leaning == "neither (qualifying only)"

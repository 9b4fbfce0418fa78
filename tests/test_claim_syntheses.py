"""Claims backed by syntheses: a claim cites a saved synthesis of the data as evidence.

The schema migration, the record format and its refusals, the rules that read a result as
evidence on a claim (sign, data relation, certainty of all bodies, contest) as tables of
cases, and on the shipped base: the claim's two bodies of evidence side by side, the graph
and its exports, and — the point of it — a new effect that falls in a cited synthesis
moves the claim and is reported by ``what_changes``, ``add_and_report`` and ``soc-kb add``.
The effects added here are made-up test records, not data.
"""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path
from types import SimpleNamespace

import networkx as nx
import pandas as pd
import pytest
import yaml
from click.testing import CliRunner

import evidence
from kb import KnowledgeBase, RecordError
from kb.claims import graph as g
from kb.claims import syntheses as synth
from kb.cli import cli
from kb.errors import DependencyError, DuplicateError
from kb.schema import migrations, schema_version

CLAIM = "c2.2-warming-stimulates-respiration"  # cites the three shipped syntheses as supports
QUALIFIED = ("c1-warming-stimulates-losses", "c3.1-warming-raises-respiration-depletes-soc",
             "c3.1-persistent-warming-net-loss")  # cite srdb-rs-annual as qualifies (the last
# through its alias c7-warming-drives-net-losses, the §7 claim merged into it)


@pytest.fixture
def kb(seeded_file, tmp_path):
    shutil.copy(seeded_file, tmp_path / "kb.db")
    with KnowledgeBase(tmp_path / "kb.db") as store:
        yield store


def srdb_effect(yi: float, study: str = "srdb886-1", response: str = "soil_respiration") -> dict:
    """A made-up annual Rs contrast at an SRDB site: it falls in srdb-rs-annual's query."""
    return {"study_id": study, "response": response, "period": "annual", "measure": "ROM",
            "yi": yi, "vi": 0.001, "source_location": "test record, not data"}


# -- schema ------------------------------------------------------------------------------------


def test_the_syntheses_come_in_their_own_migration():
    names = [m.name for m in migrations._migrations]
    assert names[:2] == ["m001_initial", "m002_syntheses"]
    assert schema_version() == len(names)


def test_an_existing_base_migrates_when_opened(seeded_file, tmp_path):
    """A base written before syntheses (m001 only) gains the tables on open, keeps every
    record, and can then take the shipped syntheses, which move its claim."""
    old = tmp_path / "old.db"
    shutil.copy(seeded_file, old)
    conn = sqlite3.connect(old)  # what m001 alone left: no syntheses tables, version 1
    conn.executescript("DROP TABLE synthesis_links; DROP TABLE syntheses; "
                       "DELETE FROM _sqlite_migrations WHERE name = 'm002_syntheses'; "
                       "PRAGMA user_version = 1;")
    conn.close()
    with KnowledgeBase(seeded_file) as shipped:
        counts = shipped.counts()
    with KnowledgeBase(old) as kb:
        assert kb.db.execute("PRAGMA user_version").fetchone()[0] == schema_version()
        assert kb.counts() == {**counts, "syntheses": 0, "synthesis_links": 0}
        assert g.claim_report(kb, CLAIM).data.empty
        kb.add_file(Path(__file__).resolve().parents[1] / "kb" / "seed" / "syntheses.yaml")
        assert kb.counts() == counts
        assert len(g.claim_report(kb, CLAIM).data) == 3


# -- the record and its refusals ---------------------------------------------------------------

GOOD = {"id": "t-rs", "title": "Rs, SRDB", "response": "soil_respiration", "filters": {"origin": ["srdb"]}}

BAD_SYNTHESES = [  # (changes to GOOD, the field named)
    ({"filters": {"biom": ["boreal"]}}, "filters"),
    ({"filters": {"response": "soc_stock"}}, "filters"),
    ({"filters": {"biome": ["mars"]}}, "filters"),
    ({"filters": {"warming": [3, 1]}}, "filters"),
    ({"filters": {"year": "2000:x"}}, "filters"),
    ({"filters": ["srdb"]}, "filters"),
    ({"filters": '{"origin": '}, "filters"),
    ({"group_by": "ecosystem"}, "group_by"),
    ({"group_by": "ecosystem", "group_value": "jungle"}, "group_value"),
    ({"group_by": "warming_bin", "group_value": "5 C"}, "group_value"),
    ({"group_by": "colour", "group_value": "red"}, "group_by"),
    ({"model": "fancy"}, "model"),
    ({"method": "DL"}, "method"),  # the multilevel model is fitted by REML or ML
    ({"response": "soil_resp"}, "response"),
    ({"title": None}, "title"),
]


@pytest.mark.parametrize("changes,field", BAD_SYNTHESES)
def test_a_bad_synthesis_is_one_line_and_writes_nothing(kb, changes, field):
    before = kb.counts()
    record = {k: v for k, v in {**GOOD, **changes}.items() if v is not None}
    with pytest.raises(RecordError) as err:
        kb.add_records({"syntheses": [record]})
    assert err.value.field == field and "\n" not in str(err.value) and "t-rs" in str(err.value)
    assert kb.counts() == before


LINK = {"claim_id": CLAIM, "synthesis_id": "t-rs", "relation": "supports", "expects": "increase",
        "note": "test link"}

BAD_LINKS = [
    ({"expects": None}, "expects", RecordError),
    ({"relation": "refines"}, "relation", RecordError),
    ({"expects": "no_change"}, "expects", RecordError),
    ({"note": None}, "note", RecordError),
    ({"claim_id": "no-such-claim"}, "claim_id", RecordError),
    ({"synthesis_id": "no-such-synthesis"}, "synthesis_id", RecordError),
    ({"synthesis_id": "srdb-rs-annual"}, "synthesis_id", DuplicateError),  # cited already
]


@pytest.mark.parametrize("changes,field,error", BAD_LINKS)
def test_a_bad_synthesis_link_is_one_line_and_writes_nothing(kb, changes, field, error):
    before = kb.counts()
    link = {k: v for k, v in {**LINK, **changes}.items() if v is not None}
    with pytest.raises(error) as err:
        kb.add_records({"syntheses": [GOOD], "synthesis_links": [link]})
    assert err.value.field == field and "\n" not in str(err.value)
    assert kb.counts() == before


def test_a_bad_record_file_is_one_line_from_the_cli(kb, tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump({"syntheses": [{**GOOD, "filters": {"biome": ["mars"]}}]}))
    result = CliRunner().invoke(cli, ["--db", kb.path, "add", str(path)])
    lines = result.output.strip().splitlines()
    assert result.exit_code == 1 and len(lines) == 1 and "filters" in lines[0] and "mars" in lines[0]


def test_filters_are_stored_canonical_and_read_back(kb):
    kb.add_synthesis({**GOOD, "filters": {"origin": "srdb,cosore", "warming": "1:", "include_missing": True}})
    stored = kb.get("syntheses", "t-rs")["filters"]
    assert stored == '{"include_missing": true, "origin": ["srdb", "cosore"], "warming": [1.0, null]}'
    assert kb.synthesis("t-rs")["filters"] == {"include_missing": True, "origin": ["srdb", "cosore"],
                                               "warming": [1.0, None]}
    assert kb.synthesis("srdb-rs-annual")["model"] == "multilevel"


def test_update_and_remove_keep_the_rules(kb):
    kb.add_records({"syntheses": [GOOD], "synthesis_links": [LINK]})
    assert kb.update_synthesis("t-rs", filters={"origin": ["cosore"]})["filters"] == '{"origin": ["cosore"]}'
    with pytest.raises(RecordError, match="filters"):
        kb.update_synthesis("t-rs", filters={"ecosystem": ["jungle"]})
    link_id = int(kb.synthesis_links(synthesis_id="t-rs")["id"].iloc[0])
    with pytest.raises(DuplicateError, match="already has"):
        kb.update_synthesis_link(link_id, synthesis_id="srdb-rs-annual")
    with pytest.raises(DependencyError, match="synthesis 't-rs' is referenced by 1 synthesis_links"):
        kb.remove_synthesis("t-rs")
    assert kb.remove_synthesis("t-rs", cascade=True) == 2
    removed = kb.changes(table="synthesis_links")
    assert (removed["action"] == "delete").sum() == 1
    with pytest.raises(DependencyError, match="synthesis_links"):
        kb.remove_claim(CLAIM)  # a claim cited by data is not orphaned silently


# -- the rules, as tables of cases ---------------------------------------------------------------

SIGNS = [  # (result, sign, basis)
    ({"ci_low": 0.1, "ci_high": 0.3}, "increase", "pooled CI"),
    ({"ci_low": -0.3, "ci_high": -0.1}, "decrease", "pooled CI"),
    ({"ci_low": -0.1, "ci_high": 0.2}, "none", "pooled CI"),
    ({"ci_low": -0.1, "ci_high": 0.2, "n_increase": 30, "n_decrease": 1, "sign_test_pvalue": 1e-8},
     "none", "pooled CI"),  # a pooled CI decides over the votes
    # one site's pooled CI does not outweigh the votes of many sites
    ({"model": "single site", "ci_low": -0.02, "ci_high": 0.38, "n_increase": 18,
      "n_decrease": 6, "sign_test_pvalue": 0.02}, "increase", "sign test"),
    ({"model": "single site", "ci_low": 0.1, "ci_high": 0.3, "n_increase": 1, "n_decrease": 0,
      "sign_test_pvalue": 1.0}, "increase", "pooled CI"),  # the only site that votes
    ({"n_increase": 8, "n_decrease": 2, "sign_test_pvalue": 0.11}, "none", "sign test"),
    ({"n_increase": 20, "n_decrease": 3, "sign_test_pvalue": 3e-4}, "increase", "sign test"),
    ({"n_increase": 2, "n_decrease": 20, "sign_test_pvalue": 1e-4}, "decrease", "sign test"),
    ({}, "none", "no data"),
]


@pytest.mark.parametrize("result,sign,basis", SIGNS)
def test_the_sign_the_data_support(result, sign, basis):
    assert synth.data_sign(result) == (sign, basis)


RELATIONS = [  # (link relation, expects, sign of the data, what the data say of the claim)
    ("supports", "increase", "increase", "supports"),
    ("supports", "increase", "decrease", "contradicts"),
    ("supports", "increase", "none", "inconclusive"),
    ("supports", "decrease", "decrease", "supports"),
    ("contradicts", "decrease", "increase", "contradicts"),
    ("contradicts", "decrease", "decrease", "supports"),  # the data decide, the link is flagged
    ("qualifies", "increase", "decrease", "qualifies"),
    ("qualifies", None, "increase", "qualifies"),
]


@pytest.mark.parametrize("relation,expects,sign,says", RELATIONS)
def test_what_the_data_say_of_the_claim(relation, expects, sign, says):
    assert synth.data_relation(relation, expects, sign) == says


def literature(level: int):
    return SimpleNamespace(level=level, grade=evidence.certainty.GRADES[level - 1])


def data_rows(*rows) -> pd.DataFrame:
    return pd.DataFrame([{"synthesis_id": f"s{i}", "relation": relation, "certainty": certainty,
                          "data_relation": says} for i, (relation, certainty, says) in enumerate(rows)],
                        columns=["synthesis_id", "relation", "certainty", "data_relation"])


CERTAINTY = [  # (literature level and leaning, data (relation, row certainty, data say), grade, leaning)
    ((1, "for"), [], "Very low", "for"),  # no data: the literature's grade, unchanged
    (None, [], "no evidence", "no evidence"),
    ((1, "neither (qualifying only)"), [], "Very low", "neither (qualifying only)"),
    ((1, "for"), [("supports", "Low", "supports")], "Low", "for"),  # the best body
    ((3, "for"), [("supports", "Low", "supports")], "Moderate", "for"),
    ((1, "for"), [("supports", "Low", "contradicts")], "Very low", "against"),  # best −1
    ((3, "for"), [("supports", "Low", "contradicts")], "Low", "for"),
    ((2, "for"), [("supports", "Low", "contradicts")], "Very low", "split"),
    ((2, "for"), [("supports", "Moderate", "inconclusive")], "Moderate", "neither (inconclusive)"),
    ((2, "split"), [("supports", "Low", "inconclusive")], "Low", "split"),
    ((2, "for"), [("qualifies", "High", "qualifies")], "Low", "for"),  # qualifying: shown, not graded
    (None, [("qualifies", "High", "qualifies")], "no evidence", "no evidence"),
    (None, [("supports", None, "supports")], "no evidence", "no evidence"),  # no graded result
    (None, [("supports", "Moderate", "supports"), ("contradicts", "Low", "contradicts")], "Low", "for"),
    (None, [("supports", "High", "supports"), ("supports", "Low", "supports")], "High", "for"),
]


@pytest.mark.parametrize("lit,rows,grade,leans", CERTAINTY)
def test_the_certainty_of_a_claim_from_all_its_bodies(lit, rows, grade, leans):
    certainty = literature(lit[0]) if lit else None
    result = synth.overall(certainty, lit[1] if lit else "no evidence", data_rows(*rows))
    assert (result.grade, result.leaning) == (grade, leans)
    assert result.level == (0 if grade == "no evidence" else evidence.certainty.GRADES.index(grade) + 1)


CONTEST = [  # (direct studies for, against, data (relation, certainty, data say), reason or None)
    (2, 0, [("supports", "Low", "contradicts")],
     "the data of synthesis 's0' go against it while 2 studies support it"),
    (0, 0, [("supports", "Low", "supports"), ("supports", "Low", "contradicts")],
     "the data of synthesis 's1' go against it while synthesis 's0' support it"),
    (1, 0, [("supports", "Low", "supports"), ("supports", "Low", "contradicts")],
     "the data of synthesis 's1' go against it while 1 study and synthesis 's0' support it"),
    (0, 1, [("supports", "Low", "supports")],
     "the data of synthesis 's0' support it while 1 study contradicts it"),
    (0, 0, [("supports", "Low", "contradicts")], None),  # one-sided: not contested
    (2, 0, [("supports", "Low", "supports"), ("qualifies", "Low", "qualifies")], None),
    (2, 1, [("supports", "Low", "inconclusive")], None),  # the studies' contest is theirs
]


@pytest.mark.parametrize("n_for,n_against,rows,reason", CONTEST)
def test_evidence_from_data_contests_a_claim(n_for, n_against, rows, reason):
    assert synth.contest_from_data(n_for, n_against, data_rows(*rows)) == ([reason] if reason else [])


# -- running a synthesis --------------------------------------------------------------------------


def test_a_synthesis_is_its_row_of_evidence_synthesize(shipped):
    rows = g.synthesis_rows(shipped, "soil_respiration", origin="srdb")
    expected = evidence.synthesize(rows.assign(everything="all"), "everything", response="soil_respiration")
    result = synth.run(shipped, shipped.synthesis("srdb-rs-annual"))
    row = expected.iloc[0]
    assert result.estimate == pytest.approx(row["estimate"], rel=1e-12)  # the same call, the same numbers
    assert (result.ci_low, result.ci_high) == pytest.approx((row["ci_low"], row["ci_high"]), rel=1e-12)
    assert result.certainty == row["certainty"] and result.n_rows == len(rows)
    assert result.k_effects == row.get("k_effects", row.get("k"))


def test_a_grouped_synthesis_is_its_group_row(kb):
    kb.add_synthesis({**GOOD, "group_by": "ecosystem", "group_value": "forest"})
    rows = g.synthesis_rows(kb, "soil_respiration", origin="srdb")
    table = evidence.synthesize(rows, "ecosystem", response="soil_respiration").set_index("ecosystem")
    result = synth.run(kb, kb.synthesis("t-rs"))
    assert result.group == "ecosystem=forest"
    assert result.estimate == pytest.approx(table.loc["forest", "estimate"], rel=1e-12)
    assert result.n_studies == table.loc["forest", "n_studies"]


def test_a_synthesis_that_selects_nothing_says_so_and_grades_nothing(kb):
    kb.add_records({"syntheses": [{**GOOD, "filters": {"origin": ["nowhere"]}}],
                    "synthesis_links": [{**LINK, "claim_id": "c2.1-soil-biodiversity-controls-soc"}]})
    report = g.claim_report(kb, "c2.1-soil-biodiversity-controls-soc")
    row = report.data.iloc[0]
    assert row["problem"].startswith("no effects") and row["data_relation"] == "inconclusive"
    assert "no result: no effects" in report.to_markdown()
    literature = report.certainty.grade if report.certainty else "no evidence"
    assert report.grade == literature


# -- the shipped base: a claim's two bodies of evidence ------------------------------------------


def test_the_claim_report_shows_literature_and_data_side_by_side(G):
    report = g.claim_report(G, CLAIM)
    text = report.to_markdown()
    literature, data = text.index("#### Evidence from the literature"), text.index("#### Evidence from data")
    assert text.index(f"**Certainty: {report.grade}**") < literature < data
    assert all(r.text in text for r in report.certainty.reasons)  # the literature's GRADE reasons
    for row in report.data.to_dict(orient="records"):
        assert f"| {row['synthesis_id']} " in text[data:]
        assert row["data_relation"] in {"supports", "contradicts", "inconclusive"}
    as_dict = report.to_dict()
    assert as_dict["certainty"] == report.grade and len(as_dict["data"]) == 3
    assert as_dict["literature_certainty"] == report.certainty.grade
    assert as_dict["data_balance"] == report.data_balance
    # the best of the bodies (none of them against the claim here, so no level is lost)
    graded = report.data[(report.data["relation"] != "qualifies") & report.data["certainty"].notna()]
    assert "contradicts" not in set(graded["data_relation"])
    levels = [report.certainty.level, *(evidence.certainty.GRADES.index(c) + 1 for c in graded["certainty"])]
    assert report.overall.level == max(levels)


def test_a_claim_without_data_is_graded_and_reported_as_before(G):
    report = g.claim_report(G, "c2.3-deep-soc-not-inert")
    assert report.data.empty and report.grade == report.certainty.grade
    assert report.leaning == g.leaning(report.certainty)
    text = report.to_markdown()
    assert "#### Evidence from data" not in text and f"**Certainty: {report.grade}** — the graded" in text


def test_qualifying_data_are_shown_but_do_not_grade(G):
    for claim_id in QUALIFIED:
        report = g.claim_report(G, claim_id)
        assert list(report.data["relation"]) == ["qualifies"]
        literature = report.certainty.grade if report.certainty else "no evidence"
        assert report.grade == literature, claim_id
        assert report.data_balance["n_data_qualifies"] == 1


def test_cli_claim_prints_both_bodies(seeded_file):
    result = CliRunner().invoke(cli, ["--db", str(seeded_file), "claim", CLAIM])
    assert result.exit_code == 0, result.output
    assert "#### Evidence from the literature" in result.output
    assert "#### Evidence from data" in result.output and "srdb-rs-annual" in result.output


def test_the_graph_has_synthesis_nodes_and_exports(G, shipped, tmp_path):
    kinds = nx.get_node_attributes(G, "kind")
    assert sum(k == "synthesis" for k in kinds.values()) == shipped.counts()["syntheses"]
    edges = [(u, v, d) for u, v, d in G.edges(data=True) if "synthesis_link_id" in d]
    assert len(edges) == shipped.counts()["synthesis_links"]
    assert all(kinds[u] == "synthesis" and kinds[v] == "claim" for u, v, _ in edges)
    for node, data in G.nodes(data=True):
        assert all(v is not None and not isinstance(v, list) for v in data.values()), node
    for write, read, name in ((g.write_graphml, g.read_graphml, "g.graphml"),
                              (g.write_node_link, g.read_node_link, "g.json")):
        assert nx.utils.graphs_equal(read(write(G, tmp_path / name)), G)
    dot = g.to_dot(g.claim_subgraph(G, CLAIM))
    assert '"synthesis:srdb-rs-annual" [' in dot and "box3d" in dot
    assert f'"synthesis:srdb-rs-annual" -> "claim:{CLAIM}"' in dot


def test_claim_states_and_overview_carry_the_data(G, shipped):
    from kb.explorer import claim_view, claims_overview

    states = g.claim_states(G)
    row = states.loc[CLAIM]
    report = g.claim_report(G, CLAIM)
    assert row["certainty"] == report.grade and row["data"] == g.data_state(report.data)
    assert {**report.data_balance} == {k: row[k] for k in report.data_balance}
    overview = claims_overview(shipped).set_index("id")
    assert overview.loc[CLAIM, "n_data_supports"] == row["n_data_supports"]
    view = claim_view(shipped, CLAIM)
    assert len(view.data) == 3 and view.literature_grade == report.certainty.grade
    assert "synthesis:srdb-rs-annual" in view.dot


# -- what a new effect changes --------------------------------------------------------------------


def test_an_effect_in_a_cited_synthesis_moves_the_claim_and_is_reported(kb):
    """The scope item's test: a new SRDB annual Rs contrast falls in srdb-rs-annual; the
    claims citing it move (their data before -> after) and the report says so; nothing is
    written by what_changes."""
    before = g.claim_report(kb, CLAIM).data.set_index("synthesis_id").loc["srdb-rs-annual"]
    records = {"effects": [srdb_effect(-0.9)]}
    counts = kb.counts()
    rows = g.what_changes(kb, records).to_frame().set_index("claim_id")
    assert kb.counts() == counts
    assert {CLAIM, *QUALIFIED} <= set(rows.index)
    assert rows.loc[list({CLAIM, *QUALIFIED}), "data_moved"].all()
    assert rows.loc[CLAIM, "through"] == "'srdb-rs-annual'"
    _, report = g.add_and_report(kb, records)
    after = g.claim_report(kb, CLAIM).data.set_index("synthesis_id").loc["srdb-rs-annual"]
    assert after["k_effects"] == before["k_effects"] + 1
    assert after["estimate"] < before["estimate"]  # a strongly negative contrast pulls it down
    line = next(x for x in report.summary().splitlines() if x.startswith(CLAIM))
    assert f"data srdb-rs-annual: {before['result']} -> {after['result']}" in line
    assert report.changed.index.size >= 4


def test_soc_kb_add_prints_the_claims_reached_through_syntheses(kb, tmp_path):
    path = tmp_path / "new.yaml"
    path.write_text(yaml.safe_dump({"effects": [srdb_effect(-0.9)]}), encoding="utf-8")
    kb.close()
    result = CliRunner().invoke(cli, ["--db", kb.path, "add", str(path)])
    assert result.exit_code == 0, result.output
    assert "claims touched:" in result.output
    line = next(x for x in result.output.splitlines() if x.startswith(CLAIM))
    assert "data srdb-rs-annual: " in line and " -> " in line


def test_an_effect_outside_every_cited_query_reaches_no_claim_through_data(kb):
    records = {"effects": [{**srdb_effect(-0.9), "response": "soc_stock"}]}
    assert g.what_changes(kb, records).to_frame().empty


def test_an_effect_that_leaves_the_result_unchanged_is_still_reported(kb):
    """A rows change that does not move the numbers (a direction for a study that already
    votes that way) still reaches the claims through the synthesis it falls in."""
    study = "srdb10066-1"  # votes increase already (17 of its 18 contrasts): one more changes no vote
    assert g.synthesis_rows(kb, "soil_respiration", study_id=study)["direction"].mode()[0] == "increase"
    records = {"effects": [{"study_id": study, "response": "soil_respiration", "direction": "increase",
                            "notes": "test record, not data"}]}
    report = g.what_changes(kb, records)
    rows = report.to_frame().set_index("claim_id")
    assert CLAIM in rows.index and rows.loc[CLAIM, "through"] == "'srdb-rs-annual'"
    assert not rows.loc[CLAIM, "data_moved"]
    line = next(x for x in report.summary().splitlines() if x.startswith(CLAIM))
    assert line.endswith("data unchanged (the records fall in synthesis 'srdb-rs-annual')")


def test_data_against_the_claim_contest_it_and_lower_its_certainty(kb):
    """A synthesis of strongly negative (made-up) contrasts, cited as supporting: its CI lies
    below 0, so its data contradict the claim, which becomes contested, leans by its best
    bodies and loses a level for the disagreement."""
    before = g.claim_report(kb, CLAIM)
    effects = [srdb_effect(-1.0 - 0.05 * i, study=s) for i, s in enumerate(["srdb886-1", "srdb1297-1",
                                                                            "srdb1360-1", "srdb1384-1"])]
    records = {"effects": [{**e, "response": "autotrophic_respiration"} for e in effects],
               "syntheses": [{"id": "t-ra", "title": "made-up Ra", "response": "autotrophic_respiration",
                              "filters": {"origin": ["srdb"]}, "model": "independent", "method": "REML"}],
               "synthesis_links": [{**LINK, "synthesis_id": "t-ra"}]}
    row = g.what_changes(kb, records).to_frame().set_index("claim_id").loc[CLAIM]
    assert row["contested_after"] and not row["contested_before"]
    _, _ = g.add_and_report(kb, records)
    report = g.claim_report(kb, CLAIM)
    made_up = report.data.set_index("synthesis_id").loc["t-ra"]
    assert made_up["sign"] == "decrease" and made_up["data_relation"] == "contradicts"
    assert made_up["agrees"] is not None and not made_up["agrees"]  # the link said supports
    assert any("the data of synthesis 't-ra' go against it" in r for r in report.contested)
    assert any("opposite ways" in r for r in report.overall.reasons)
    graded = report.data[(report.data["relation"] != "qualifies") & report.data["certainty"].notna()]
    levels = [report.certainty.level, *(evidence.certainty.GRADES.index(c) + 1 for c in graded["certainty"])]
    assert report.overall.level == max(1, max(levels) - 1)  # bodies disagree: one level lower
    assert before.overall.level == max(levels[:-1])
    assert "contradicts (data: decrease); the link says supports" in report.to_markdown()

"""``soc-kb synth``, ``claims``, ``claim``, ``export`` of the graph and ``add``'s claim report."""

import io
import json
from html import escape

import networkx as nx
import pandas as pd
import pytest
import yaml
from click.testing import CliRunner
from conftest import contradicting_study

from evidence.synthesis import COLUMNS, evidence_map, synthesize
from kb import KnowledgeBase
from kb.claims import graph as g
from kb.claims.notes import HEADERS
from kb.cli import cli
from kb.cli.synth import claim, claims, synth
from kb.render import latex_escape

COMMANDS = (synth, claims, claim)

@pytest.fixture
def db(seeded_copy):
    return seeded_copy


def run(db, *args, ok=True):
    result = CliRunner().invoke(cli, ["--db", str(db), *args])
    assert (result.exit_code == 0) == ok, result.output
    return result.stdout if ok else result.output  # stdout alone: data formats stay parseable


def test_every_command_has_help():
    for command in COMMANDS:
        assert command.help, f"{command.name} is missing its help"
        assert "Usage" in CliRunner().invoke(cli, [command.name, "--help"]).output


@pytest.mark.parametrize("by,response,model", [("biome", "soil_respiration", "multilevel"),
                                               ("warming", "soil_respiration", "multilevel"),
                                               ("ecosystem,warming", "soil_respiration", "robust"),
                                               ("ecosystem", "soil_respiration", "independent"),
                                               ("study_type", "soc_stock", "multilevel")])
def test_synth_csv_equals_synthesize_on_the_same_rows(db, by, response, model):
    out = run(db, "synth", "--by", by, "--response", response, "--model", model, "--format", "csv")
    shown = pd.read_csv(io.StringIO(out), keep_default_na=False, na_values=[""])
    facets = [{"warming": "warming_bin"}.get(b, b) for b in by.split(",")]
    with KnowledgeBase(db) as kb:
        expected = synthesize(g.synthesis_rows(kb, response=response), facets, model=model)
    assert list(shown.columns) == [*facets, *COLUMNS]
    assert shown[facets].astype(str).values.tolist() == expected[facets].astype(str).values.tolist()
    for column in ("k_effects", "n_sites", "n_sources", "n_studies", "estimate", "ci_low", "tau2",
                   "sigma2_source", "sigma2_site", "sigma2_effect", "i2", "n_assumed_variance",
                   "n_increase", "sign_test_pvalue"):
        pd.testing.assert_series_equal(shown[column].astype(float), expected[column].astype(float),
                                       check_names=False, rtol=1e-9)
    for column in ("model", "certainty", "certainty_reasons", "notes"):
        assert shown[column].fillna("").tolist() == expected[column].fillna("").tolist(), column


def test_synth_states_model_and_variance_assumptions_under_the_numbers(db):
    with KnowledgeBase(db) as kb:
        effects = kb.effects(response="soil_respiration")
    poolable = effects[effects["vi"].astype(float) > 0]
    assert poolable["variance_note"].notna().any()  # the shipped SRDB pairs assume a variance
    for fmt in ("table", "markdown"):
        out = run(db, "synth", "--by", "ecosystem", "--response", "soil_respiration", "--format", fmt)
        bullet = "- " if fmt == "markdown" else ""
        for note, k in poolable["variance_note"].value_counts().items():
            line = next(x for x in out.splitlines() if x.endswith(note))
            assert line.startswith(f"{bullet}Note: {k} effects pooled with an assumed variance")
        assert (f"{bullet}Model: multilevel, REML, z test, 95 % CI — per group rma.mv(yi, vi, "
                "random = ~ 1 | source/site/effect)") in out
        assert f"{bullet}A 'single site' row is that site's own estimate" in out
    result = CliRunner().invoke(cli, ["--db", str(db), "synth", "--by", "ecosystem",
                                      "--response", "soil_respiration", "--format", "csv"])
    assert "Note" not in result.stdout and "Model" not in result.stdout
    assert poolable["variance_note"].iloc[0] in result.stderr and "Model: multilevel" in result.stderr
    assert pd.read_csv(io.StringIO(result.stdout))["k_effects"].sum() == len(poolable)


def test_synth_variance_from_data_is_not_called_assumed(db):
    out = run(db, "synth", "--by", "ecosystem", "--response", "soil_respiration_rate")
    assert "pooled, variance from data — " in out and "assumed variance —" not in out


@pytest.mark.parametrize("model,method,first_line", [
    ("multilevel", "ML", "Model: multilevel, ML, z test"),
    ("independent", "DL", "Model: independent, DL, z test"),
    ("robust", "REML", "Model: robust, REML, t test"),
])
def test_synth_model_option_is_stated_under_the_table(db, model, method, first_line):
    out = run(db, "synth", "--by", "ecosystem", "--response", "soil_respiration",
              "--model", model, "--method", method)
    lines = out.splitlines()
    assert any(line.startswith(first_line) for line in lines)
    # the independent model says how much dependence it ignores, in numbers
    with KnowledgeBase(db) as kb:
        table = synthesize(g.synthesis_rows(kb, response="soil_respiration"), "ecosystem",
                           method=method, model=model)
    shared = table[table["k_effects"] > table["n_sites"]]
    ignored = (f"Dependence ignored: in {len(shared)} group(s) {shared['k_effects'].sum()} effects "
               f"come from {shared['n_sites'].sum()} sites")
    assert (ignored in out) == (model == "independent")


@pytest.mark.parametrize("fmt", ["table", "csv", "markdown", "latex", "html", "json"])
def test_synth_every_format_carries_the_new_columns(db, fmt):
    out = run(db, "synth", "--by", "biome", "--response", "soil_respiration", "--format", fmt)
    header = out if fmt != "json" else " ".join(json.loads(out)[0])
    for column in ("model", "k_effects", "n_sites", "n_sources", "sigma2_source",
                   "n_assumed_variance", "certainty_reasons", "notes"):
        # formats for reading show the header with its unit (kb.claims.notes.HEADERS)
        shown = column if fmt in ("table", "csv", "json") else HEADERS[column].format(m="lnRR")
        assert (latex_escape(shown) if fmt == "latex" else escape(shown)) in header, (fmt, column)


def test_synth_filters_narrow_the_rows(db):
    out = run(db, "synth", "--by", "ecosystem", "--response", "soil_respiration",
              "--biome", "temperate", "--format", "json")
    with KnowledgeBase(db) as kb:
        rows = g.synthesis_rows(kb, response="soil_respiration", biome="temperate")
    assert (rows["biome"] == "temperate").all()
    assert sum(r["k_effects"] for r in json.loads(out)) == (rows["yi"].notna() & rows["vi"].notna()).sum()


@pytest.mark.parametrize("fmt,marker", [("markdown", "|:"), ("latex", "\\begin{tabular}"),
                                        ("html", "<table"), ("table", "certainty")])
def test_synth_formats_and_output_file(db, tmp_path, fmt, marker):
    assert marker in run(db, "synth", "--by", "biome", "--response", "soil_respiration", "--format", fmt)
    target = tmp_path / f"table.{fmt}"
    assert "wrote" in run(db, "synth", "--by", "biome", "--response", "soil_respiration",
                          "--format", fmt, "--output", str(target))
    assert marker in target.read_text(encoding="utf-8")


def test_synth_map_counts_studies(db):
    out = run(db, "synth", "--by", "ecosystem,mechanism", "--response", "soil_respiration",
              "--map", "--format", "csv")
    shown = pd.read_csv(io.StringIO(out)).set_index("ecosystem")
    with KnowledgeBase(db) as kb:
        expected = evidence_map(g.synthesis_rows(kb, response="soil_respiration"), "ecosystem", "mechanism")
    for ecosystem in expected.index:
        for mechanism in expected.columns:
            assert shown.loc[ecosystem, mechanism] == expected.loc[ecosystem, mechanism]
    assert "leaching" in shown.columns  # vocabulary terms without studies are shown as zeros


def test_synth_map_without_response_counts_every_study(db):
    out = run(db, "synth", "--by", "biome,study_type", "--map", "--format", "csv")
    shown = pd.read_csv(io.StringIO(out), keep_default_na=False).set_index("biome")
    with KnowledgeBase(db) as kb:
        studies = kb.studies()
    facets = studies[["biome", "study_type"]].astype(object).fillna("not_reported")
    for (biome, study_type), n in facets.groupby(["biome", "study_type"]).size().items():
        assert shown.loc[biome, study_type] == n
    assert shown.to_numpy().sum() == len(studies)
    assert (shown.loc["arid"] == 0).all()  # a biome of the vocabulary without any study


@pytest.mark.parametrize("args,message", [
    (["--by", "site"], "--by"), (["--by", "biome,ecosystem,mechanism"], "--by"),
    (["--by", "biome", "--map"], "--map needs two facets"),
    (["--by", "biome", "--response", "maoc", "--biome", "tropical"], "no effects"),
    (["--by", "biome", "--response", "soil_respiration", "--method", "DL"],
     "use method='REML' or 'ML', or model='independent' for DL"),
    (["--by", "biome", "--response", "soil_respiration", "--model", "robust", "--test", "z"],
     "leave test unset"),
    (["--by", "biome", "--response", "soil_respiration", "--model", "independent", "--test", "t"],
     "model='independent' takes test 'z' or 'knha'"),
    (["--by", "biome", "--model", "bayes"], "--model"),
])
def test_synth_errors_are_one_line(db, args, message):
    out = run(db, "synth", *args, ok=False)
    assert message in out and "Traceback" not in out


def test_claims_contested_lists_the_computed_contest(db):
    out = json.loads(run(db, "claims", "--contested", "--format", "json"))
    with KnowledgeBase(db) as kb:
        assert [r["id"] for r in out] == g.contested_claims(kb)["id"].tolist()
    assert all(r["reasons"] for r in out)


def test_claims_lists_balance_and_certainty_for_every_claim(db):
    out = json.loads(run(db, "claims", "--format", "json"))
    with KnowledgeBase(db) as kb:
        states = g.claim_states(kb)
        assert len(out) == kb.counts()["claims"]
    for row in out:
        assert row["certainty"] == states.loc[row["id"], "certainty"]
        assert row["n_supports"] == states.loc[row["id"], "n_supports"]


def test_claims_weak_and_by_study(db):
    weak = json.loads(run(db, "claims", "--weak", "--format", "json"))
    assert weak and all(r["reason"] for r in weak)
    out = json.loads(run(db, "claims", "--study", "he2022", "--format", "json"))
    with KnowledgeBase(db) as kb:
        assert len(out) == len(kb.links(study_id="he2022"))
    assert "choose one" in run(db, "claims", "--weak", "--contested", ok=False)


def test_claim_report_shows_certainty_and_reasons(db):
    claim_id = "c4.1-higher-cue-may-enhance-soc"
    text = run(db, "claim", claim_id)
    with KnowledgeBase(db) as kb:
        report = g.claim_report(kb, claim_id)
    assert f"**Certainty: {report.grade}**" in text
    assert all(r.text in text for r in report.certainty.reasons)
    data = json.loads(run(db, "claim", claim_id, "--format", "json"))
    assert data["balance"] == report.balance and data["certainty"] == report.grade
    out = run(db, "claim", "no-such-claim", ok=False)
    assert out.count("\n") == 1 and "no-such-claim" in out


@pytest.mark.parametrize("fmt,reader", [("graphml", g.read_graphml), ("json-graph", g.read_node_link)])
def test_export_graph_formats_read_back_equal(db, tmp_path, fmt, reader):
    path = tmp_path / f"graph.{fmt}"
    assert f"wrote {path}" in run(db, "export", "--format", fmt, "--output", str(path))
    with KnowledgeBase(db) as kb:
        G = g.build_graph(kb)
    assert nx.utils.graphs_equal(reader(path), G)


def test_export_dot_has_every_node(db, tmp_path):
    run(db, "export", "--format", "dot", "--output", str(tmp_path / "g.dot"))
    text = (tmp_path / "g.dot").read_text(encoding="utf-8")
    with KnowledgeBase(db) as kb:
        G = g.build_graph(kb)
    assert text.startswith("digraph") and all(f'"{n}" [' in text for n in G.nodes)
    assert "export-graph" not in cli.commands  # one way to export: soc-kb export


def test_add_reports_the_claims_a_new_study_moves(db, tmp_path):
    claim_id = "c3.1-persistent-warming-net-loss"
    with KnowledgeBase(db) as kb:
        before = g.claim_report(kb, claim_id)
    records = contradicting_study(claim_id)
    path = tmp_path / "new.yaml"
    path.write_text(yaml.safe_dump(records), encoding="utf-8")
    out = run(db, "add", str(path))
    with KnowledgeBase(db) as kb:
        after = g.claim_report(kb, claim_id)
    assert after.balance["n_contradicts"] == before.balance["n_contradicts"] + 1
    line = next(x for x in out.splitlines() if x.startswith(claim_id))
    counts = "/".join(str(before.balance[f"n_{k}"]) for k in ("supports", "contradicts", "qualifies"))
    assert f"{counts} -> " in line and "now contested" in line
    assert (f"certainty {before.grade} -> {after.grade}" in line if before.grade != after.grade
            else f"certainty {after.grade} (unchanged)" in line)


def test_add_without_claim_links_reports_no_claim(db, tmp_path):
    records = contradicting_study("c3.1-persistent-warming-net-loss")
    del records["claim_links"]
    path = tmp_path / "new.yaml"
    path.write_text(yaml.safe_dump(records), encoding="utf-8")
    out = run(db, "add", str(path))
    assert "added 1 sources, 1 studies" in out and "claims touched" not in out


def test_claims_top_studies_and_exclusive_options(db):
    out = json.loads(run(db, "claims", "--top-studies", "4", "--format", "json"))
    with KnowledgeBase(db) as kb:
        links = kb.links()
    reach = links[links["study_id"].notna()].groupby("study_id")["claim_id"].nunique()
    assert [r["n_claims"] for r in out] == sorted(reach, reverse=True)[:4]
    assert all(reach[r["study_id"]] == r["n_claims"] for r in out)
    assert "choose one" in run(db, "claims", "--top-studies", "3", "--study", "he2022", ok=False)
    assert "positive" in run(db, "claims", "--top-studies", "0", ok=False)


# -- --sensitivity and --moderator ----------------------------------------------------------------


def test_synth_sensitivity_is_the_sensitivity_table(db):
    from kb.claims.sensitivity import sensitivity_table
    from kb.cli.synth import SENSITIVITY_COLUMNS

    out = run(db, "synth", "--by", "ecosystem", "--response", "soil_respiration", "--sensitivity",
              "--format", "json")
    shown = pd.DataFrame(json.loads(out))
    with KnowledgeBase(db) as kb:
        expected = sensitivity_table(kb, "soil_respiration", ["ecosystem"], model="multilevel",
                                     method="REML").to_frame()
    assert list(shown.columns) == ["ecosystem", *SENSITIVITY_COLUMNS]
    assert len(shown) == len(expected)
    assert list(shown["scenario"]) == list(expected["scenario"])
    both = shown["estimate"].notna()
    # JSON carries full precision; 1e-12 covers float formatting only
    assert (abs(shown.loc[both, "estimate"] - expected.loc[both, "estimate"].astype(float)) < 1e-12).all()
    assert list(shown["fragile"]) == list(expected["fragile"])


def test_synth_sensitivity_names_the_fragile_groups(db):
    out = CliRunner().invoke(cli, ["--db", str(db), "synth", "--by", "ecosystem", "--response",
                                   "soil_respiration", "--sensitivity"])
    assert out.exit_code == 0 and "Fragile: forest" in out.output and "scenario" in out.output


@pytest.mark.parametrize("moderator,model", [("warming_c", "multilevel"), ("biome", "multilevel"),
                                             ("warming_c", "independent")])
def test_synth_moderator_is_moderator_analysis(db, moderator, model):
    from evidence.moderators import moderator_analysis

    out = run(db, "synth", "--response", "soil_respiration", "--moderator", moderator,
              "--model", model, "--format", "json")
    shown = json.loads(out)[0]
    with KnowledgeBase(db) as kb:
        rows = g.synthesis_rows(kb, response="soil_respiration")
    expected = moderator_analysis(rows, moderator, model=model, method="REML")
    assert shown["k_effects"] == expected.k_effects and shown["n_sites"] == expected.n_sites
    assert abs(shown["qm"] - expected.qm) < 1e-9 * max(1.0, abs(expected.qm))  # same fit, JSON floats
    if expected.kind == "numeric":
        assert abs(shown["percent_per_unit"] - expected.percent_per_unit) < 1e-9


@pytest.mark.parametrize("args,words", [
    (["--sensitivity", "--map"], "choose one of"),
    (["--moderator", "warming_c", "--model", "robust"], "no CR2 for moderators"),
    (["--moderator", "depth_mid_cm"], "have no value"),
])
def test_synth_modes_refuse_in_one_line(db, args, words):
    out = run(db, "synth", "--response", "soil_respiration", *args, ok=False)
    assert words in out and len(out.strip().splitlines()) == 1

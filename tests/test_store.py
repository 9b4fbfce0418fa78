"""The Python API: adding, updating, removing (with audit), and filtered queries."""

from __future__ import annotations

import json
import math

import pytest

from kb import DependencyError, KBError, KnowledgeBase, NotFoundError


def test_new_file_is_created_from_the_seed(tmp_path):
    with KnowledgeBase(tmp_path / "new.db") as kb:
        counts = kb.counts()
    assert counts["sources"] > 41  # the review's checked bibliography plus SRDB/COSORE sources
    assert counts["claims"] > 0 and counts["effects"] > 0


def test_seed_false_gives_an_empty_base(empty_kb):
    assert set(empty_kb.counts().values()) == {0}


def test_existing_file_is_opened_not_reseeded(tmp_path, source):
    path = tmp_path / "kb.db"
    with KnowledgeBase(path, seed=False) as kb:
        kb.add_source(source)
    with KnowledgeBase(path) as kb:
        assert kb.counts()["sources"] == 1


def test_connection_settings(empty_kb):
    pragma = lambda name: empty_kb.db.execute(f"PRAGMA {name}").fetchone()[0]  # noqa: E731
    assert pragma("foreign_keys") == 1
    assert pragma("journal_mode") == "wal"
    assert pragma("busy_timeout") >= 5000


def test_database_refuses_unknown_vocabulary_even_without_python_checks(kb_with_study):
    import sqlite3

    with pytest.raises(sqlite3.IntegrityError, match="FOREIGN KEY"):
        kb_with_study.db.execute("INSERT INTO studies (id, soc_direction, biome) VALUES ('x', 'decrease', 'mars')")


def test_effect_gets_yi_vi_and_an_id(kb_with_study, effect):
    effect_id = kb_with_study.add_effect(effect)
    stored = kb_with_study.get("effects", effect_id)
    assert effect_id == "smith2024-a/e1"
    assert stored["yi"] == pytest.approx(math.log(4100 / 4600))
    expected_vi = 450**2 / (5 * 4100**2) + 500**2 / (5 * 4600**2)
    assert stored["vi"] == pytest.approx(expected_vi)


def test_effect_with_means_only_has_yi_without_vi(kb_with_study, effect):
    effect_id = kb_with_study.add_effect({k: v for k, v in effect.items() if k not in ("sd_t", "sd_c")})
    stored = kb_with_study.get("effects", effect_id)
    assert stored["yi"] == pytest.approx(math.log(4100 / 4600)) and stored["vi"] is None


def test_direction_only_effect(kb_with_study):
    effect_id = kb_with_study.add_effect({"study_id": "smith2024-a", "response": "soc_stock", "direction": "decrease"})
    assert kb_with_study.get("effects", effect_id)["yi"] is None


def test_depth_class_is_derived(kb_with_study):
    assert kb_with_study.study("smith2024-a")["depth_class"] == "topsoil"
    kb_with_study.add_study({"id": "deep", "soc_direction": "decrease", "depth_top_cm": 0, "depth_bottom_cm": 90})
    assert kb_with_study.study("deep")["depth_class"] == "whole_profile"


def test_update_is_validated_and_audited(kb_with_study):
    kb_with_study.update_study("smith2024-a", biome="temperate", mechanisms=["priming", "aggregation"])
    study = kb_with_study.study("smith2024-a")
    assert study["biome"] == "temperate" and study["mechanisms"] == ["aggregation", "priming"]
    change = kb_with_study.changes("studies", "smith2024-a").iloc[-1]
    assert change["action"] == "update"
    assert json.loads(change["before"])["biome"] == "boreal"
    assert json.loads(change["after"])["biome"] == "temperate"


def test_bad_update_changes_nothing(kb_with_study):
    before = kb_with_study.study("smith2024-a")
    with pytest.raises(KBError, match="field 'lat': 100 is invalid"):
        kb_with_study.update_study("smith2024-a", lat=100)
    with pytest.raises(KBError, match="'mars' is not an allowed value of biomes"):
        kb_with_study.update_study("smith2024-a", biome="mars")
    assert kb_with_study.study("smith2024-a") == before
    assert len(kb_with_study.changes("studies")) == 1  # the insert only


def test_update_can_clear_a_field(kb_with_study):
    kb_with_study.update_study("smith2024-a", site=None, warming_c=None)
    assert kb_with_study.study("smith2024-a")["warming_c"] is None


def test_key_cannot_change(kb_with_study):
    with pytest.raises(KBError, match="the key of a stored record cannot change"):
        kb_with_study.update_study("smith2024-a", id="other")


def test_remove_refuses_dependants_unless_cascade(kb_with_study, effect):
    kb_with_study.add_effect(effect)
    kb_with_study.add_claim({"id": "c1", "text": "Warming depletes SOC."})
    kb_with_study.add_link({"claim_id": "c1", "study_id": "smith2024-a", "relation": "supports"})
    with pytest.raises(DependencyError, match="study 'smith2024-a' is referenced by 1 effects, 1 claim_links"):
        kb_with_study.remove_study("smith2024-a")
    assert kb_with_study.counts()["studies"] == 1
    assert kb_with_study.remove_study("smith2024-a", cascade=True) == 3
    assert kb_with_study.counts() == {"sources": 1, "studies": 0, "effects": 0, "claims": 1, "claim_links": 0,
                                      "syntheses": 0, "synthesis_links": 0}
    deletes = kb_with_study.changes()
    assert set(deletes[deletes.action == "delete"].table_name) == {"studies", "effects", "claim_links"}


def test_remove_unknown_record(kb_with_study):
    with pytest.raises(NotFoundError, match="studies: no record with id 'ghost'"):
        kb_with_study.remove_study("ghost")


def test_inserts_are_audited(kb_with_study):
    audit = kb_with_study.changes()
    assert list(audit.action) == ["insert", "insert"]
    assert json.loads(audit.iloc[1]["after"])["id"] == "smith2024-a"


def test_claim_to_claim_links(kb_with_study):
    kb_with_study.add_claims([{"id": "c1", "text": "A"}, {"id": "c2", "text": "Not A"}])
    link_id = kb_with_study.add_link({"claim_id": "c1", "other_claim_id": "c2", "relation": "contradicts"})
    assert kb_with_study.links(claim_id="c1").iloc[0]["id"] == link_id
    with pytest.raises(KBError, match="'c1' is already linked to 'c2' as 'contradicts'"):
        kb_with_study.add_link({"claim_id": "c1", "other_claim_id": "c2", "relation": "contradicts"})


@pytest.fixture
def many(empty_kb):
    empty_kb.add_records({
        "sources": [{"key": "a2001", "title": "Permafrost thaw carbon", "year": 2001},
                    {"key": "b2015", "title": "Cropland management", "year": 2015}],
        "studies": [
            {"id": "s1", "source_key": "a2001", "biome": "arctic", "ecosystem": "tundra", "soc_direction": "decrease",
             "mechanisms": ["permafrost_thaw"], "warming_c": 1.5, "depth_top_cm": 0, "depth_bottom_cm": 10,
             "study_type": "field_experiment"},
            {"id": "s2", "source_key": "b2015", "biome": "temperate", "ecosystem": "cropland", "soc_direction": "increase",
             "mechanisms": ["land_management", "plant_inputs"], "warming_c": 3, "depth_top_cm": 30,
             "depth_bottom_cm": 60, "summary": "Residue retention raised stocks.", "study_type": "observational"},
            {"id": "s3", "source_key": "b2015", "biome": "temperate", "soc_direction": "not_reported",
             "mechanisms": ["mineral_protection"], "study_type": "model"},
        ],
        "effects": [{"study_id": "s1", "response": "soil_respiration", "yi": 0.2, "vi": 0.01, "source_location": "Fig. 1"},
                    {"study_id": "s2", "response": "soc_stock", "direction": "increase", "warming_c": 4.5}],
    })
    return empty_kb


@pytest.mark.parametrize("filters,expected", [
    ({}, ["s1", "s2", "s3"]),
    ({"biome": "temperate"}, ["s2", "s3"]),
    ({"biome": ["arctic", "temperate"]}, ["s1", "s2", "s3"]),
    ({"biome": "arctic,temperate"}, ["s1", "s2", "s3"]),
    ({"ecosystem": "cropland"}, ["s2"]),
    ({"mechanism": ["plant_inputs", "permafrost_thaw"]}, ["s1", "s2"]),
    ({"depth_class": "topsoil"}, ["s1"]),
    ({"depth_range": (20, 100)}, ["s2"]),
    ({"depth_range": (None, 5)}, ["s1"]),
    ({"direction": "increase"}, ["s2"]),
    ({"study_type": ["model", "observational"]}, ["s2", "s3"]),
    ({"warming": (1, 2)}, ["s1"]),
    ({"warming": (2, None)}, ["s2"]),
    ({"year": (2010, 2020)}, ["s2", "s3"]),
    ({"response": "soil_respiration"}, ["s1"]),
    ({"text": "residue"}, ["s2"]),
    ({"text": "permafrost"}, ["s1"]),          # matches the source title
    ({"text": 'carbon" OR'}, []),               # user text is quoted, never FTS syntax
    ({"source_key": "b2015", "biome": "temperate", "mechanism": "mineral_protection"}, ["s3"]),
])
def test_study_filters(many, filters, expected):
    assert list(many.studies(**filters)["id"]) == expected


def test_effects_carry_their_study_and_fall_back_to_its_warming(many):
    effects = many.effects()
    assert list(effects["study_id"]) == ["s1", "s2"]
    assert list(effects["warming_c"]) == [1.5, 4.5]
    assert list(many.effects(warming=(4, 5))["study_id"]) == ["s2"]
    assert list(many.effects(biome="arctic")["biome"]) == ["arctic"]
    assert list(many.effects(response="soc_stock")["id"]) == ["s2/e1"]


@pytest.mark.parametrize("filters,message", [
    ({"biome": "mars"}, "biome: 'mars' is not an allowed value of biomes"),
    ({"mechanism": "thaw"}, "mechanism: 'thaw' is not an allowed value of mechanisms; did you mean 'permafrost_thaw'?"),
    ({"warming": (3, 1)}, "warming: range 3:1 is empty"),
    ({"colour": "red"}, "unknown filter 'colour'"),
])
def test_bad_filters(many, filters, message):
    with pytest.raises(KBError, match=message.replace("(", r"\(").replace(")", r"\)").replace("?", r"\?")):
        many.studies(**filters)


def test_claims_and_sources_queries(many):
    many.add_claims([{"id": "c1", "text": "Thaw releases carbon", "scope_mechanism": "permafrost_thaw"},
                     {"id": "c2", "text": "Management builds SOC", "scope_biome": "temperate"}])
    many.add_links([{"claim_id": "c1", "study_id": "s1", "relation": "supports"},
                    {"claim_id": "c1", "study_id": "s3", "relation": "contradicts"}])
    claims = many.claims(mechanism="permafrost_thaw")
    assert list(claims["id"]) == ["c1"]
    assert (claims.iloc[0]["n_supports"], claims.iloc[0]["n_contradicts"]) == (1, 1)
    assert list(many.claims(text="management")["id"]) == ["c2"]
    assert list(many.claims(study_id="s3")["id"]) == ["c1"]
    assert list(many.sources(year=(2010, None))["key"]) == ["b2015"]
    assert list(many.sources(text="permafrost")["key"]) == ["a2001"]


def test_citation_is_formatted(seeded_kb):
    text = seeded_kb.citation("crowther2016")
    assert text.startswith("T. W. Crowther, K. E. O. Todd-Brown")
    assert "Quantifying global soil carbon losses in response to warming" in text
    assert "doi:10.1038/nature20150" in text


def test_full_text_index_follows_adds_updates_and_removals(kb_with_study):
    kb = kb_with_study
    kb.add_studies([{"id": f"bulk{i}", "soc_direction": "decrease", "summary": f"thermokarst lake {i}"}
                    for i in range(3)])
    assert list(kb.studies(text="thermokarst")["id"]) == ["bulk0", "bulk1", "bulk2"]
    kb.update_study("bulk1", summary="a peat fire")
    assert list(kb.studies(text="thermokarst")["id"]) == ["bulk0", "bulk2"]
    assert list(kb.studies(text="peat fire")["id"]) == ["bulk1"]
    kb.remove_study("bulk0")
    assert list(kb.studies(text="thermokarst")["id"]) == ["bulk2"]
    assert kb.db.execute("INSERT INTO studies_fts(studies_fts) VALUES('integrity-check')") is not None

"""Vocabularies: stored as tables, synonyms map free text, SRDB's labels are covered."""

from __future__ import annotations

import csv

import pytest

from kb.vocab import FIELD_VOCABULARY, VOCABULARIES, lookup, names, nearest, treatment_factors


def test_every_vocabulary_is_a_table_with_its_terms(empty_kb):
    for vocabulary in VOCABULARIES:
        assert list(empty_kb.vocabulary(vocabulary)["name"]) == names(vocabulary)


def test_every_field_vocabulary_exists():
    assert set(FIELD_VOCABULARY.values()) <= set(VOCABULARIES)


def test_synonyms_do_not_collide():
    for vocabulary in VOCABULARIES:
        if vocabulary == "treatments":
            continue  # regular expressions, not names
        for term in VOCABULARIES[vocabulary]:
            for word in term.synonyms:
                assert lookup(vocabulary, word) == term.name, (vocabulary, word)


@pytest.mark.parametrize("vocabulary,text,expected", [
    ("biomes", "Temperate ", "temperate"),
    ("biomes", "Sub-tropical", "subtropical"),
    ("biomes", "Semi-Arid", "arid"),
    ("biomes", "high-latitude", "high_latitude"),
    ("ecosystems", "Croplands", "cropland"),
    ("ecosystems", "alpine shrubland", "shrubland"),
    ("ecosystems", "permafrost regions", "permafrost"),
    ("ecosystems", "Agriculture", "cropland"),
    ("mechanisms", "MAOC", "mineral_protection"),
    ("mechanisms", "carbon use efficiency", "carbon_use_efficiency"),
    ("study_types", "meta-analysis", "meta_analysis"),
    ("warming_methods", "open-top chambers", "open_top_chamber"),
    ("warming_methods", "buried heating cables", "heating_cable"),
    ("responses", "Rh_annual", "heterotrophic_respiration"),
    ("biomes", "Mars", None),
])
def test_lookup(vocabulary, text, expected):
    assert lookup(vocabulary, text) == expected


def test_nearest_suggests_a_spelling():
    assert nearest("ecosystems", "grasland") == "grassland"
    assert nearest("mechanisms", "xyzzy") is None


@pytest.mark.parametrize("label,factors", [
    ("Warmed", {"warming"}),
    ("Warming", {"warming"}),
    ("CO2, heated", {"co2", "warming"}),
    ("Warmed, clipped", {"warming", "clipping"}),
    ("Drought, warmed", {"drought", "warming"}),
    ("Heat Wave", {"heat_wave"}),
    ("Open areas, OA", {"other"}),
    ("Organic farm", {"other"}),
    ("None", {"control"}),
    ("Weed control", {"other"}),           # a treatment, not an untreated control
    ("Vegetation control", {"other"}),
    ("Control", {"control"}),
    ("Fertilized, Ambient [CO2] and ambient temperature (aCO2aT)", {"nitrogen", "co2"}),
    ("T1WL: increased temperature, low irrigation", {"warming", "irrigation"}),
    ("Precipitation amount change, warmed", {"precipitation_change", "warming"}),
])
def test_treatment_factors(label, factors):
    assert treatment_factors(label) == factors


def _srdb_column(shared_data, column):
    with open(shared_data / "srdb" / "srdb-data.csv", encoding="utf-8", newline="") as handle:
        return [row[column] for row in csv.DictReader(handle)]


@pytest.mark.parametrize("column,vocabulary", [("Biome", "biomes"), ("Ecosystem_type", "ecosystems")])
def test_srdb_biomes_and_ecosystems_map(shared_data, column, vocabulary):
    # 'Grassland' in SRDB's Biome column is an ecosystem, not a climate zone: left unmapped
    unmapped = {v for v in _srdb_column(shared_data, column) if v.strip() and lookup(vocabulary, v) is None}
    assert unmapped == ({"Grassland"} if column == "Biome" else set())


def test_srdb_manipulations_are_classified(shared_data):
    labels = set(_srdb_column(shared_data, "Manipulation"))
    warming = {label for label in labels if "warming" in treatment_factors(label)}
    assert not {"Heat Wave", "None", "Open areas, OA"} & warming
    for label in labels:
        text = label.lower()
        if ("warm" in text and "open" not in text) or "heated" in text:
            assert label in warming, label
    classified = [label for label in labels if treatment_factors(label) != {"other"}]
    assert len(classified) / len(labels) > 0.8   # the long tail of one-off labels stays "other"

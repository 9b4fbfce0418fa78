"""Range filters say what they leave out for lack of a value, and can keep it; a sampled
depth is answered from a study's layer interval or, without one, from its depth class."""

from __future__ import annotations

import shutil

import pytest
from click.testing import CliRunner

from kb import KnowledgeBase
from kb.cli import cli

# range filter -> a range wider than every stored value (so only missing values fail it)
EVERYTHING = {"warming": (-100.0, 100.0), "year": (1000, 3000), "duration": (0.0, 1000.0),
              "depth_range": (-1e6, 1e6)}


@pytest.fixture(scope="module")
def seeded(tmp_path_factory):
    path = tmp_path_factory.mktemp("missing") / "kb.db"
    with KnowledgeBase(path) as kb:
        kb.add_records({"studies": [
            # depth stated only as an interval, only as a class, or not at all
            {"id": "layer-20-40", "source_key": "crowther2016", "soc_direction": "decrease",
             "depth_top_cm": 20, "depth_bottom_cm": 40},
            {"id": "class-deep", "source_key": "crowther2016", "soc_direction": "decrease",
             "depth_class": "deep_subsoil"},
            {"id": "class-top", "source_key": "crowther2016", "soc_direction": "decrease",
             "depth_class": "topsoil"},
            {"id": "class-organic", "source_key": "crowther2016", "soc_direction": "decrease",
             "depth_class": "organic_layer"}]})
    return path


@pytest.fixture
def kb(seeded, tmp_path):
    shutil.copyfile(seeded, tmp_path / "kb.db")
    with KnowledgeBase(tmp_path / "kb.db") as base:
        yield base


@pytest.mark.parametrize("name", list(EVERYTHING))
def test_a_range_leaves_out_exactly_the_studies_without_a_value(kb, name):
    everything = kb.count_studies()
    kept = kb.count_studies(**{name: EVERYTHING[name]})
    missing = kb.missing_values(**{name: EVERYTHING[name]})[name]
    assert 0 < missing < everything  # the shipped base has studies with and without each value
    assert kept + missing == everything
    assert kb.count_studies(**{name: EVERYTHING[name]}, include_missing=True) == everything


def test_missing_counts_respect_the_other_filters(kb):
    both = {"warming": (0.5, None), "biome": "temperate"}
    missing = kb.missing_values(**both)["warming"]
    temperate = kb.studies(biome="temperate")
    assert missing == temperate["warming_c"].isna().sum()
    assert kb.missing_values(biome="temperate") == {}  # no range, nothing left out


@pytest.mark.parametrize("bounds,expected,not_expected", [
    ((30, None), {"layer-20-40", "class-deep", "hickspries2017", "luo2019"}, {"class-top", "class-organic"}),
    ((0, 25), {"layer-20-40", "class-top"}, {"class-deep", "class-organic"}),
    ((150, 300), {"class-deep", "hickspries2017"}, {"layer-20-40", "class-top", "luo2019"}),
    ((-10, -1), {"class-organic"}, {"class-top", "layer-20-40"}),
])
def test_depth_comes_from_the_layer_or_else_the_depth_class(kb, bounds, expected, not_expected):
    found = set(kb.studies(depth_range=bounds)["id"])
    assert expected <= found and not (not_expected & found)


def test_a_study_with_no_depth_at_all_is_counted_as_missing(kb):
    stated = kb.studies()
    no_depth = stated[stated["depth_top_cm"].isna() & stated["depth_class"].isin([None, "not_reported"])]
    assert kb.missing_values(depth_range=(0, 300))["depth_range"] == len(no_depth)


@pytest.mark.parametrize("args,words", [
    (["--warming", "0.5:"], "--warming leaves out"),
    (["--depth-range", "30:300"], "--depth-range leaves out"),
    (["--duration", "1:"], "--duration leaves out"),
    (["--year", "2010:"], "--year leaves out"),
])
def test_the_cli_says_what_a_range_leaves_out(kb, args, words):
    result = CliRunner().invoke(cli, ["--db", kb.path, "query", *args, "--format", "csv"])
    assert result.exit_code == 0
    missing = kb.missing_values(**_parsed(args))
    name = next(iter(missing))
    assert missing[name] > 0  # the shipped base has studies without each value
    assert f"{words} {missing[name]} stud" in result.stderr
    kept = CliRunner().invoke(cli, ["--db", kb.path, "query", *args, "--include-missing",
                                    "--format", "csv"])
    assert "leaves out" not in kept.stderr
    assert len(kept.stdout.splitlines()) == len(result.stdout.splitlines()) + missing[name]


def _parsed(args: list[str]) -> dict:
    from kb.query import parse_range

    return {args[0][2:].replace("-", "_"): parse_range(args[1])}


@pytest.mark.parametrize("bounds", ["nan:1", "1:inf", "3:1", "x:"])
def test_a_bad_range_is_one_line(kb, bounds):
    result = CliRunner().invoke(cli, ["--db", kb.path, "query", "--warming", bounds])
    assert result.exit_code == 1 and len(result.output.strip().splitlines()) == 1

"""The soc-kb command line: every command works, is documented, and fails with one line."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from click.testing import CliRunner
from conftest import ROOT

from kb import KnowledgeBase
from kb.cli import cli


@pytest.fixture
def run(tmp_path):
    runner = CliRunner()
    db = str(tmp_path / "cli.db")

    def invoke(*args, env=None):
        return runner.invoke(cli, ["--db", db, *args], env=env, catch_exceptions=False)
    invoke.db = db
    return invoke


@pytest.fixture
def template_file(tmp_path):
    path = tmp_path / "new.yaml"
    path.write_text(CliRunner().invoke(cli, ["template"]).output, encoding="utf-8")
    return path


def test_init_then_add_then_query(run, template_file):
    assert run("init").output.startswith("created ")
    assert run("add", str(template_file)).output == (
        "added 1 sources, 1 studies, 1 effects, 1 claims, 1 claim_links, 1 syntheses, 1 synthesis_links\n"
        "claims touched:\n"
        "smith2024-c1 (new claim): for/against/qualifying 1/0/0, certainty Low\n")
    result = run("query", "--biome", "boreal", "--mechanism", "mineral_protection,priming", "--format", "json")
    rows = json.loads(result.output)
    assert [r["id"] for r in rows] == ["smith2024-boreal"]
    assert rows[0]["mechanisms"] == "microbial_decomposition, mineral_protection"


def test_init_refuses_an_existing_file(run):
    run("init", "--empty")
    result = run("init")
    assert result.exit_code == 1 and "already exists" in result.output


@pytest.mark.parametrize("fmt,check", [
    ("table", lambda out: out.splitlines()[0].split()[:3] == ["id", "first_author", "year"]),
    ("csv", lambda out: out.startswith("id,source_key,study_type")),
    ("markdown", lambda out: out.startswith("| id ")),
    ("json", lambda out: json.loads(out)[0]["warming_c"] == 4.0),
])
def test_query_formats(run, template_file, fmt, check):
    run("init", "--empty")
    run("add", str(template_file))
    assert check(run("query", "--warming", "3:5", "--format", fmt).output)


@pytest.mark.parametrize("what,args,expected", [
    ("effects", ["--response", "soc_stock"], "smith2024-boreal/e1"),
    ("claims", ["--biome", "boreal"], "smith2024-c1"),
    ("sources", ["--year", "2024:"], "smith2024"),
])
def test_query_other_tables(run, template_file, what, args, expected):
    run("init", "--empty")
    run("add", str(template_file))
    assert expected in run("query", "--table", what, *args, "--format", "csv").output


@pytest.mark.parametrize("args,message", [
    (["query", "--biome", "borel"], "Error: biome: 'borel' is not an allowed value of biomes; did you mean 'boreal'?"),
    (["query", "--warming", "hot"], "Error: --warming: 'hot' is not a range; write LOW:HIGH"),
    (["query", "--table", "claims", "--warming", "1:2"], "Error: --warming does not apply to claims"),
    (["query", "--columns", "id,colour"], "Error: --columns: unknown column 'colour'"),
    (["remove", "study", "ghost"], "Error: studies: no record with id 'ghost'"),
])
def test_errors_are_one_line_without_traceback(run, args, message):
    run("init", "--empty")
    result = run(*args)
    assert result.exit_code == 1
    assert result.output.strip() == result.output.strip().splitlines()[0]
    assert result.output.startswith(message)


def test_add_error_names_file_record_field(run, tmp_path):
    run("init", "--empty")
    bad = tmp_path / "bad.yaml"
    bad.write_text("studies:\n  - id: x1\n    soc_direction: decrease\n    lat: 123\n", encoding="utf-8")
    result = run("add", str(bad))
    assert result.exit_code == 1
    assert result.output == f"Error: {bad}: studies[0] 'x1': field 'lat': 123 is invalid: must be less than or equal to 90\n"


def test_database_from_environment(tmp_path):
    db = tmp_path / "env.db"
    result = CliRunner().invoke(cli, ["init", "--empty"], env={"SOC_KB_DB": str(db)})
    assert result.exit_code == 0 and db.exists()


def test_import_bib_and_export_bib(run, tmp_path):
    run("init", "--empty")
    bib = tmp_path / "refs.bib"
    bib.write_text("@article{a2020, title={A title}, author={Doe, Jane}, year={2020}}\n", encoding="utf-8")
    assert run("import-bib", str(bib)).output == f"added 1 sources from {bib}\n"
    out = tmp_path / "out.bib"
    run("export", "--format", "bib", "--output", str(out))
    assert out.read_text(encoding="utf-8") == bib.read_text(encoding="utf-8")


def test_remove_with_cascade(run, template_file):
    run("init", "--empty")
    run("add", str(template_file))
    refused = run("remove", "study", "smith2024-boreal")
    assert refused.exit_code == 1 and "pass cascade=True (--cascade)" in refused.output
    assert run("remove", "study", "smith2024-boreal", "--cascade").output == "removed 3 records\n"


@pytest.mark.parametrize("change,field,expected", [
    ("warming_c=2.5", "warming_c", 2.5),
    ("site=Toolik Lake", "site", "Toolik Lake"),
    ("mechanisms=priming;mineral_protection", "mechanisms", ["mineral_protection", "priming"]),
    ("start_year=1991", "start_year", 1991),
    ("site=", "site", None),
])
def test_update_changes_one_field_and_is_audited(run, template_file, change, field, expected):
    from kb import KnowledgeBase

    run("init", "--empty")
    run("add", str(template_file))
    result = run("update", "study", "smith2024-boreal", change)
    assert result.exit_code == 0 and result.output.startswith(f"{field}: ")
    db = run.db
    with KnowledgeBase(db) as kb:
        study = kb.get("studies", "smith2024-boreal")
        value = sorted(study[field]) if field == "mechanisms" else study[field]
        assert value == expected
        assert kb.changes()["action"].tolist()[-1] == "update"


@pytest.mark.parametrize("change,message", [
    ("warming_c=abc", "update: warming_c='abc' is not a number"),
    ("start_year=1991.5", "update: start_year='1991.5' is not an integer"),
    ("colour=red", "update: 'colour=red' must be FIELD=VALUE with FIELD one of "),
    ("biome=borel", "field 'biome': 'borel' is not an allowed value of biomes; did you mean 'boreal'?"),
    ("lat=95", "field 'lat'"),
    ("id=other", "the key of a stored record cannot change"),
])
def test_update_bad_value_changes_nothing(run, template_file, change, message):
    from kb import KnowledgeBase

    run("init", "--empty")
    run("add", str(template_file))
    with KnowledgeBase(run.db) as kb:
        before = kb.get("studies", "smith2024-boreal")
    result = run("update", "study", "smith2024-boreal", "site=changed", change)
    assert result.exit_code == 1 and message in result.output
    assert len(result.output.strip().splitlines()) == 1
    with KnowledgeBase(run.db) as kb:
        assert kb.get("studies", "smith2024-boreal") == before


def test_template_schema(run):
    schema = json.loads(run("template", "--format", "schema").output)
    lat = schema["studies"]["properties"]["lat"]["anyOf"][0]
    assert (lat["minimum"], lat["maximum"]) == (-90, 90)


def test_every_command_has_help_and_is_documented():
    reference = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    names = cli.list_commands(None)
    assert {"init", "query", "synth", "claim", "import-srdb"} <= set(names)
    for name in names:
        command = cli.get_command(None, name)
        assert command.help, f"soc-kb {name} has no help"
        assert f"soc-kb {name}" in reference, f"soc-kb {name} is not documented in docs/cli.md"


def test_large_import_shows_progress(tmp_path):
    records = tmp_path / "many.json"
    studies = [{"id": f"p{i}", "soc_direction": "not_reported"} for i in range(3000)]
    records.write_text(json.dumps({"studies": studies}), encoding="utf-8")
    db = tmp_path / "p.db"
    subprocess.run([sys.executable, "-m", "kb", "--db", str(db), "init", "--empty"], check=True)
    done = subprocess.run([sys.executable, "-m", "kb", "--db", str(db), "add", str(records)],
                          capture_output=True, text=True, check=True)
    assert "adding records" in done.stderr and done.stdout == "added 3000 studies\n"


def test_update_takes_a_claims_aliases_as_a_list(seeded_copy):
    claim = "cA-soils-store-more-than-air-and-plants"
    result = CliRunner().invoke(cli, ["--db", str(seeded_copy), "update", "claim", claim,
                                      "aliases=c1-soils-2-3x-atmosphere;cA-old-wording"])
    assert result.exit_code == 0, result.output
    with KnowledgeBase(seeded_copy) as kb:
        assert kb.get("claims", "cA-old-wording")["id"] == claim
        assert kb.get("claims", "c1-soils-2-3x-atmosphere")["id"] == claim

"""The Streamlit explorer, headless (``streamlit.testing.v1.AppTest``): every page, the add
flow with good and bad input, filters that change the pooled effect, markup shown as text."""

from __future__ import annotations

import json
import math
import re
import shutil
import tempfile
from pathlib import Path

import pandas as pd
import pytest
import streamlit as st
from app_examples import example_records
from streamlit.testing.v1 import AppTest

from kb import KnowledgeBase, explorer

APP = str(Path(__file__).resolve().parents[1] / "app.py")
PAGES = ["explore", "study", "add_study", "claims", "synthesis", "evidence_map", "bibliography"]


@pytest.fixture(autouse=True)
def clear_streamlit_caches():
    # st.cache_data outlives an AppTest (streamlit#9139): clear it so each test sees its own DB
    st.cache_data.clear()
    st.cache_resource.clear()
    yield
    st.cache_data.clear()


@pytest.fixture(scope="session")
def built_db(tmp_path_factory) -> Path:
    """The shipped seed plus synthetic SOC-stock effects, built once (copied per test)."""
    path = tmp_path_factory.mktemp("app") / "built.db"
    with KnowledgeBase(path) as kb:
        kb.add_records(example_records())
    return path


@pytest.fixture
def app_db(built_db, tmp_path, monkeypatch) -> Path:
    """A fresh copy of ``built_db`` at SOC_KB_DB."""
    path = tmp_path / "app.db"
    shutil.copyfile(built_db, path)  # closed, so the WAL is checkpointed into the file
    monkeypatch.setenv("SOC_KB_DB", str(path))
    return path


def run(page: str = "explore") -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60).run()
    if page != "explore":
        at.switch_page(f"pages/{page}.py").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def n_studies(path) -> str:
    with KnowledgeBase(path) as kb:
        return str(kb.counts()["studies"])


def shown(element) -> str:
    """What a markdown-rendered element shows (the pages escape markup in messages)."""
    return re.sub(r"\\(.)", r"\1", element.value).replace("\u2060", "")  # escapes and word joiners


def metric(at: AppTest, label: str) -> str:
    return next(m.value for m in at.metric if m.label == label)


def k_pooled(at: AppTest) -> int:
    """Effects in Explore's pooled effect (the metric reads "k · sites · sources", or —)."""
    shown = metric(at, "Effects · sites · sources")
    return 0 if shown == "—" else int(shown.split("·")[0].replace(",", ""))


@pytest.mark.parametrize("page", PAGES)
def test_every_page_renders(app_db, page):
    at = run(page)
    assert at.title, f"{page} shows no title"
    assert not at.error, [e.value for e in at.error]


@pytest.mark.parametrize("page", PAGES)
def test_every_page_copes_with_an_empty_base(tmp_path, monkeypatch, page):
    path = tmp_path / "empty.db"
    KnowledgeBase(path, seed=False).close()
    monkeypatch.setenv("SOC_KB_DB", str(path))
    at = run(page)
    assert at.title and not at.error, [e.value for e in at.error]


def test_default_database_is_created_from_the_seed(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SOC_KB_DB", raising=False)
    at = run()
    assert (tmp_path / "soc-kb.db").exists()
    assert metric(at, "Studies") == n_studies(tmp_path / "soc-kb.db")


def test_explore_pools_the_selection(app_db):
    at = run()
    assert metric(at, "Studies") == n_studies(app_db)
    at.selectbox(key="response").select("soc_stock").run()
    assert k_pooled(at) == 10
    assert metric(at, "Pooled lnRR").startswith(("+", "-"))
    assert "%" in metric(at, "I²")
    assert any("rest on an assumption" in c.value for c in at.caption)
    assert at.get("vega_lite_chart"), "no site map"


def _poolable(effects):
    flags = effects["quality_flag"].fillna("")
    return effects[(effects["vi"].astype(float) > 0) & ~flags.str.startswith("part of ")]


def test_explore_defaults_to_the_response_with_most_effects_that_have_a_variance(app_db):
    with KnowledgeBase(app_db) as kb:
        effects = kb.effects()
    by_count = effects["response"].value_counts()
    by_variance = _poolable(effects)["response"].value_counts()
    # on the shipped base the two rules disagree: most effects (SRDB growing-season rates,
    # no variance) vs most effects a pooled effect can use (annual soil respiration)
    assert by_count.idxmax() == "soil_respiration_rate" and by_variance.idxmax() == "soil_respiration"
    assert run().selectbox(key="response").value == "soil_respiration"
    assert run("synthesis").selectbox(key="syn_response").value == "soil_respiration"


def test_explore_does_not_pool_breakdowns_of_another_effect(app_db):
    with KnowledgeBase(app_db) as kb:
        rates = kb.effects(response="soil_respiration_rate")
    parts = rates["quality_flag"].fillna("").str.startswith("part of ")
    seasons = rates[rates["period"].fillna("").str.startswith("season")]
    assert parts.sum() == 12 and len(_poolable(rates)) == len(seasons) == 2
    at = run()
    at.selectbox(key="response").select("soil_respiration_rate").run()
    assert k_pooled(at) == 2
    assert any("12 effects left out as finer breakdowns" in c.value for c in at.caption)


def _effects(spec: list[tuple[str, bool, bool]]) -> list[dict]:
    """(response, with a variance, part of another effect) -> effect records of study "a"."""
    found = []
    for i, (response, variance, part) in enumerate(spec):
        found.append({"id": f"a/e{i}", "study_id": "a", "response": response, "measure": "ROM",
                      "mean_t": 2.0, "mean_c": 1.0, "n_t": 3, "n_c": 3, "source_location": "Table 1",
                      **({"sd_t": 0.5, "sd_c": 0.5} if variance else {}),
                      **({"quality_flag": "part of a/e0"} if part else {})})
    return found


@pytest.mark.parametrize("spec,expected", [
    # most effects with a variance beats most effects
    ([("soc_stock", False, False)] * 3 + [("soil_respiration", True, False)], "soil_respiration"),
    # a tie on variance goes to the response with more effects
    ([("soil_respiration", True, False), ("soc_stock", True, False), ("soc_stock", False, False)],
     "soc_stock"),
    # breakdowns ("part of ...") do not count as poolable
    ([("soc_stock", True, False)] * 2 + [("soil_respiration", True, False)]
     + [("soil_respiration", True, True)] * 2, "soc_stock"),
])
def test_main_response_counts_effects_a_pooled_effect_can_use(tmp_path, spec, expected):
    from kb import explorer

    with KnowledgeBase(tmp_path / "k.db", seed=False) as kb:
        kb.add_records({"sources": [{"key": "s1", "title": "T", "year": 2020}],
                        "studies": [{"id": "a", "source_key": "s1", "soc_direction": "not_reported"}],
                        "effects": _effects(spec)})
        assert explorer.main_response(kb.response_counts(), []) == expected


def test_filters_change_the_pooled_effect(app_db):
    at = run()
    at.selectbox(key="response").select("soc_stock").run()
    everything = metric(at, "Pooled lnRR")
    at.multiselect(key="biome").select("boreal").run()
    assert k_pooled(at) == 3
    assert metric(at, "Pooled lnRR") != everything
    at.slider(key="warming").set_value((0.0, 1.5)).run()
    assert k_pooled(at) == 2
    at.multiselect(key="biome").unselect("boreal").select("tropical").run()
    assert k_pooled(at) == 0
    assert any("No pooled" in i.value for i in at.info)


# filter -> value; each must select a strict, non-empty part of the built base
NARROWING = [("biome", ("boreal",)), ("mechanism", ("mineral_protection",)), ("depth_class", ("topsoil",)),
             ("warming", (None, 1.5)), ("year", (2012, 2015)), ("depth_range", (40.0, None)),
             ("text", "heterotrophic"), ("study_type", ("field_experiment",))]


@pytest.mark.parametrize("name,value", NARROWING)
def test_explore_reads_select_what_the_store_selects(built_db, name, value):
    """The narrow Explore reads (kept narrow for speed) select exactly the store's rows."""
    from kb import explorer

    with KnowledgeBase(built_db) as kb:
        for filters in ({}, {name: value}):
            studies = kb.studies(**filters)
            assert kb.count_studies(**filters) == len(studies)
            sites, n = kb.site_points(limit=5, **filters)
            located = studies.dropna(subset=["lat", "lon"])
            assert n == len(located) and list(sites["id"]) == list(located["id"][:5])
            for response in ("soc_stock", "soil_respiration"):
                full = kb.effects(response=response, **filters)
                narrow = explorer.effects_to_pool(kb, response, **filters)
                assert list(narrow["id"]) == list(full["id"])
                assert narrow["yi"].equals(full["yi"].astype(float))
        assert 0 < kb.count_studies(**{name: value}) < kb.count_studies()


@pytest.mark.parametrize("key,value", [("depth_range", (40, 300)), ("year", (2012, 2015)),
                                       ("depth_class", ["topsoil"])])
def test_more_filters_change_the_pooled_effect(app_db, key, value):
    at = run()
    at.selectbox(key="response").select("soc_stock").run()
    everything = (metric(at, "Studies"), k_pooled(at), metric(at, "Pooled lnRR"))
    widget = at.multiselect(key=key) if key == "depth_class" else at.slider(key=key)
    widget.set_value(value).run()
    assert not at.exception
    narrowed = (metric(at, "Studies"), k_pooled(at), metric(at, "Pooled lnRR"))
    assert int(narrowed[0].replace(",", "")) < int(everything[0].replace(",", ""))
    assert narrowed[1:] != everything[1:]


def test_free_text_filter(app_db):
    at = run()
    at.text_input(key="text").input("heterotrophic").run()
    assert 0 < int(metric(at, "Studies")) < int(n_studies(app_db))


def test_study_page_shows_effects_with_variance_notes(app_db):
    at = run("study")
    at.selectbox(key="study_id").select("example2011-a").run()
    effects = at.dataframe[1].value
    assert effects.loc[0, "variance_note"].startswith("SD assumed")
    assert effects.loc[0, "percent"] == pytest.approx(100 * math.expm1(effects.loc[0, "yi"]))


def found_ids(at: AppTest) -> list[str]:
    """The study ids the Study page's picker offers (it shows ``id · Author (year) · site``)."""
    return [option.split(" · ")[0] for option in at.selectbox(key="study_id").options]


def test_study_page_finds_and_links(app_db):
    at = run("study")
    at.text_input(key="study_find").input("EXAMPLE201").run()
    assert found_ids(at) == [f"example{y}-a" for y in range(2010, 2020)]
    at.text_input(key="study_find").input("no such study").run()
    assert at.info and not at.selectbox
    table = run("explore").dataframe[0].value
    assert "study?id=crowther2016" in set(table["study"])


# search text -> studies it must find (on the shipped base; every word in some field, any case)
STUDY_SEARCHES = [
    ("Rustad", "author", {"srdb1384-1"}),
    ("melillo HARVARD", "author and site", {"srdb886-1"}),
    ("10.1038/nature20150", "DOI", {"crowther2016"}),
    ("https://doi.org/10.1038/nature20150", "DOI link", {"crowther2016"}),
    ("Quantifying global soil carbon losses", "title", {"crowther2016"}),
    ("Terracosm", "site", {"cosore-d20200229_phillips"}),
]


@pytest.mark.parametrize("text,what,expected", STUDY_SEARCHES, ids=[s[1] for s in STUDY_SEARCHES])
def test_study_page_finds_a_study_by_author_title_doi_or_site(seeded_file, monkeypatch, text, what,
                                                                expected):
    monkeypatch.setenv("SOC_KB_DB", str(seeded_file))
    at = run("study")
    at.text_input(key="study_find").input(text).run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert expected <= set(found_ids(at)), (what, found_ids(at))
    with KnowledgeBase(seeded_file) as kb:  # nothing found that lacks a word of the search
        for row in kb.find_studies(text).to_dict(orient="records"):
            source = " ".join(str(v) for v in row.values() if isinstance(v, str)).lower()
            assert all(word in source for word in text.lower().removeprefix("https://doi.org/").split())


def test_study_page_opens_the_linked_study(app_db):
    at = AppTest.from_file(APP, default_timeout=60)
    at.query_params["id"] = "example2013-a"
    at.run()
    at.switch_page("pages/study.py").run()
    assert at.selectbox(key="study_id").value == "example2013-a"


def test_study_page_lists_claims_and_doi(app_db):
    at = run("study")
    at.selectbox(key="study_id").select("crowther2016").run()
    assert any("(https://doi.org/10.1038/nature20150)" in m.value for m in at.markdown)  # a DOI link
    claims = at.dataframe[-1].value
    assert {"claim_id", "relation", "text"} <= set(claims.columns) and len(claims) > 0
    assert set(claims["relation"]) <= {"Supports", "Contradicts", "Qualifies"}  # labels, not ids


@pytest.mark.parametrize("method,shown_as", [("open_top_chamber", "Open-top chamber"),
                                              ("not_reported", "Not reported")])
def test_study_page_shows_labels_not_vocabulary_ids(seeded_file, monkeypatch, method, shown_as):
    monkeypatch.setenv("SOC_KB_DB", str(seeded_file))
    with KnowledgeBase(seeded_file) as kb:
        study = next(s for s in kb.studies().to_dict(orient="records") if s["warming_method"] == method)
        labels = explorer.vocabulary_labels(kb)
    at = run("study")
    at.selectbox(key="study_id").select(study["id"]).run()
    facts = dict(zip(*at.dataframe[0].value[["field", "value"]].T.to_numpy(), strict=True))
    assert facts["Warming method"] == shown_as
    assert facts["Study type"] == labels["study_types"][study["study_type"]]
    assert method not in " ".join(facts.values())


def fill_form(at: AppTest, **values) -> AppTest:
    for name, value in values.items():
        widget = next(w for w in at.main if getattr(w, "key", None) == f"add_{name}")
        widget.set_value(value)
    at.button[0].click()  # the form's Save
    return at.run()


def test_add_study_then_it_appears_everywhere(app_db):
    at = run("explore")
    at.switch_page("pages/add_study.py").run()
    fill_form(at, id="new2025-a", biome="boreal", soc_direction="decrease", lat=60.0, lon=25.0,
              mechanisms=["microbial_decomposition"], link_claim_id="cA-joint-regulators",
              link_relation="supports", evidence_quote="Warming *lowered* SOC [x](http://evil)")
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert shown(at.success[0]) == "Saved new2025-a"
    touched = at.dataframe[0].value
    assert list(touched["claim_id"]) == ["cA-joint-regulators"]
    assert (touched["n_supports_after"] == touched["n_supports_before"] + 1).all()
    at.switch_page("pages/explore.py").run()
    assert metric(at, "Studies") == n_studies(app_db)
    at.switch_page("pages/study.py").run()
    at.selectbox(key="study_id").select("new2025-a").run()
    quote = next(m.value for m in at.markdown if m.value.startswith(">"))
    assert "\\*lowered\\*" in quote and "\\[x\\]" in quote  # shown as text, not as markup


def test_a_write_from_outside_shows_at_the_next_run(app_db):
    """The CLI or another process writes the file: the cached reads must not go stale
    (here the cache is deliberately not cleared between the runs)."""
    at = run()
    before = int(metric(at, "Studies"))
    with KnowledgeBase(app_db) as kb:
        kb.add_records({"studies": [{"id": "outside2025-a", "soc_direction": "increase"}]})
    at.run()
    assert int(metric(at, "Studies")) == before + 1


@pytest.mark.parametrize("values,field,message", [
    ({"id": "new 2025", "soc_direction": "decrease"}, "id", "no spaces"),
    ({"id": "crowther2016", "soc_direction": "decrease"}, "id", "already exists"),
    ({"id": "new2025-b"}, "soc_direction", "is required"),
    ({"id": "new2025-b", "soc_direction": "decrease", "lat": 95.0}, "lat", "less than or equal to 90"),
    ({"id": "new2025-b", "soc_direction": "decrease", "depth_top_cm": 30.0, "depth_bottom_cm": 10.0},
     "depth_top_cm", "must be above bottom"),
    ({"id": "new2025-b", "soc_direction": "decrease", "link_relation": "supports"},
     "link_claim_id", "claim_id"),
])
def test_add_study_refuses_bad_input_and_writes_nothing(app_db, values, field, message):
    with KnowledgeBase(app_db) as kb:
        before = kb.counts()
    at = run("add_study")
    fill_form(at, **values)
    assert not at.success
    errors = [e for e in at.error if message in shown(e)]
    assert len(errors) == 1 and "\n" not in errors[0].value, [e.value for e in at.error]
    # the error sits right under the field it names (the page is walked depth first)
    nodes = list(at.main)
    field_at = next(i for i, n in enumerate(nodes) if getattr(n, "key", None) == f"add_{field}")
    assert nodes[field_at + 1] == errors[0]
    with KnowledgeBase(app_db) as kb:
        assert kb.counts() == before


GOOD_BIB = b"@article{upload2025, title={Uploaded SOC study}, author={Doe, Jane}, year={2025}, journal={J}}"
GOOD_YAML = b"studies:\n  - id: upload2025-a\n    soc_direction: increase\n    biome: boreal\n"


@pytest.mark.parametrize("name,data,message", [
    ("refs.bib", GOOD_BIB, "Imported refs.bib: 1 sources"),
    ("new.yaml", GOOD_YAML, "Imported new.yaml: 1 studies"),
])
def test_upload_adds_records(app_db, name, data, message):
    at = run("add_study")
    at.get("file_uploader")[0].set_value((name, data, "text/plain"))
    at.run()
    at.button(key="import").click().run()
    assert not at.error, [e.value for e in at.error]
    assert shown(at.success[0]) == message


@pytest.mark.parametrize("name,data,message", [
    ("bad.bib", b"@article{broken, title={No end", "bad.bib"),
    ("bad.yaml", b"studies:\n  - id: upload2025-a\n    biome: tundr\n", "bad.yaml"),
    ("dup.yaml", b"studies:\n  - id: crowther2016\n    soc_direction: decrease\n", "already exists"),
    ("deep.json", b"[" * 5000 + b"]" * 5000, "deep.json"),
    ("wide.csv", b"id,soc_direction\n" + b"a" * 200_000 + b",decrease\n", "wide.csv"),
])
def test_upload_refuses_bad_files_and_writes_nothing(app_db, name, data, message):
    with KnowledgeBase(app_db) as kb:
        before = kb.counts()
    at = run("add_study")
    at.get("file_uploader")[0].set_value((name, data, "text/plain"))
    at.run()
    at.button(key="import").click().run()
    assert not at.success
    assert len(at.error) == 1 and message in shown(at.error[0]) and "\n" not in at.error[0].value
    assert tempfile.gettempdir() not in shown(at.error[0])  # never the server's own path
    with KnowledgeBase(app_db) as kb:
        assert kb.counts() == before


def test_bibliography_search_and_downloads(app_db):
    at = run("bibliography")
    assert [d.proto.label for d in at.download_button] == ["Download BibTeX", "Download RIS",
                                                           "Download CSL-JSON"]
    at.text_input(key="bib_text").input("Crowther").run()
    shown = [m.value for m in at.markdown]
    assert shown and all("Crowther" in s or "crowther" in s for s in shown)
    assert not any(d.proto.disabled for d in at.download_button)


@pytest.mark.parametrize("page,key", [("study", "study_find"), ("bibliography", "bib_text")])
def test_an_overlong_search_is_one_line_error(seeded_file, monkeypatch, page, key):
    monkeypatch.setenv("SOC_KB_DB", str(seeded_file))
    at = run(page)
    at.text_input(key=key).input("soil " * 150).run()  # 750 characters: a pasted document
    assert not at.exception and len(at.error) == 1 and "\n" not in at.error[0].value
    assert "at most 500" in shown(at.error[0])


# search text -> a source it must find and why (journal, year, DOI are not in the title)
SOURCE_SEARCHES = [("Nature 2016", "crowther2016"), ("Soil Biology and Biochemistry", "abramoff2022"),
                   ("10.1016/j.soilbio.2021.108466", "abramoff2022"), ("2022 Abramoff", "abramoff2022")]


@pytest.mark.parametrize("text,key", SOURCE_SEARCHES)
def test_bibliography_search_matches_journals_years_and_dois(seeded_file, monkeypatch, text, key):
    monkeypatch.setenv("SOC_KB_DB", str(seeded_file))
    at = run("bibliography")
    at.text_input(key="bib_text").input(text).run()
    keys = [shown(m).split(" ", 1)[0].strip("*") for m in at.markdown]
    assert key in keys, keys
    with KnowledgeBase(seeded_file) as kb:
        assert keys == list(kb.find_sources(text)["key"])
        doi = kb.get("sources", key)["doi"]
    assert any(f"(https://doi.org/{doi})" in m.value for m in at.markdown)  # the DOI as a link


def test_bibliography_downloads_hold_what_the_search_shows(seeded_file):
    import json

    import rispy

    with KnowledgeBase(seeded_file) as kb:
        found = kb.find_sources("Nature")
    keys = list(found["key"])
    assert 1 < len(keys) < 99
    assert [r["id"] for r in rispy.loads(explorer.ris(found))] == keys
    assert [item["id"] for item in json.loads(explorer.csl_json(found))] == keys
    assert re.findall(r"@\w+\{([^,]+),", explorer.bibtex(found)) == keys


def test_titles_are_text_not_markup(tmp_path, monkeypatch):
    path = tmp_path / "x.db"
    with KnowledgeBase(path, seed=False) as kb:
        kb.add_records({"sources": [{"key": "evil2025", "title": "Bold **claim** <b>x</b> $x^2$ [a](http://x)",
                                     "authors": "Doe, Jane", "year": 2025}],
                        "studies": [{"id": "evil2025-a", "source_key": "evil2025", "soc_direction": "decrease",
                                     "summary": "![img](http://x/y.png) <script>alert(1)</script>"}]})
    monkeypatch.setenv("SOC_KB_DB", str(path))
    at = run("study")
    at.selectbox(key="study_id").select("evil2025-a").run()
    text = " ".join(m.value for m in at.markdown)
    assert "\\*\\*claim\\*\\*" in text and "\\$x^2\\$" in text.replace("\\^", "^")
    assert "\\!\\[img\\]" in text and "\\<script\\>" in text
    at.switch_page("pages/bibliography.py").run()
    assert any("\\*\\*claim\\*\\* \\<b\\>" in m.value for m in at.markdown)


def test_bad_values_in_errors_are_text_not_markup(app_db):
    data = b"studies:\n  - id: upload2025-a\n    soc_direction: decrease\n    biome: '![img](http://x/y.png)'\n"
    at = run("add_study")
    at.get("file_uploader")[0].set_value(("evil.yaml", data, "text/plain"))
    at.run()
    at.button(key="import").click().run()
    assert len(at.error) == 1 and "\\!\\[img\\]\\(http" in at.error[0].value
    assert "![img](http://x/y.png)" in shown(at.error[0])


def test_claims_page_balance_certainty_graph(app_db):
    at = run("claims")
    table = at.dataframe[0].value
    assert {"n_supports", "n_contradicts", "certainty", "contested"} <= set(table.columns)
    assert (table["contested"] == "⚠ contested").any()
    at.toggle(key="only_contested").set_value(True).run()
    assert (at.dataframe[0].value["contested"] == "⚠ contested").all()
    contested = at.dataframe[0].value["id"].iloc[0]
    at.selectbox(key="claim_id").select(contested).run()
    assert at.warning and at.warning[0].value.startswith("Contested")
    assert "digraph" in at.get("graphviz_chart")[0].proto.spec
    assert {"domain", "levels", "text"} <= set(at.dataframe[1].value.columns)  # reasons


def test_synthesis_table_plots_and_downloads(app_db):
    at = run("synthesis")
    at.selectbox(key="syn_response").select("soc_stock").run()
    table = at.dataframe[0].value
    assert "Boreal" in set(table["biome"]) and {"k_effects", "estimate", "percent_change", "certainty"} <= set(table.columns)
    assert [d.proto.label for d in at.download_button][:7] == [
        "Download CSV", "Download Markdown", "Download LaTeX", "Download HTML", "Download XLSX",
        "Report (HTML)", "Report (PDF)"]  # the table's downloads, then the synthesis report
    with KnowledgeBase(app_db) as kb:
        boreal = kb.effects(response="soc_stock", biome="boreal")
    at.selectbox(key="group").select("boreal").run()
    assert not at.exception
    behind = f"{len(boreal)} effects from {boreal['study_id'].nunique()} site"
    assert any(behind in shown(m) for m in at.markdown), [m.value for m in at.markdown]
    assert len(at.get("vega_lite_chart")) >= 2  # forest and funnel (+ leave one site out, bubbles)
    assert any("Egger" in c.value for c in at.caption)
    assert explorer.synthesis_file_stem("soc_stock", ["biome", "mechanism"], "robust") == \
        "synthesis-soc_stock-by-biome-mechanism-robust"  # downloads never overwrite each other


def test_synthesis_models_and_estimators(app_db):
    at = run("synthesis")
    assert at.selectbox(key="syn_model").value == "multilevel"
    assert at.selectbox(key="syn_method").options == ["REML", "ML"]  # rma.mv's estimators only
    table = at.dataframe[0].value
    assert {"model", "n_sites", "n_sources", "certainty_reasons"} <= set(table.columns)
    at.selectbox(key="syn_model").select("independent").run()
    assert "DL" in at.selectbox(key="syn_method").options
    at.selectbox(key="syn_method").select("DL").run()
    assert not at.error and set(at.dataframe[0].value["model"]) <= {"independent", "single site", "votes only"}


def test_synthesis_sensitivity_panel_names_fragile_groups(app_db):
    at = run("synthesis")
    at.selectbox(key="syn_response").select("soil_respiration").run()
    at.multiselect(key="by").set_value(["ecosystem"]).run()
    at.toggle(key="run_sensitivity").set_value(True).run()
    assert not at.exception
    table = next(d.value for d in at.dataframe if "scenario" in d.value.columns)
    assert "SRDB error is an SD, n = 3" in set(table["scenario"])
    assert any("Fragile: " in shown(w) for w in at.warning)


def test_synthesis_moderator_panel(app_db):
    at = run("synthesis")
    at.selectbox(key="syn_response").select("soil_respiration").run()
    at.selectbox(key="moderator").select("warming_c").run()
    assert not at.exception
    assert any(m.label.startswith("Slope (% per °C)") for m in at.metric)
    assert any(m.label == "R²" for m in at.metric)


def test_synthesis_groupings(app_db):
    at = run("synthesis")
    at.multiselect(key="by").set_value(["biome", "mechanism"]).run()
    table = at.dataframe[0].value
    assert {"biome", "mechanism"} <= set(table.columns)
    at.multiselect(key="by").set_value([]).run()
    assert at.info[0].value == "Choose at least one grouping." and not at.dataframe


def test_evidence_map_shows_gaps(app_db):
    at = run("evidence_map")
    charts = at.get("vega_lite_chart")
    assert len(charts) == 2  # heat map and time line
    at.selectbox(key="map_columns").select("biome").run()
    assert at.warning[0].value == "Choose two different facets."


def chart_spec(at: AppTest, index: int) -> dict:
    return json.loads(at.get("vega_lite_chart")[index].proto.spec)


def chart_rows(at: AppTest, index: int) -> pd.DataFrame:
    """The one table of data a chart draws (Streamlit sends it as Arrow beside the spec)."""
    (frame,) = chart_data(at.get("vega_lite_chart")[index])
    return frame


def test_evidence_map_cell_lists_the_studies_it_counts(seeded_file, monkeypatch):
    monkeypatch.setenv("SOC_KB_DB", str(seeded_file))
    with KnowledgeBase(seeded_file) as kb:
        studies = kb.studies()
    boreal = studies[studies["biome"] == "boreal"]
    expected = {s for s, m in zip(boreal["id"], boreal["mechanisms"], strict=True) if not m}
    assert len(expected) > 1  # boreal studies that name no mechanism: the "Not reported" cell
    at = run("evidence_map")
    assert at.get("vega_lite_chart")[0].proto.selection_mode == ["cell"]  # a click selects a cell
    at.session_state["map_cell"] = {"selection": {"cell": [{"biome": "boreal",
                                                            "mechanism": "not_reported"}]}}
    at.run()
    assert not at.exception
    assert any(f"{len(expected)} studies in Boreal × Not reported" in shown(m) for m in at.markdown)
    listed = at.dataframe[0].value
    assert {link.removeprefix("study?id=") for link in listed["study"]} == expected
    counts = chart_rows(at, 0)
    cell = counts[(counts["biome"] == "boreal") & (counts["mechanism"] == "not_reported")]
    assert cell["n_studies"].tolist() == [len(expected)]  # the cell counts what it lists
    assert {"Boreal", "Not reported"} <= set(counts["row_label"]) | set(counts["column_label"])


def test_timeline_years_are_a_continuous_axis(seeded_file, monkeypatch):
    monkeypatch.setenv("SOC_KB_DB", str(seeded_file))
    at = run("evidence_map")
    x = chart_spec(at, 1)["encoding"]["x"]
    assert x["field"] == "year" and x["type"] == "quantitative"  # gaps between years stay visible
    years = set(chart_rows(at, 1)["year"])
    assert max(years) - min(years) + 1 > len(years)  # the shipped base has years without a source


def test_site_map_draws_land_offline_and_a_click_opens_the_study(seeded_file, monkeypatch):
    monkeypatch.setenv("SOC_KB_DB", str(seeded_file))
    at = run("explore")
    chart = at.get("vega_lite_chart")[0]
    spec = json.loads(chart.proto.spec)
    assert '"url"' not in chart.proto.spec  # every layer's data is in the spec: nothing is fetched
    land = [d for d in spec["datasets"].values() if d and d[0].get("properties", {}).get("kind") == "land"]
    assert land and len(land[0][0]["geometry"]["coordinates"]) > 50  # continents and large islands
    assert chart.proto.selection_mode == ["site"]
    at.session_state["site_map"] = {"selection": {"site": [{"study": "srdb886-1"}]}}
    at.run()
    assert not at.exception
    assert at.title[0].value == "Study" and at.selectbox(key="study_id").value == "srdb886-1"


def test_a_range_says_what_it_leaves_out_and_can_keep_it(app_db):
    at = run()
    everything = metric(at, "Studies")
    at.slider(key="warming").set_value((0.5, 10.0)).run()
    with KnowledgeBase(app_db) as kb:
        missing = kb.missing_values(warming=(0.5, None))["warming"]
    assert missing > 0
    notes = [c.value for c in at.sidebar.caption]
    assert any(f"{missing:,} studies that state no warming magnitude" in shown_note.replace("\\", "")
               for shown_note in notes), notes
    assert int(metric(at, "Studies").replace(",", "")) + missing == int(everything.replace(",", ""))
    at.checkbox(key="include_missing").check().run()
    assert metric(at, "Studies") == everything
    assert not any("state no" in c.value for c in at.sidebar.caption)


# -- no None, NaN or <NA> on any page --------------------------------------------------------

# a missing value printed by Python or pandas; quoted, as in a record's own text
# ("Manipulation 'None'", SRDB's word for a control plot), it is data, not a gap
MISSING_TOKEN = re.compile(r"(?<!')\b(?:None|nan|NaN|NaT)\b(?!')|<NA>")


def missing_shown(at: AppTest) -> list[str]:
    """Every place an AppTest run shows a missing value as None, NaN or <NA>: texts, metrics,
    pickers, table cells (a missing number must be an empty cell: placeholder ""), and the
    text fields of chart data (legends and tooltips)."""
    found = []
    for kind in ("title", "subheader", "markdown", "caption", "info", "warning", "success", "error"):
        found += [f"{kind}: {e.value}" for e in getattr(at, kind) if MISSING_TOKEN.search(str(e.value))]
    found += [f"metric {m.label}: {m.value}" for m in at.metric if MISSING_TOKEN.search(f"{m.label} {m.value}")]
    for picker in [*at.selectbox, *at.multiselect]:
        found += [f"picker {picker.label}: {o}" for o in picker.options if MISSING_TOKEN.search(str(o))]
    for table in at.dataframe:
        config = json.loads(table.proto.columns or "{}")
        links = {c for c, v in config.items() if v.get("type_config", {}).get("type") == "link"}
        found += [f"table {c}: {p}" for c, p in table_gaps(table.value, table.proto.placeholder, links)]
    for chart in at.get("vega_lite_chart"):
        found += [f"chart data: {p}" for p in chart_gaps(chart)]
    return found


def table_gaps(frame: pd.DataFrame, placeholder: str, links=()) -> list[tuple[str, str]]:
    """A missing number or link must show as an empty cell, a missing text as "—"."""
    gaps = []
    for column in frame.columns:
        values = frame[column]
        if pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values) or column in links:
            if values.isna().any() and placeholder != "":
                gaps.append((column, "a missing number or link shown without an empty placeholder"))
            continue
        gaps += [(column, repr(v)) for v in values
                 if (not isinstance(v, list | tuple) and pd.isna(v)) or MISSING_TOKEN.search(str(v))]
    return gaps


def chart_gaps(chart) -> list[str]:
    """Text fields a chart shows (in an encoding: axis, legend, tooltip, text) with a gap or
    a missing-value word."""
    shown_fields = set(encoded_fields(json.loads(chart.proto.spec)))
    gaps = []
    for frame in chart_data(chart):
        for column in shown_fields.intersection(frame.columns):
            values = frame[column]
            texts = [v for v in values if isinstance(v, str)]
            if texts and len(texts) < len(values):  # a text field (legend, tooltip) with a gap
                gaps.append(f"{column}: a missing value among its texts")
            gaps += [f"{column}: {v}" for v in texts if MISSING_TOKEN.search(v)]
    return gaps


def chart_data(chart) -> list[pd.DataFrame]:
    """The data of a chart: Streamlit sends Altair's datasets as Arrow beside the spec; data
    that is not a table (the map's land outlines) stays in the spec."""
    from streamlit import dataframe_util

    spec = json.loads(chart.proto.spec)
    frames = [pd.DataFrame(rows) for rows in spec.get("datasets", {}).values()
              if rows and isinstance(rows[0], dict) and "geometry" not in rows[0]]
    return frames + [dataframe_util.convert_arrow_bytes_to_pandas_df(d.data.data)
                     for d in chart.proto.datasets]


def encoded_fields(spec) -> list[str]:
    """Every field a Vega-Lite spec's encodings show (layers and conditions included)."""
    found = []
    if isinstance(spec, dict):
        for key, value in spec.items():
            if key == "field" and isinstance(value, str):
                found.append(value)
            else:
                found += encoded_fields(value)
    elif isinstance(spec, list):
        for value in spec:
            found += encoded_fields(value)
    return found


def _claim_with_data(kb) -> str:
    return kb.synthesis_links()["claim_id"].iloc[0]


def _contested_claim(kb) -> str:
    return explorer.claims_overview(kb).query("contested")["id"].iloc[0]


def _first(kb, prefix) -> str:
    return next(i for i in kb.study_ids() if i.startswith(prefix))


# page, what to do there (on the shipped base): every page, and the states that show most
PAGE_STATES = [
    ("explore", None),
    ("study", ("study_id", lambda kb: _first(kb, "srdb"))),
    ("study", ("study_id", lambda kb: _first(kb, "cosore"))),
    ("study", ("study_id", lambda kb: "crowther2016")),
    ("study", ("study_id", lambda kb: "chen2023")),  # a source without a verified title
    ("claims", ("claim_id", _contested_claim)),
    ("claims", ("claim_id", _claim_with_data)),
    ("synthesis", None),
    ("synthesis", ("by", lambda kb: ["mechanism", "warming_bin"])),
    ("evidence_map", None),
    ("evidence_map", ("map_cell", lambda kb: {"selection": {"cell": [{"biome": "global",
                                                                      "mechanism": "microbial_decomposition"}]}})),
    ("bibliography", None),
    ("add_study", None),
]


@pytest.mark.parametrize("page,action", PAGE_STATES,
                         ids=[f"{p}-{i}" for i, (p, _) in enumerate(PAGE_STATES)])
def test_no_page_of_the_shipped_base_shows_none_or_nan(seeded_file, monkeypatch, page, action):
    monkeypatch.setenv("SOC_KB_DB", str(seeded_file))
    at = run(page)
    if action is not None:
        key, value = action
        with KnowledgeBase(seeded_file) as kb:
            value = value(kb)
        if key == "map_cell":  # a click on a cell
            at.session_state[key] = value
        elif key == "by":
            at.multiselect(key=key).set_value(value)
        else:
            at.selectbox(key=key).select(value)
        at.run()
        assert not at.exception, [e.value for e in at.exception]
    assert missing_shown(at) == []


@pytest.mark.parametrize("page", PAGES)
def test_no_page_of_an_empty_base_shows_none_or_nan(tmp_path, monkeypatch, page):
    path = tmp_path / "empty.db"
    KnowledgeBase(path, seed=False).close()
    monkeypatch.setenv("SOC_KB_DB", str(path))
    assert missing_shown(run(page)) == []


@pytest.mark.parametrize("value,names,shown_as", [
    ("heating_cable", {"heating_cable": "Heating cable"}, "Heating cable"),
    ("not_reported", {}, "Not reported"),          # the synthesis' word for a missing facet
    ("air_and_soil", None, "Air and soil"),         # a term without a vocabulary table
    ("<1 °C", None, "<1 °C"),                       # a warming bin: already words
    (["priming", "leaching"], {"priming": "Priming", "leaching": "Leaching"}, "Priming, Leaching"),
    ([], {}, "—"),
    (None, {}, "—"),
    (float("nan"), {}, "—"),
    (pd.NA, {}, "—"),
])
def test_labels_of_vocabulary_terms(value, names, shown_as):
    assert explorer.label(value, names) == shown_as


def test_display_table_keeps_numbers_numeric_and_links_empty():
    frame = pd.DataFrame({"biome": ["boreal", None], "n": [3, None], "note": [None, "x"],
                          "sd": [None, None], "DOI": [None, "https://doi.org/10.1/x"]}, dtype=object)
    shown_frame = explorer.display_table(frame, {"biomes": {"boreal": "Boreal"}}, links=("DOI",))
    assert shown_frame["biome"].tolist() == ["Boreal", "—"]
    assert pd.api.types.is_float_dtype(shown_frame["n"]) and shown_frame["n"].isna().tolist() == [False, True]
    assert shown_frame["note"].tolist() == ["—", "x"]
    assert shown_frame["sd"].tolist() == ["—", "—"]  # nothing to tell text from numbers: a gap
    assert shown_frame["DOI"].isna().tolist() == [True, False]  # an empty cell, not a link to "—"

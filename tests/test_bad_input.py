"""Bad input is refused with one line naming where, the field, the value and the fix; nothing is written."""

from __future__ import annotations

import pytest
from conftest import snapshot

from kb import KBError

STUDY = {"id": "new-1", "source_key": "smith2024", "soc_direction": "decrease"}
EFFECT = {"study_id": "smith2024-a", "response": "soc_stock", "measure": "ROM", "mean_t": 10,
          "mean_c": 8, "source_location": "Table 1"}
LINK = {"claim_id": "c1", "study_id": "smith2024-a", "relation": "supports"}
CLAIM = {"id": "c1", "text": "Warming depletes SOC."}

# (case, table, record changes, expected message fragment)
RECORD_CASES = [
    ("unknown biome", "studies", {"biome": "tundr"},
     "studies[0] 'new-1': field 'biome': 'tundr' is not an allowed value of biomes; did you mean 'arctic'? allowed: arctic, boreal"),
    ("misspelt direction", "studies", {"soc_direction": "decrese"},
     "field 'soc_direction': 'decrese' is not an allowed value of directions; did you mean 'decrease'?"),
    ("latitude above 90", "studies", {"lat": 91}, "field 'lat': 91 is invalid: must be less than or equal to 90"),
    ("longitude below -180", "studies", {"lon": -181}, "field 'lon': -181 is invalid: must be greater than or equal to -180"),
    ("depth order", "studies", {"depth_top_cm": 30, "depth_bottom_cm": 10},
     "field 'depth_top_cm': top (30 cm) must be above bottom (10 cm)"),
    ("implausible depth", "studies", {"depth_bottom_cm": 5000}, "field 'depth_bottom_cm': 5000 is invalid: must be less than or equal to 2000"),
    ("warming not a number", "studies", {"warming_c": "hot"}, "field 'warming_c': 'hot' is invalid: must be a valid number"),
    ("implausible warming", "studies", {"warming_c": 40}, "field 'warming_c': 40 is invalid: must be less than or equal to 25"),
    ("zero warming", "studies", {"warming_c": 0}, "field 'warming_c': 0 is invalid: must be greater than 0"),
    ("negative duration", "studies", {"duration_years": -2}, "field 'duration_years': -2 is invalid: must be greater than 0"),
    ("missing direction", "studies", {"soc_direction": None}, "field 'soc_direction': is required but missing"),
    ("unknown field", "studies", {"biom": "boreal"}, "unknown field 'biom'; did you mean 'biome'?"),
    ("id with a space", "studies", {"id": "new 1"}, "field 'id': 'new 1' is invalid: use letters, digits"),
    ("stored id", "studies", {"id": "smith2024-a"},
     "field 'id': 'smith2024-a' already exists (studies 'smith2024-a' is stored)"),
    ("unknown source", "studies", {"source_key": "nobody2020"},
     "field 'source_key': 'nobody2020' is not a known source key; add the source first"),
    ("unknown mechanism", "studies", {"mechanisms": ["microbes"]},
     "field 'mechanisms': 'microbes' is not an allowed value of mechanisms"),
    ("mechanisms not a list", "studies", {"mechanisms": "priming"}, "field 'mechanisms': 'priming' is invalid: must be a valid list"),
    ("unknown warming medium", "studies", {"warming_medium": "water"},
     "field 'warming_medium': 'water' is invalid: must be 'air', 'soil' or 'air_and_soil'"),
    ("unknown study type", "studies", {"study_type": "experiment"},
     "field 'study_type': 'experiment' is not an allowed value of study_types"),
    ("n of zero", "effects", {"sd_t": 1, "n_t": 0, "sd_c": 1, "n_c": 3}, "field 'n_t': 0 is invalid: must be greater than or equal to 1"),
    ("negative SD", "effects", {"sd_t": -1}, "field 'sd_t': -1 is invalid: must be greater than or equal to 0"),
    ("negative mean in a log ratio", "effects", {"mean_c": -5},
     "field 'mean_c': -5 must be > 0 for a log response ratio (measure ROM)"),
    ("variance without effect", "effects", {"measure": None, "mean_t": None, "mean_c": None, "vi": 0.1},
     "field 'vi': a sampling variance needs its effect size yi"),
    ("zero variance", "effects", {"yi": 0.2, "vi": 0}, "field 'vi': 0 is invalid: must be greater than 0"),
    ("numbers without provenance", "effects", {"source_location": None},
     "field 'source_location': every number needs its provenance"),
    ("stated yi disagrees", "effects", {"yi": 0.9}, "field 'yi': 0.9 does not match the arm numbers, which give 0.223144"),
    ("unknown measure", "effects", {"measure": "RR"}, "field 'measure': 'RR' is invalid: must be 'ROM', 'SMD' or 'MD'"),
    ("unknown study", "effects", {"study_id": "ghost"}, "field 'study_id': 'ghost' is not a known study key"),
    ("no numbers, no direction", "effects", {"measure": None, "mean_t": None, "mean_c": None, "source_location": None},
     "field 'direction': an effect without numbers needs a direction"),
    ("unknown response", "effects", {"response": "carbon"}, "field 'response': 'carbon' is not an allowed value of responses"),
    ("DOI with URL prefix", "sources", {"doi": "https://doi.org/10.1/x"},
     "field 'doi': 'https://doi.org/10.1/x' is invalid: a DOI looks like 10.1038/nature20150"),
    ("DOI already stored", "sources", {"doi": "10.1234/EXAMPLE.1"},
     "field 'doi': DOI '10.1234/EXAMPLE.1' already belongs to source 'smith2024'"),
    ("source without title", "sources", {"title": None}, "field 'title': a source needs a title"),
    ("year not a number", "sources", {"year": "twenty"}, "field 'year': 'twenty' is invalid: must be a valid integer"),
    ("claim without text", "claims", {"text": None}, "claims[0] 'c1': field 'text': is required but missing"),
    ("link to study and claim", "claim_links", {"other_claim_id": "c2"},
     "field 'study_id': a link needs exactly one of study_id (evidence) or other_claim_id"),
    ("unknown relation", "claim_links", {"relation": "proves"},
     "field 'relation': 'proves' is not an allowed value of link_relations"),
    ("link to unknown claim", "claim_links", {"claim_id": "nope"}, "field 'claim_id': 'nope' is not a known claim key"),
]

BASE = {"studies": STUDY, "effects": EFFECT, "claim_links": LINK, "claims": CLAIM,
        "sources": {"key": "doe2025", "title": "Another paper", "year": 2025}}


def _record(table: str, changes: dict) -> dict:
    record = BASE[table] | changes
    return {k: v for k, v in record.items() if v is not None}


@pytest.mark.parametrize("case,table,changes,message", RECORD_CASES, ids=[c[0] for c in RECORD_CASES])
def test_bad_record_is_refused_and_nothing_written(kb_with_study, case, table, changes, message):
    kb = kb_with_study
    records = {table: [_record(table, changes)]}
    if table == "claim_links" and changes.get("claim_id") != "nope":
        records["claims"] = [CLAIM]
    before = snapshot(kb)
    with pytest.raises(KBError) as info:
        kb.add_records(records)
    assert message in str(info.value)
    assert "\n" not in str(info.value)
    assert snapshot(kb) == before


def test_one_bad_record_in_a_batch_writes_nothing(kb_with_study):
    good = [dict(STUDY, id=f"ok-{i}") for i in range(50)]
    bad = dict(STUDY, id="bad-1", lat=123)
    before = snapshot(kb_with_study)
    with pytest.raises(KBError, match=r"studies\[50\] 'bad-1': field 'lat'"):
        kb_with_study.add_records({"studies": [*good, bad]})
    assert snapshot(kb_with_study) == before


def test_duplicate_ids_within_a_batch(kb_with_study):
    with pytest.raises(KBError, match=r"studies\[1\] 'new-1': field 'id': 'new-1' is repeated \(also at studies\[0\] 'new-1'\)"):
        kb_with_study.add_records({"studies": [STUDY, STUDY]})


# (case, file name, content, expected message fragment); the file name is in every message
FILE_CASES = [
    ("YAML syntax", "bad.yaml", "studies:\n  - id: x\n    biome: [boreal\n", "bad.yaml line 4: YAML syntax error"),
    ("YAML list at top", "bad.yaml", "- id: x\n", "bad.yaml: the file must be a mapping of table names"),
    ("YAML unknown table", "bad.yaml", "study:\n  - id: x\n", "bad.yaml: unknown table 'study'; expected any of sources, studies"),
    ("YAML table not a list", "bad.yaml", "studies:\n  id: x\n", "bad.yaml: 'studies' must be a list of records"),
    ("YAML bad record", "bad.yaml", "studies:\n  - id: new-1\n    soc_direction: decrease\n    lat: north\n",
     "bad.yaml: studies[0] 'new-1': field 'lat': 'north' is invalid: must be a valid number"),
    ("JSON syntax", "bad.json", '{"studies": [\n {"id": "x",}\n]}', "bad.json line 2: JSON syntax error"),
    ("JSON bad vocabulary", "bad.json", '{"studies": [{"id": "n", "soc_direction": "down", "biome": "Boreal"}]}',
     "bad.json: studies[0] 'n': field 'biome': 'Boreal' is not an allowed value of biomes; did you mean 'boreal'?"),
    ("CSV unknown column", "studies.csv", "id,soc_direction,biom\nn1,decrease,boreal\n",
     "studies.csv line 1: unknown column 'biom' for table studies"),
    ("CSV ragged row", "studies.csv", "id,soc_direction\nn1,decrease\nn2,decrease,extra\n",
     "studies.csv line 3: 3 values for 2 columns"),
    ("CSV bad value", "studies.csv", "id,soc_direction,lat\nn1,decrease,10\nn2,decrease,95\n",
     "studies.csv: studies line 3 'n2': field 'lat': '95' is invalid: must be less than or equal to 90"),
    ("CSV unknown mechanism", "studies.csv", "id,soc_direction,mechanisms\nn1,decrease,priming;heat\n",
     "studies.csv: studies line 2 'n1': field 'mechanisms': 'heat' is not an allowed value of mechanisms"),
    ("CSV line after a quoted line break", "studies.csv",
     'id,soc_direction,summary\nn1,decrease,"two\nlines"\nn2,decrese,x\n',
     "studies.csv: studies line 4 'n2': field 'soc_direction': 'decrese' is not an allowed value"),
    ("CSV ragged row after a quoted line break", "studies.csv",
     'id,soc_direction,summary\nn1,decrease,"two\nlines"\nn2,decrease,x,y\n', "studies.csv line 4: 4 values for 3 columns"),
    ("CSV table not named", "data.csv", "id,soc_direction\nn1,decrease\n", "data.csv: cannot tell which table the CSV holds ('data')"),
    ("CSV empty", "studies.csv", "", "studies.csv: empty file; the first line must name the columns"),
    ("unknown file type", "notes.txt", "hello", "notes.txt: unknown file type '.txt'"),
    ("BibTeX without key", "bad.bib", "@article{title={x}, year=2020}\n", "bad.bib line 1: entry has no valid key"),
    ("BibTeX prose", "bad.bib", "Smith J. (2020) Soil carbon. Nature.\n", "bad.bib: no BibTeX entries found"),
    ("BibTeX unclosed", "bad.bib", "@article{a,\n title={x},\n year={2020}\n", "bad.bib line 1: entry is not closed"),
    ("BibTeX no year", "bad.bib", "@article{a, title={x}}\n", "bad.bib line 1: entry 'a': has no year"),
    ("BibTeX no title", "bad.bib", "@article{a, year={2020}}\n", "bad.bib line 1: entry 'a': has no title"),
    ("BibTeX year text", "bad.bib", "@article{a, title={x}, year={20 20}}\n", "bad.bib line 1: entry 'a': year '20 20' is not a four-digit year"),
    ("BibTeX repeated key", "bad.bib", "@article{a, title={x}, year={2020}}\n\n@book{a, title={y}, year={2021}}\n",
     "bad.bib line 3: repeated entry key 'a' (first at line 1)"),
    ("BibTeX repeated field", "bad.bib", "@article{a, title={x}, year={2020}}\n\n@article{b, title={x}, title={y}, year={2021}}\n",
     "bad.bib line 3: entry with key b has a duplicate title field"),
    ("BibTeX syntax", "bad.bib", "@article{a, title={x}, year = 20 20}\n", "bad.bib line 1: syntax error"),
    ("BibTeX stored DOI", "bad.bib", "@article{b, title={x}, year={2020}, doi={10.1234/example.1}}\n",
     "bad.bib: sources[0] 'b': field 'doi': DOI '10.1234/example.1' already belongs to source 'smith2024'"),
]


@pytest.mark.parametrize("case,name,content,message", FILE_CASES, ids=[c[0] for c in FILE_CASES])
def test_bad_file_is_refused_and_nothing_written(kb_with_study, tmp_path, case, name, content, message):
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    before = snapshot(kb_with_study)
    with pytest.raises(KBError) as info:
        kb_with_study.add_file(path)
    text = str(info.value).replace(str(tmp_path) + "/", "")
    assert message in text
    assert "\n" not in text
    assert snapshot(kb_with_study) == before


def test_file_not_utf8(kb_with_study, tmp_path):
    path = tmp_path / "latin.yaml"
    path.write_bytes("studies:\n  - id: m\u00fcller\n".encode("latin-1"))
    with pytest.raises(KBError, match=r"latin.yaml: not UTF-8 text \(byte \d+\); save the file as UTF-8"):
        kb_with_study.add_file(path)


def test_bad_record_in_second_file_writes_nothing_of_the_first(kb_with_study, tmp_path):
    good, bad = tmp_path / "a.yaml", tmp_path / "b.yaml"
    good.write_text("studies:\n  - id: fine\n    soc_direction: decrease\n", encoding="utf-8")
    bad.write_text("studies:\n  - id: broken\n    soc_direction: sideways\n", encoding="utf-8")
    before = snapshot(kb_with_study)
    with pytest.raises(KBError, match=r"b.yaml: studies\[0\] 'broken': field 'soc_direction'"):
        kb_with_study.add_file(good, bad)
    assert snapshot(kb_with_study) == before

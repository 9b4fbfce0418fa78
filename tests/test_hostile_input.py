"""Hostile input: every case is refused with one short line, in bounded time and memory,
and the database is exactly as it was.

Each case runs in a child process (this file run as a script) under an address-space
limit of the memory it had plus the case's budget, and a time limit, so that a regression
(an alias bomb expanding to gigabytes, a recursion, a quadratic loop) fails its row
instead of stalling or killing the test run. The child reports, per case, the message,
the exception type, the seconds taken and whether a dump of the whole database (every
table, the audit included) is unchanged.

Run by hand:  python tests/test_hostile_input.py FOLDER CASE...  (prints one JSON line per case)
"""

from __future__ import annotations

import codecs
import datetime
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import require

from kb import KnowledgeBase
from kb.records import MAX_LINK_ID, MAX_SHOWN_CHARS

MB = 2**20
# Generous bounds: a loaded 2-core machine runs each case in well under a second; before
# the fixes the alias bomb took 10 s and 1.7 GB, deep nesting recursed without bound.
SECONDS = 10
MEMORY = 200 * MB
# The longest refusal is the fixed text, the tmp path, at most MAX_SHOWN_CHARS of a value
# (escaped, so up to 4 characters each) and a list of allowed fields or values.
MAX_MESSAGE = 1200

SOURCE = {"key": "smith2024", "title": "Warming and soil carbon", "year": 2024}
STUDY = {"id": "S", "source_key": "smith2024", "soc_direction": "decrease", "lat": 61.8,
         "summary": "Soil warming lowered topsoil SOC."}
CLAIM = {"id": "c1", "text": "Warming depletes SOC."}
BASE = {"sources": [SOURCE], "studies": [STUDY], "claims": [CLAIM],
        "effects": [{"study_id": "S", "response": "soc_stock", "direction": "decrease"}],
        "claim_links": [{"claim_id": "c1", "study_id": "S", "relation": "supports"}]}


def alias_bomb(levels: int) -> str:
    """The 'billion laughs' in a record's notes: each anchored list holds nine aliases of the
    one before, so the last stands for 9**levels strings (558 bytes for 10 levels)."""
    lists = ["&a0 [lol,lol,lol,lol,lol,lol,lol,lol,lol]"]
    lists += [f"&a{i} [" + ",".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, levels)]
    return ("studies:\n  - id: x\n    soc_direction: decrease\n    notes:\n"
            + "".join(f"      - {item}\n" for item in lists))


def effect_yaml(**numbers) -> str:
    fields = {"study_id": "S", "response": "soc_stock", "measure": "ROM", "source_location": "Table 1",
              **numbers}
    return "effects:\n  - " + "\n    ".join(f"{k}: {v}" for k, v in fields.items()) + "\n"


def study_yaml(**fields) -> str:
    fields = {"id": "new-1", "soc_direction": "decrease", **fields}
    return "studies:\n  - " + "\n    ".join(f"{k}: {v}" for k, v in fields.items()) + "\n"


def source_json(**fields) -> str:
    return json.dumps({"sources": [{"key": "doe2025", "title": "T", "year": 2025, **fields}]})


def _shared_lists(levels: int) -> list:
    """The alias bomb's shape built in memory: 9**levels leaves, 9 * levels lists."""
    value = ["lol"] * 9
    for _ in range(levels):
        value = [value] * 9
    return value


class Sparse:
    """A file of ``size`` zero bytes that takes no disk space (and no time to write)."""

    def __init__(self, size: int):
        self.size = size

    def write(self, path: Path) -> None:
        with open(path, "wb") as handle:
            handle.truncate(self.size)


class Later:
    """An input built only when its case runs (in the child): tens of MB each, never all at once."""

    def __init__(self, build):
        self.build = build


def big_id() -> str:
    return "x" * 10_000_000

# (case, file name, content: text, bytes or a writer, expected fragment, memory budget)
FILE_CASES = [
    ("yaml alias bomb 9 levels", "bomb.yaml", alias_bomb(9),
     "bomb.yaml line 5: YAML anchors and aliases (&name, *name) are not allowed", MEMORY),
    ("yaml alias bomb 10 levels", "bomb.yaml", alias_bomb(10),
     "bomb.yaml line 5: YAML anchors and aliases", MEMORY),
    ("yaml one anchor", "a.yaml", "studies:\n  - &s {id: a, soc_direction: decrease}\n",
     "a.yaml line 2: YAML anchors and aliases", MEMORY),
    ("yaml merge key", "a.yaml", "studies:\n  - id: a\n    soc_direction: decrease\n    <<: {biome: boreal}\n",
     "a.yaml: studies[0] 'a': unknown field '<<'", MEMORY),
    ("yaml python tag", "a.yaml", "studies: !!python/object/apply:os.system [ls]\n",
     "a.yaml line 1: YAML tags ('tag:yaml.org,2002:python/object/apply:os.system') are not allowed",
     MEMORY),
    ("yaml 20,000 flow levels", "deep.yaml", "studies: " + "[" * 20_000 + "]" * 20_000 + "\n",
     "deep.yaml line 1: nested deeper than 8 levels (MAX_NESTING)", MEMORY),
    ("yaml 200 block levels", "deep.yaml", "".join("  " * i + "-\n" for i in range(200)),
     "deep.yaml line 9: nested deeper than 8 levels (MAX_NESTING)", MEMORY),
    ("json 20,000 levels", "deep.json", '{"studies": ' + "[" * 20_000 + "]" * 20_000 + "}",
     "deep.json: nested deeper than 8 levels (MAX_NESTING)", MEMORY),
    ("json 9 levels", "deep.json", '{"studies": [{"id": "a", "notes": [[[[[[["x"]]]]]]]}]}',
     "deep.json: nested deeper than 8 levels (MAX_NESTING)", MEMORY),
    ("yaml repeated key", "dup.yaml", "studies:\n  - id: a\n    soc_direction: decrease\n    id: b\n",
     "dup.yaml line 4: YAML error: repeated key 'id' in one mapping", MEMORY),
    ("yaml repeated table", "dup.yaml", "studies: []\nstudies: []\n",
     "dup.yaml line 2: YAML error: repeated key 'studies'", MEMORY),
    ("json repeated key", "dup.json", '{"studies": [{"id": "a", "soc_direction": "decrease", "id": "b"}]}',
     "dup.json: repeated key 'id' in one JSON object", MEMORY),
    ("csv repeated column", "studies.csv", "id,soc_direction,id\na,decrease,b\n",
     "studies.csv line 1: column 'id' appears twice", MEMORY),
    ("yaml SD 1e200", "e.yaml", effect_yaml(mean_t=10, sd_t="1.0e+200", n_t=5, mean_c=8, sd_c=1, n_c=5),
     "e.yaml: effects[0]: field 'vi': the arm numbers (mean_t=10, sd_t=1e+200, n_t=5, mean_c=8, sd_c=1, "
     "n_c=5) give vi = inf for measure ROM", MEMORY),
    ("yaml means 1e308 and 1e-308", "e.yaml",
     effect_yaml(mean_t="1.0e+308", sd_t=1, n_t=5, mean_c="1.0e-308", sd_c=1, n_c=5),
     "e.yaml: effects[0]: field 'yi': the arm numbers (mean_t=1e+308", MEMORY),
    ("yaml means only 1e308 and 1e-308", "e.yaml", effect_yaml(mean_t="1.0e+308", mean_c="1.0e-308"),
     "e.yaml: effects[0]: field 'yi': the arm numbers (mean_t=1e+308, mean_c=1e-308) give yi = inf", MEMORY),
    ("yaml MD overflow", "e.yaml", effect_yaml(measure="MD", mean_t="1.0e+308", mean_c="-1.0e+308"),
     "e.yaml: effects[0]: field 'yi': the arm numbers (mean_t=1e+308, mean_c=-1e+308) give yi = inf", MEMORY),
    ("yaml SMD with zero SDs", "e.yaml", effect_yaml(measure="SMD", mean_t=10, sd_t=0, n_t=5, mean_c=8, sd_c=0, n_c=5),
     "e.yaml: effects[0]: field 'yi': the arm numbers (mean_t=10, sd_t=0, n_t=5, mean_c=8, sd_c=0, n_c=5) "
     "give yi = inf for measure SMD", MEMORY),
    ("yaml SMD of 1 + 1", "e.yaml", effect_yaml(measure="SMD", mean_t=10, sd_t=1, n_t=1, mean_c=8, sd_c=1, n_c=1),
     "e.yaml: effects[0]: field 'n_t': the arm numbers give no SMD effect size", MEMORY),
    ("yaml SD underflow", "e.yaml", effect_yaml(mean_t=10, sd_t="1.0e-200", n_t=5, mean_c=8, sd_c="1.0e-200", n_c=5),
     "e.yaml: effects[0]: field 'vi': the arm numbers", MEMORY),
    ("yaml mean .inf", "e.yaml", effect_yaml(measure="MD", mean_t=".inf", mean_c=1),
     "e.yaml: effects[0]: field 'mean_t': inf is not a finite number", MEMORY),
    ("yaml lat .nan", "s.yaml", study_yaml(lat=".nan"),
     "s.yaml: studies[0] 'new-1': field 'lat': nan is not a finite number", MEMORY),
    ("json NaN", "s.json", '{"studies": [{"id": "a", "soc_direction": "decrease", "lat": NaN}]}',
     "s.json: NaN is not a number; numbers must be finite", MEMORY),
    ("json 1e400", "s.json", '{"studies": [{"id": "a", "soc_direction": "decrease", "lat": 1e400}]}',
     "s.json: '1e400' is too large for a number", MEMORY),
    ("json 5,000-digit integer", "s.json", '{"studies": [{"id": "a", "soc_direction": "decrease", "start_year": '
     + "9" * 5000 + "}]}", "s.json: '99999", MEMORY),
    ("csv lat nan", "studies.csv", "id,soc_direction,lat\na,decrease,nan\n",
     "studies.csv: studies line 2 'a': field 'lat': 'nan' is not a finite number", MEMORY),
    ("yaml n_t yes", "e.yaml", effect_yaml(mean_t=10, sd_t=1, n_t="yes", mean_c=8, sd_c=1, n_c=5),
     "e.yaml: effects[0]: field 'n_t': 'yes' is invalid: must be a valid integer", MEMORY),
    ("yaml warming true", "s.yaml", study_yaml(warming_c="true"),
     "s.yaml: studies[0] 'new-1': field 'warming_c': True is not a number", MEMORY),
    ("json warming true", "s.json", '{"studies": [{"id": "a", "soc_direction": "decrease", "warming_c": true}]}',
     "s.json: studies[0] 'a': field 'warming_c': True is not a number", MEMORY),
    ("javascript url", "s.json", source_json(url="javascript:alert(1)"),
     "s.json: sources[0] 'doe2025': field 'url': 'javascript:alert(1)' is invalid: a URL starts with http://",
     MEMORY),
    ("data url", "s.json", source_json(url="data:text/html,<script>alert(1)</script>"),
     "field 'url': 'data:text/html,<script>alert(1)</script>' is invalid", MEMORY),
    ("url with a quote", "s.json", source_json(url='https://example.org/"onmouseover="x'),
     "field 'url': 'https://example.org/\"onmouseover=\"x' is invalid", MEMORY),
    ("doi with markup", "s.json", source_json(doi="10.1234/<script>alert(1)</script>"),
     "field 'doi': '10.1234/<script>alert(1)</script>' is invalid: a DOI looks like 10.1038/nature20150", MEMORY),
    ("doi 10.1 with markup", "s.json", source_json(doi="10.1/<script>"),
     "field 'doi': '10.1/<script>' is invalid: a DOI looks like", MEMORY),
    ("doi with a quote", "s.json", source_json(doi="10.1234/a\"b"), "field 'doi': '10.1234/a\"b' is invalid", MEMORY),
    ("doi with a space", "s.json", source_json(doi="10.1234/a b"), "field 'doi': '10.1234/a b' is invalid", MEMORY),
    ("doi with ESC", "s.json", source_json(doi="10.1234/a\x1b[2J"), "field 'doi': '10.1234/a\\x1b[2J' is invalid",
     MEMORY),
    ("ESC in a title", "s.json", source_json(title="T\x1b]0;pwned\x07"),
     "field 'title': 'T\\x1b]0;pwned\\x07' holds the control character '\\x1b' at position 1", MEMORY),
    ("C1 CSI in a summary", "s.yaml", study_yaml(summary='"a\\x9b31m"'),
     "field 'summary': 'a\\x9b31m' holds the control character '\\x9b'", MEMORY),
    ("tab in a one-line field", "s.yaml", study_yaml(site='"a\\tb"'),
     "field 'site': 'a\\tb' holds the control character '\\t' at position 1; one-line fields", MEMORY),
    ("lone carriage return", "s.yaml", study_yaml(notes='"safe\\revil"'),
     "field 'notes': 'safe\\revil' holds the control character '\\r'", MEMORY),
    ("escaped NUL in json", "s.json", '{"studies": [{"id": "a", "soc_direction": "decrease", "notes": "a\\u0000b"}]}',
     "s.json: studies[0] 'a': field 'notes': 'a\\x00b' holds the control character '\\x00'", MEMORY),
    ("raw NUL byte in yaml", "s.yaml", b"studies:\n  - id: a\x00\n", "s.yaml line 2: a NUL byte", MEMORY),
    ("raw NUL byte in csv row", "studies.csv", b"id,soc_direction\na\x00,decrease\n",
     "studies.csv line 2: a NUL byte", MEMORY),
    ("csv field over the csv module limit", "studies.csv",
     "id,soc_direction,summary\na,decrease,ok\nb,decrease," + "x" * 140_000 + "\n",
     "studies.csv line 3: a field is longer than 131,072 characters", MEMORY),
    ("csv summary over MAX_TEXT_CHARS", "studies.csv", "id,soc_direction,summary\nb,decrease," + "x" * 100_001 + "\n",
     "studies.csv: studies line 2 'b': field 'summary': 'xxxxxxxxxx", MEMORY),
    ("csv 10 MB id", "studies.csv", Later(lambda: f"id,soc_direction\n\"{big_id()}\",decrease\n"),
     "studies.csv line 2: a field is longer than 131,072 characters", MEMORY),
    ("json 10 MB id", "s.json", Later(lambda: json.dumps({"studies": [{"id": big_id(), "soc_direction": "decrease"}]})),
     "s.json: studies[0] 'xxxxxxxxxx", MEMORY),
    ("yaml 10 MB id", "s.yaml", Later(lambda: study_yaml(id=big_id())),
     "too long (10,000,000 characters); at most 200 characters (MAX_ID_CHARS)", MEMORY),
    ("json 10 MB field name", "s.json", Later(lambda: '{"studies": [{"id": "a", "soc_direction": "decrease", "'
                                            + "f" * 10_000_000 + '": 1}]}'),
     "s.json: studies[0] 'a': unknown field 'ffff", MEMORY),
    ("json 10 MB table name", "s.json", Later(lambda: '{"' + "t" * 10_000_000 + '": []}'),
     "s.json: unknown table 'tttt", MEMORY),
    ("json 60 MB summary", "s.json",
     Later(lambda: json.dumps({"studies": [{"id": "a", "soc_direction": "decrease", "summary": "x" * 60_000_000}]})),
     "field 'summary': 'xxxx", 6 * 60 * MB),  # the file, its text and the parsed string
    ("yaml 60 MB summary", "s.yaml", Sparse(60_000_000),
     "s.yaml: larger than the 16 MiB a .yaml record file may hold (MAX_YAML_BYTES)", MEMORY),
    ("json over 64 MiB", "s.json", Sparse(65 * MB),
     "s.json: larger than the 64 MiB a .json record file may hold (MAX_FILE_BYTES)", MEMORY),
    ("utf-16 with BOM", "studies.csv", codecs.BOM_UTF16_LE + "id,soc_direction\na,decrease\n".encode("utf-16-le"),
     "studies.csv: UTF-16 text; save the file as UTF-8", MEMORY),
    ("utf-16 without BOM", "studies.csv", "id,soc_direction\na,decrease\n".encode("utf-16-le"),
     "studies.csv line 1: a NUL byte; a record file is UTF-8 text (a UTF-16 file? save it as UTF-8)", MEMORY),
    ("latin-1", "studies.csv", "id,soc_direction,site\na,decrease,M\u00fcnchen\n".encode("latin-1"),
     "studies.csv: not UTF-8 text (byte 34); save the file as UTF-8", MEMORY),
    ("link id 2**63-1", "l.yaml", f"claim_links:\n  - id: {2**63 - 1}\n    claim_id: c1\n    study_id: S\n"
     "    relation: contradicts\n",
     f"l.yaml: claim_links[0] '{2**63 - 1}': field 'id': {2**63 - 1} is invalid: link ids run from 1 to "
     f"{MAX_LINK_ID:,} (MAX_LINK_ID)", MEMORY),
    ("link id not a number", "l.yaml", "claim_links:\n  - id: first\n    claim_id: c1\n    study_id: S\n"
     "    relation: contradicts\n",
     "l.yaml: claim_links[0] 'first': field 'id': 'first' is invalid: must be a valid integer", MEMORY),
    ("link id true", "l.yaml", "claim_links:\n  - id: true\n    claim_id: c1\n    study_id: S\n"
     "    relation: contradicts\n", "field 'id': True is not a number", MEMORY),
]

# (case, table, record, expected fragment): records given to kb.add_records
RECORD_CASES = [
    ("10 MB id", "studies", Later(lambda: {"id": big_id(), "soc_direction": "decrease"}),
     "studies[0] 'xxxxxxxxxx"),
    ("60 MB summary", "studies", Later(lambda: {"id": "a", "soc_direction": "decrease", "summary": "x" * 60_000_000}),
     "studies[0] 'a': field 'summary': 'xxxx"),
    ("NaN lat", "studies", {"id": "a", "soc_direction": "decrease", "lat": float("nan")},
     "studies[0] 'a': field 'lat': nan is not a finite number"),
    ("boolean warming", "studies", {"id": "a", "soc_direction": "decrease", "warming_c": True},
     "studies[0] 'a': field 'warming_c': True is not a number"),
    ("huge integer", "studies", {"id": "a", "soc_direction": "decrease", "start_year": 10**5000},
     "studies[0] 'a': field 'start_year': <an integer of 16610 bits> is invalid"),
    ("nested list in text", "studies", {"id": "a", "soc_direction": "decrease", "notes": [[[[[[[["x"] * 1000]]]]]]]},
     "studies[0] 'a': field 'notes': [[[...]]] is invalid: must be a valid string"),
    ("shared list in text", "studies",  # the alias bomb's shape, built in memory: repr would never end
     Later(lambda: {"id": "a", "soc_direction": "decrease", "notes": _shared_lists(levels=10)}),
     "studies[0] 'a': field 'notes': [[[...], [...], [...], [...], ...], [[...], [...], [...], [...], ...], "),
    ("link id 2**63-1", "claim_links", {"id": 2**63 - 1, "claim_id": "c1", "study_id": "S", "relation": "contradicts"},
     "field 'id': 9223372036854775807 is invalid: link ids run from 1 to"),
    ("SD 1e200", "effects", {"study_id": "S", "response": "soc_stock", "measure": "ROM", "mean_t": 10,
                             "sd_t": 1e200, "n_t": 5, "mean_c": 8, "sd_c": 1, "n_c": 5, "source_location": "T1"},
     "effects[0]: field 'vi': the arm numbers (mean_t=10, sd_t=1e+200"),
    ("many mechanisms", "studies", {"id": "a", "soc_direction": "decrease", "mechanisms": ["priming"] * 10_000},
     "field 'mechanisms': ['priming', 'priming', 'priming', 'priming', ...] is invalid: too long (10,000 items); "
     "at most 50 items (MAX_LIST_ITEMS)"),
    ("vocabulary term with ESC", "studies", {"id": "a", "soc_direction": "decrease\x1b[2J"},
     "field 'soc_direction': 'decrease\\x1b[2J' holds the control character '\\x1b'"),
]

# (case, table, key, changes, expected fragment): kb.update (the CLI update path)
UPDATE_CASES = [
    ("NaN lat no longer clears lat", "studies", "S", {"lat": float("nan")},
     "'S': field 'lat': nan is not a finite number"),
    ("boolean warming", "studies", "S", {"warming_c": True}, "'S': field 'warming_c': True is not a number"),
    ("terminal escape", "studies", "S", {"summary": "ok\x1b[2J\x1b[H"}, "'S': field 'summary': 'ok\\x1b[2J"),
    ("javascript url", "sources", "smith2024", {"url": "javascript:alert(1)"},
     "'smith2024': field 'url': 'javascript:alert(1)' is invalid"),
    ("60 MB summary", "studies", "S", Later(lambda: {"summary": "x" * 60_000_000}), "(60,000,000 characters)"),
]

# (case, CLI arguments after --db, file to write first (name, content) or None, expected fragment)
CLI_CASES = [
    ("add an alias bomb", ["add", "{folder}/bomb.yaml"], ("bomb.yaml", alias_bomb(10)),
     "bomb.yaml line 5: YAML anchors and aliases"),
    ("add 20,000 levels", ["add", "{folder}/deep.json"], ("deep.json", "[" * 20_000 + "]" * 20_000),
     "deep.json: nested deeper than 8 levels"),
    ("add a long csv field", ["add", "{folder}/studies.csv"],
     ("studies.csv", "id,soc_direction,summary\nb,decrease," + "x" * 140_000 + "\n"),
     "studies.csv line 2: a field is longer than 131,072 characters"),
    ("update lat=nan", ["update", "study", "S", "lat=nan"], None, "'S': field 'lat': nan is not a finite number"),
    ("update lat=1e400", ["update", "study", "S", "lat=1e400"], None, "'S': field 'lat': inf is not a finite number"),
    ("update doi with markup", ["update", "source", "smith2024", "doi=10.1234/<b>x</b>"], None,
     "'smith2024': field 'doi': '10.1234/<b>x</b>' is invalid"),
]

CASES = ([("file", *c) for c in FILE_CASES] + [("records", *c) for c in RECORD_CASES]
         + [("update", *c) for c in UPDATE_CASES] + [("cli", *c) for c in CLI_CASES])
IDS = [f"{c[0]}: {c[1]}" for c in CASES]


def expected(case: tuple) -> str:
    return case[4] if case[0] == "file" else case[-1]


# -- the child: one process runs every case under limits ---------------------------------

def _dump(path: Path) -> str:
    import sqlite3

    with sqlite3.connect(path) as conn:
        return "\n".join(conn.iterdump())


def _prepare(case: tuple, folder: Path):
    """The case's input, built before the limits apply (it is the input, not the work)."""
    kind = case[0]
    if kind == "file":
        _, _, name, content, _, _ = case
        path = folder / name
        content = content.build() if isinstance(content, Later) else content
        if isinstance(content, Sparse):
            content.write(path)
        elif isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
        return path
    if kind == "cli":
        _, _, args, file, _ = case
        if file:
            (folder / file[0]).write_text(file[1], encoding="utf-8")
        return [a.format(folder=folder) for a in args]
    value = case[3] if kind == "records" else case[4]
    return value.build() if isinstance(value, Later) else value


def _act(case: tuple, db: Path, prepared) -> str:
    """Run the hostile action; return the refusal's message (a success returns '')."""
    from kb import KBError

    kind = case[0]
    if kind == "cli":
        from click.testing import CliRunner

        from kb.cli import cli

        result = CliRunner().invoke(cli, ["--db", str(db), *prepared])
        if result.exception and not isinstance(result.exception, SystemExit):
            raise result.exception
        return result.output.strip().removeprefix("Error: ") if result.exit_code else ""
    with KnowledgeBase(db, seed=False) as kb:
        try:
            if kind == "file":
                kb.add_file(prepared)
            elif kind == "records":
                kb.add_records({case[2]: [prepared]})
            else:
                kb.update(case[2], case[3], prepared)
        except KBError as exc:
            return str(exc)
    return ""


def _memory_now() -> int:
    with open("/proc/self/status") as status:
        line = next(line for line in status if line.startswith("VmSize:"))
    return int(line.split()[1]) * 1024


def _on_alarm(*_):
    raise TimeoutError(f"took more than {SECONDS} s")


def run_case(case: tuple, folder: Path) -> dict:
    import resource

    folder.mkdir()
    db = folder / "kb.db"
    with KnowledgeBase(db, seed=False) as kb:
        kb.add_records(BASE)
    before = _dump(db)
    prepared = _prepare(case, folder)
    budget = case[5] if case[0] == "file" else MEMORY
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    result = {"message": "", "error": ""}
    start = time.perf_counter()
    signal.signal(signal.SIGALRM, _on_alarm)
    signal.alarm(SECONDS * 2)
    try:
        limit = _memory_now() + budget
        resource.setrlimit(resource.RLIMIT_AS, (limit if hard == resource.RLIM_INFINITY else min(limit, hard), hard))
        result["message"] = _act(case, db, prepared)
    except BaseException as exc:  # report anything, a MemoryError or a timeout included
        result["error"] = f"{type(exc).__name__}: {str(exc)[:300]}"
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
        signal.alarm(0)
    result["seconds"] = time.perf_counter() - start
    del prepared
    result["unchanged"] = _dump(db) == before
    return result


def main(folder: str, names: list[str]) -> None:
    by_id = dict(zip(IDS, CASES, strict=True))
    for number, name in enumerate(names):
        result = run_case(by_id[name], Path(folder) / str(number))
        print(json.dumps({"id": name, **result}), flush=True)


# -- the tests -----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def results(tmp_path_factory) -> dict[str, dict]:
    require(sys.platform == "linux", "memory limits are read from /proc (Linux)")
    folder = tmp_path_factory.mktemp("hostile")
    child = subprocess.run([sys.executable, __file__, str(folder), *IDS], capture_output=True,
                           text=True, timeout=900, cwd=Path(__file__).parent,
                           env=os.environ | {"OPENBLAS_NUM_THREADS": "1"})
    found = {}
    for line in child.stdout.splitlines():
        row = json.loads(line)
        found[row.pop("id")] = row
    found["stderr"] = child.stderr[-2000:]
    return found


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_hostile_input_is_refused_in_one_line_and_nothing_written(results, case, tmp_path_factory):
    name = f"{case[0]}: {case[1]}"
    assert name in results, f"the child process did not report this case: {results['stderr']}"
    got = results[name]
    assert not got["error"], f"not a one-line refusal: {got['error']}"
    message = got["message"]
    assert message, "accepted, but should be refused"
    assert "\n" not in message and "\x1b" not in message and "\x00" not in message
    assert len(message) <= MAX_MESSAGE, f"message of {len(message)} characters"
    assert expected(case) in message
    assert got["seconds"] < SECONDS
    assert got["unchanged"], "the database changed"


def test_messages_quote_values_cut_before_escaping():
    from kb.records import shown

    assert shown("\x1b" * 10_000_000).startswith("'\\x1b")
    assert len(shown("\x1b" * 10_000_000)) <= 4 * MAX_SHOWN_CHARS + 40  # '\x1b' is 4 characters


# -- automatic ids -------------------------------------------------------------------------

EFFECT = {"study_id": "S", "response": "soc_stock", "direction": "decrease"}


@pytest.mark.parametrize("stored,removed,added,expected_ids", [
    (2, ["S/e1"], 1, ["S/e2", "S/e3"]),  # numbered from the count, this gave a second S/e2
    (3, ["S/e2"], 2, ["S/e1", "S/e3", "S/e4", "S/e5"]),
    (2, ["S/e1", "S/e2"], 1, ["S/e1"]),  # none left: numbering starts again
])
def test_effect_ids_follow_the_highest_number(tmp_path, stored, removed, added, expected_ids):
    with KnowledgeBase(tmp_path / "kb.db", seed=False) as kb:
        kb.add_records({**BASE, "effects": [EFFECT] * stored})
        for effect_id in removed:
            kb.remove("effects", effect_id)
        kb.add_records({"effects": [EFFECT] * added})
        assert [r[0] for r in kb.db.execute("SELECT id FROM effects ORDER BY id")] == expected_ids


def test_effect_ids_skip_ids_given_in_the_same_batch(tmp_path):
    with KnowledgeBase(tmp_path / "kb.db", seed=False) as kb:
        kb.add_records({**BASE, "effects": [EFFECT, dict(EFFECT, id="S/e7"), EFFECT]})
        assert [r[0] for r in kb.db.execute("SELECT id FROM effects ORDER BY rowid")] == ["S/e8", "S/e7", "S/e9"]


def test_link_ids_after_a_huge_stored_id_are_the_lowest_free(tmp_path):
    """A base written before link ids were bounded may hold 2**63 - 1: the next id stays in range."""
    with KnowledgeBase(tmp_path / "kb.db", seed=False) as kb:
        kb.add_records(BASE)
        with kb.write():
            kb.db.execute("INSERT INTO claim_links (id, claim_id, study_id, relation) VALUES (?, ?, ?, ?)",
                          [2**63 - 1, "c1", "S", "contradicts"])
        kb.add_records({"claims": [{"id": "c2", "text": "x"}],
                        "claim_links": [{"claim_id": "c2", "study_id": "S", "relation": "supports"},
                                        {"claim_id": "c2", "other_claim_id": "c1", "relation": "refines"}]})
        assert [r[0] for r in kb.db.execute("SELECT id FROM claim_links ORDER BY id")] == [1, 2, 3, 2**63 - 1]


# -- exports that can be added back --------------------------------------------------------

@pytest.mark.parametrize("fmt,name", [("json", "out.json"), ("yaml", "out.yaml"), ("csv", "out")])
def test_export_refuses_a_stored_infinity(tmp_path, fmt, name):
    """A base written before numbers had to be finite: export names the record instead of
    writing a file that cannot be added back (or, in JSON, non-standard Infinity)."""
    from kb import KBError

    with KnowledgeBase(tmp_path / "kb.db", seed=False) as kb:
        kb.add_records(BASE)
        with kb.write():
            kb.db.execute("UPDATE effects SET yi = ? WHERE id = 'S/e1'", [float("inf")])
        with pytest.raises(KBError, match=r"effects 'S/e1': field 'yi' holds inf, which a record file "
                                          r"cannot hold \(numbers must be finite\)"):
            kb.export(tmp_path / name, fmt)
    assert not (tmp_path / name).exists()


# (YAML text, what a record file reads, what PyYAML's YAML 1.1 safe_load reads)
YAML_SCALARS = [("yes", "yes", True), ("No", "No", False), ("on", "on", True), ("off", "off", False),
                ("010", 10, 8), ("1:30", "1:30", 90), ("0x1F", "0x1F", 31), ("1_000", "1_000", 1000),
                ("2024-01-02", "2024-01-02", datetime.date(2024, 1, 2)),
                ("true", True, True), ("false", False, False), ("1.5", 1.5, 1.5), ("-7", -7, -7)]


@pytest.mark.parametrize("text,as_written,yaml_1_1", YAML_SCALARS, ids=[c[0] for c in YAML_SCALARS])
def test_yaml_reads_words_and_numbers_as_written(text, as_written, yaml_1_1):
    """YAML 1.1 reads yes/on as true, 010 as 8, 1:30 as 90: record files read them as written."""
    import yaml

    from kb.files import _RecordLoader

    assert yaml.load(f"a: {text}\n", Loader=_RecordLoader) == {"a": as_written}
    assert yaml.safe_load(f"a: {text}\n") == {"a": yaml_1_1}


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])

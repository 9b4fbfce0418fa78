"""Concurrent writers lose nothing; a killed import leaves the database as it was."""

from __future__ import annotations

import json
import signal
import subprocess
import sys

from kb import KnowledgeBase

WRITER = """
import sys
from kb import KnowledgeBase
kb = KnowledgeBase(sys.argv[1], seed=False)
for i in range(500):
    kb.add_study({"id": f"{sys.argv[2]}-{i}", "soc_direction": "not_reported",
                  "summary": "concurrent writer " + sys.argv[2]})
kb.close()
"""


def test_two_processes_adding_500_records_each_lose_none(tmp_path):
    db = tmp_path / "shared.db"
    KnowledgeBase(db, seed=False).close()
    writers = [subprocess.Popen([sys.executable, "-c", WRITER, str(db), name]) for name in ("a", "b")]
    assert [w.wait(timeout=300) for w in writers] == [0, 0]
    with KnowledgeBase(db) as kb:
        ids = set(kb.studies()["id"])
        assert len(ids) == 1000 and {"a-499", "b-0"} <= ids
        assert len(kb.changes("studies")) == 1000
        assert kb.db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_killed_import_leaves_the_database_as_it_was(tmp_path):
    db = tmp_path / "kill.db"
    with KnowledgeBase(db) as kb:
        before = kb.counts()
    big = tmp_path / "big.json"
    studies = [{"id": f"k{i}", "soc_direction": "decrease", "biome": "boreal",
                "summary": f"study number {i} of a large import"} for i in range(10_000)]
    big.write_text(json.dumps({"studies": studies}), encoding="utf-8")
    process = subprocess.Popen([sys.executable, "-m", "kb", "--db", str(db), "add", str(big)],
                               stderr=subprocess.PIPE, text=True)
    first = process.stderr.readline()      # printed after the first chunk is inserted, before commit
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=60)
    assert first.startswith("adding records: 1000/10000")
    with KnowledgeBase(db) as kb:
        assert kb.counts() == before
        assert kb.db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        kb.add_study({"id": "after-crash", "soc_direction": "decrease"})  # still writable

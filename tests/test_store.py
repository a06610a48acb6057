"""The results store under concurrency and schema change: two first writers on one fresh store, again and again,
with no error and every record present; a schema-2 store read as it is and migrated by its next writer."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap

import pytest

from benchbox.records import Cell, Record
from benchbox.store import ResultStore

WRITER = textwrap.dedent(
    """
    import sys, time
    from benchbox.records import Cell, Record
    from benchbox.store import ResultStore

    store_dir, name, start = sys.argv[1], sys.argv[2], float(sys.argv[3])
    while time.time() < start:  # both writers open the fresh store at the same moment
        pass
    store = ResultStore(store_dir)
    for i in range(20):
        cell = Cell(name, "ort", "cpu", "fp32", "val", f"v{i}")
        run = store.start_run(f"shared-{i}", "cell", cell)  # the same keys from both writers: insert-or-get
        store.finish_run(run, [Record(cell, "top1", float(i), 10)])
        own = store.start_run(f"{name}-{i}", "cell", cell)
        store.finish_run(own, [Record(cell, "top5", float(i), 10)])
        store.save_chunk(f"key{i:02d}", 0, 10, {"summary": __import__("numpy").zeros(3)})  # same file, both
    store.close()
    """
)


def test_two_first_writers_on_one_fresh_store(tmp_path):
    import time

    for attempt in range(6):
        store_dir = tmp_path / f"store{attempt}"
        start = time.time() + 2.0
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", WRITER, str(store_dir), name, str(start)], stderr=subprocess.PIPE, text=True
            )
            for name in ("a", "b")
        ]
        errors = [p.communicate(timeout=120)[1] for p in procs]
        assert [p.returncode for p in procs] == [0, 0], errors
        assert not any("Error" in e for e in errors), errors
        store = ResultStore(store_dir, read_only=True)
        runs = store.runs()
        assert len({r["cell_key"] for r in runs}) == 60  # 20 shared + 20 of each writer
        assert sum(r.metric == "top5" for r in store.records(latest=False)) == 40
        assert all(r["status"] == "done" for r in runs)
        leftovers = [p.name for p in store_dir.rglob("*") if ".tmp" in p.name]
        assert not leftovers, leftovers


def _schema_2_store(path) -> None:
    """A store as benchbox 0.2 wrote it: no model_id columns, user_version 2, rollback journal."""
    from benchbox.store import SCHEMA

    path.mkdir()
    (path / "predictions").mkdir()
    conn = sqlite3.connect(path / "index.sqlite")
    old_schema = SCHEMA.replace(", model_id TEXT\n);", "\n);").replace(", extra TEXT, model_id TEXT", ", extra TEXT")
    conn.executescript(old_schema)
    conn.execute("PRAGMA user_version = 2")
    conn.execute(
        "INSERT INTO runs (cell_key, kind, model, engine, device, precision, testset, status) VALUES "
        "('k', 'cell', 'm', 'ort', 'cpu', 'fp32', 'val', 'done')"
    )
    conn.execute(
        "INSERT INTO records (run_id, model, engine, device, precision, testset, metric, value) VALUES "
        "(1, 'm', 'ort', 'cpu', 'fp32', 'val', 'top1', 80.0)"
    )
    conn.commit()
    conn.close()


def test_a_schema_2_store_is_read_then_migrated(tmp_path):
    store_dir = tmp_path / "old"
    _schema_2_store(store_dir)
    reader = ResultStore(store_dir, read_only=True)
    (record,) = reader.records()
    assert record.value == 80.0 and record.cell.model_id is None and reader.schema == 2
    reader.close()
    writer = ResultStore(store_dir)
    assert writer.schema == 3
    cell = Cell("m", "ort", "cpu", "fp16", "val", None, "abc")
    writer.finish_run(writer.start_run("k2", "cell", cell), [Record(cell, "top1", 79.0, 300)])
    writer.close()
    values = {r.cell.precision: (r.value, r.cell.model_id) for r in ResultStore(store_dir, read_only=True).records()}
    assert values == {"fp32": (80.0, None), "fp16": (79.0, "abc")}


def test_forget_keeps_the_run_and_says_when(tmp_path):
    store = ResultStore(tmp_path / "s")
    cell = Cell("m", "ort", "cpu", "fp32", "val")
    run = store.start_run("k", "cell", cell)
    store.fail_run(run, "boom", [Record(cell, "failed", None, error="boom")])
    assert [r.metric for r in store.records()] == ["failed"]
    (gone,) = store.forget(failed=True, why="obsolete")
    assert gone["id"] == run and store.records() == []
    kept = next(r for r in store.runs() if r["id"] == run)
    assert kept["status"] == "forgotten" and kept["info"]["forgotten"]["why"] == "obsolete"
    assert kept["info"]["forgotten"]["was"] == "failed"
    from benchbox.errors import UserError

    with pytest.raises(UserError, match="No run 99"):
        store.forget([99])

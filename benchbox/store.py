"""Results store: a SQLite index of runs and records plus per-sample predictions (.npz) on disk.

A run is one cell (model x engine x device x precision x test set x variant, or a latency cell). Its
predictions are written in chunks as they arrive, so an interrupted eval resumes from the last chunk and
ends with the same numbers. Records follow DESIGN.md: one record per number.
"""

from __future__ import annotations

import json
import math
import os
import sqlite3
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from benchbox.exporters.manifest import now_iso

DEFAULT_STORE = "benchbox-results"
RECORD_FIELDS = (
    "model",
    "engine",
    "device",
    "precision",
    "testset",
    "variant",
    "metric",
    "value",
    "n",
    "ci95",
)

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    cell_key TEXT UNIQUE NOT NULL,
    kind TEXT NOT NULL,
    model TEXT, engine TEXT, device TEXT, precision TEXT, testset TEXT, variant TEXT,
    status TEXT NOT NULL,
    error TEXT,
    info TEXT,
    created TEXT, finished TEXT
);
CREATE TABLE IF NOT EXISTS records (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id INTEGER REFERENCES runs(id) ON DELETE CASCADE,
    model TEXT, engine TEXT, device TEXT, precision TEXT, testset TEXT, variant TEXT,
    metric TEXT NOT NULL, value REAL, n INTEGER, ci_lo REAL, ci_hi REAL,
    extra TEXT
);
CREATE TABLE IF NOT EXISTS chunks (
    run_id INTEGER REFERENCES runs(id) ON DELETE CASCADE,
    start INTEGER, stop INTEGER, path TEXT,
    PRIMARY KEY (run_id, start)
);
CREATE INDEX IF NOT EXISTS records_run ON records(run_id);
"""


def make_record(
    cell: dict[str, Any],
    metric: str,
    value: float,
    n: int | None = None,
    ci95: list[float] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """One record: the cell's identity fields plus metric, value, n and ci95 (extras kept alongside)."""
    record = {key: cell.get(key) for key in RECORD_FIELDS[:6]}
    record.update(
        {
            "metric": metric,
            "value": _clean(value),
            "n": n,
            "ci95": [_clean(c) for c in ci95] if ci95 is not None else None,
        }
    )
    record.update({k: v for k, v in extra.items() if v is not None})
    return record


def _clean(value: Any) -> Any:
    if isinstance(value, (float, np.floating)):
        value = float(value)
        return None if math.isnan(value) else value
    if isinstance(value, np.integer):
        return int(value)
    return value


class ResultStore:
    """Open (and create) a store directory. Every write commits at once: a kill loses nothing written."""

    def __init__(self, directory: str | Path = DEFAULT_STORE) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        (self.directory / "predictions").mkdir(exist_ok=True)
        self.db_path = self.directory / "index.sqlite"
        self._conn = sqlite3.connect(str(self.db_path), timeout=30, isolation_level=None)
        self._conn.row_factory = sqlite3.Row
        self._conn.execute("PRAGMA foreign_keys = ON")
        self._conn.execute("PRAGMA journal_mode = WAL")
        self._conn.executescript(SCHEMA)

    def close(self) -> None:
        self._conn.close()

    # -- runs ---------------------------------------------------------------------------------
    def find_run(self, cell_key: str) -> sqlite3.Row | None:
        return self._conn.execute("SELECT * FROM runs WHERE cell_key = ?", (cell_key,)).fetchone()

    def start_run(self, cell_key: str, kind: str, cell: dict[str, Any], info: dict[str, Any] | None = None) -> int:
        """Create the run for a cell, or reopen an unfinished/failed one (its chunks are kept for resuming)."""
        row = self.find_run(cell_key)
        if row is not None:
            self._conn.execute("UPDATE runs SET status = 'running', error = NULL WHERE id = ?", (row["id"],))
            return int(row["id"])
        cur = self._conn.execute(
            "INSERT INTO runs (cell_key, kind, model, engine, device, precision, testset, variant, status, info,"
            " created) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'running', ?, ?)",
            (cell_key, kind, *(cell.get(k) for k in RECORD_FIELDS[:6]), json.dumps(info or {}), now_iso()),
        )
        return int(cur.lastrowid)

    def finish_run(self, run_id: int, records: Iterable[dict[str, Any]], info: dict[str, Any] | None = None) -> None:
        """Store a finished run's records in one transaction (replacing any earlier records of the run)."""
        with self._transaction():
            self._conn.execute("DELETE FROM records WHERE run_id = ?", (run_id,))
            for record in records:
                self._insert_record(run_id, record)
            self._conn.execute(
                "UPDATE runs SET status = 'done', finished = ?, info = COALESCE(?, info) WHERE id = ?",
                (now_iso(), json.dumps(info) if info is not None else None, run_id),
            )

    def fail_run(self, run_id: int, error: str, records: Iterable[dict[str, Any]] = ()) -> None:
        with self._transaction():
            self._conn.execute("DELETE FROM records WHERE run_id = ?", (run_id,))
            for record in records:
                self._insert_record(run_id, record)
            self._conn.execute(
                "UPDATE runs SET status = 'failed', error = ?, finished = ? WHERE id = ?",
                (error, now_iso(), run_id),
            )

    def run_info(self, run_id: int) -> dict[str, Any]:
        row = self._conn.execute("SELECT info FROM runs WHERE id = ?", (run_id,)).fetchone()
        return json.loads(row["info"] or "{}") if row else {}

    def runs(self) -> list[dict[str, Any]]:
        rows = self._conn.execute("SELECT * FROM runs ORDER BY id").fetchall()
        return [{**dict(r), "info": json.loads(r["info"] or "{}")} for r in rows]

    # -- records ------------------------------------------------------------------------------
    def _insert_record(self, run_id: int, record: dict[str, Any]) -> None:
        ci = record.get("ci95") or [None, None]
        extra = {k: v for k, v in record.items() if k not in RECORD_FIELDS}
        self._conn.execute(
            "INSERT INTO records (run_id, model, engine, device, precision, testset, variant, metric, value, n,"
            " ci_lo, ci_hi, extra) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                run_id,
                *(record.get(k) for k in RECORD_FIELDS[:6]),
                record["metric"],
                _clean(record.get("value")),
                record.get("n"),
                _clean(ci[0]),
                _clean(ci[1]),
                json.dumps(extra, default=str),
            ),
        )

    def records_for_run(self, run_id: int) -> list[dict[str, Any]]:
        rows = self._conn.execute("SELECT * FROM records WHERE run_id = ? ORDER BY id", (run_id,)).fetchall()
        return [self._row_to_record(r) for r in rows]

    def records(self, **where: Any) -> list[dict[str, Any]]:
        """All records of finished runs, optionally filtered by field equality."""
        sql = "SELECT records.* FROM records JOIN runs ON runs.id = records.run_id WHERE runs.status != 'running'"
        params: list[Any] = []
        for key, value in where.items():
            if key not in RECORD_FIELDS and key != "metric":
                raise KeyError(key)
            sql += f" AND records.{key} = ?"
            params.append(value)
        rows = self._conn.execute(sql + " ORDER BY records.id", params).fetchall()
        return [self._row_to_record(r) for r in rows]

    @staticmethod
    def _row_to_record(row: sqlite3.Row) -> dict[str, Any]:
        record = {k: row[k] for k in RECORD_FIELDS if k != "ci95"}
        record["ci95"] = [row["ci_lo"], row["ci_hi"]] if row["ci_lo"] is not None else None
        record.update(json.loads(row["extra"] or "{}"))
        return record

    # -- predictions --------------------------------------------------------------------------
    def _chunk_dir(self, run_id: int) -> Path:
        path = self.directory / "predictions" / f"run{run_id}"
        path.mkdir(parents=True, exist_ok=True)
        return path

    def save_chunk(self, run_id: int, start: int, stop: int, arrays: dict[str, np.ndarray]) -> None:
        """Persist the predictions for samples [start, stop) of a run (file first, then the index row)."""
        path = self._chunk_dir(run_id) / f"chunk_{start:09d}.npz"
        tmp = path.with_name(path.name + ".tmp.npz")
        np.savez(tmp, **arrays)
        os.replace(tmp, path)
        self._conn.execute(
            "INSERT OR REPLACE INTO chunks (run_id, start, stop, path) VALUES (?, ?, ?, ?)",
            (run_id, start, stop, str(path.relative_to(self.directory))),
        )

    def load_chunks(self, run_id: int) -> tuple[int, list[dict[str, np.ndarray]]]:
        """Contiguous chunks from sample 0 (a gap ends them) and the sample index where they stop."""
        rows = self._conn.execute("SELECT * FROM chunks WHERE run_id = ? ORDER BY start", (run_id,)).fetchall()
        position, loaded = 0, []
        for row in rows:
            path = self.directory / row["path"]
            if row["start"] != position or not path.is_file():
                break
            try:
                with np.load(path) as data:
                    loaded.append({k: data[k] for k in data.files})
            except Exception:  # a chunk cut short by a kill: recompute from here
                break
            position = row["stop"]
        return position, loaded

    def save_predictions(self, run_id: int, arrays: dict[str, np.ndarray]) -> Path:
        path = self.directory / "predictions" / f"run{run_id}.npz"
        tmp = path.with_name(path.name + ".tmp.npz")
        np.savez_compressed(tmp, **arrays)
        os.replace(tmp, path)
        return path

    def load_predictions(self, run_id: int) -> dict[str, np.ndarray] | None:
        path = self.directory / "predictions" / f"run{run_id}.npz"
        if not path.is_file():
            return None
        with np.load(path) as data:
            return {k: data[k] for k in data.files}

    def drop_chunks(self, run_id: int) -> None:
        for row in self._conn.execute("SELECT path FROM chunks WHERE run_id = ?", (run_id,)).fetchall():
            (self.directory / row["path"]).unlink(missing_ok=True)
        self._conn.execute("DELETE FROM chunks WHERE run_id = ?", (run_id,))

    # -- helpers ------------------------------------------------------------------------------
    def _transaction(self):
        conn = self._conn

        class _Tx:
            def __enter__(self_inner):
                conn.execute("BEGIN IMMEDIATE")

            def __exit__(self_inner, exc_type, *_):
                conn.execute("ROLLBACK" if exc_type else "COMMIT")

        return _Tx()

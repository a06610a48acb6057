"""Results store: a SQLite index of runs and records, plus per-cell prediction files bound to their cell key.

A run is one unit of results (a cell on one set variant, an agreement pair, a set aggregate, a latency cell).
Predictions live in `predictions/<key[:2]>/<key>/` as chunk files (`chunk_<start>_<stop>.npz`) while a cell is
computed and one `final.npz` when it is done; every file embeds its cell key and is checked on load, so a
deleted or replaced index can never attach one model's predictions to another (the index can be rebuilt: the
predictions are found again by key). Reading commands open the index read-only and work on a read-only store.

Long because the index and the prediction files must stay consistent, so both live in this one class.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from benchbox.artifact import now_iso
from benchbox.errors import UserError, printable
from benchbox.records import IDENTITY, Cell, Record

DEFAULT_STORE = "benchbox-results"
STORE_SCHEMA = 2
RUN_IDENTITY = (*IDENTITY, "reference", "batch_size", "mode")

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    cell_key TEXT UNIQUE NOT NULL,
    kind TEXT NOT NULL,
    model TEXT, engine TEXT, device TEXT, precision TEXT, testset TEXT, variant TEXT,
    reference TEXT, batch_size INTEGER, mode TEXT, samples TEXT,
    status TEXT NOT NULL, error TEXT, info TEXT, created TEXT, finished TEXT, seq INTEGER
);
CREATE TABLE IF NOT EXISTS records (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id INTEGER REFERENCES runs(id) ON DELETE CASCADE,
    model TEXT, engine TEXT, device TEXT, precision TEXT, testset TEXT, variant TEXT,
    metric TEXT NOT NULL, value REAL, n INTEGER, ci_lo REAL, ci_hi REAL,
    reference TEXT, batch_size INTEGER, mode TEXT, samples TEXT, flags TEXT, error TEXT, extra TEXT
);
CREATE INDEX IF NOT EXISTS records_run ON records(run_id);
"""
REBUILD_HINT = (
    "Move the store aside (or pass --store NEW_DIR) and run eval again. Predictions already computed are bound "
    "to their cells by content, so a rebuilt index finds and reuses them; only the index is rebuilt."
)


def _disk_error(what: str, exc: BaseException) -> UserError:
    reason = getattr(exc, "strerror", None) or str(exc)
    return UserError(
        f"Cannot write {what}: {reason}.",
        "Free some space (or fix the permissions) and run the same command again: finished work is kept.",
    )


class ResultStore:
    """Open a store directory. Writers create it; `read_only=True` never writes (report, check)."""

    def __init__(self, directory: str | Path = DEFAULT_STORE, read_only: bool = False) -> None:
        self.directory = Path(directory)
        self.read_only = read_only
        self.db_path = self.directory / "index.sqlite"
        if self.directory.exists() and not self.directory.is_dir():
            raise UserError(f"The store {printable(self.directory)} is a file, not a folder.", "Pass --store DIR.")
        if read_only:
            if not self.db_path.is_file():
                raise UserError(
                    f"No results store at {printable(self.directory)}.", "Run benchbox eval/bench with --store DIR."
                )
            self._conn = self._connect_read_only()
        else:
            try:
                (self.directory / "predictions").mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise _disk_error(f"the store {printable(self.directory)}", exc) from exc
            self._conn = self._connect(str(self.db_path))
        self._check_schema()

    # -- opening ---------------------------------------------------------------------------------
    def _connect(self, target: str, uri: bool = False) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(target, timeout=30, isolation_level=None, uri=uri)
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA foreign_keys = ON")
            if not self.read_only:
                conn.execute("PRAGMA journal_mode = DELETE")
            return conn
        except sqlite3.DatabaseError as exc:
            raise self._corrupt(exc) from exc

    def _connect_read_only(self) -> sqlite3.Connection:
        base = self.db_path.resolve().as_uri()
        conn = self._connect(f"{base}?mode=ro", uri=True)
        try:
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
            return conn
        except sqlite3.OperationalError:  # a hot journal it may not roll back: read the file as it stands
            conn.close()
            return self._connect(f"{base}?mode=ro&immutable=1", uri=True)
        except sqlite3.DatabaseError as exc:
            raise self._corrupt(exc) from exc

    def _corrupt(self, exc: BaseException) -> UserError:
        return UserError(
            f"The results store index {printable(self.db_path)} is unreadable ({exc}): it is corrupt or not a "
            "benchbox store.",
            REBUILD_HINT,
        )

    def _check_schema(self) -> None:
        try:
            version = self._conn.execute("PRAGMA user_version").fetchone()[0]
            tables = {r[0] for r in self._conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            if not tables and not self.read_only:
                self._conn.executescript(SCHEMA)
                self._conn.execute(f"PRAGMA user_version = {STORE_SCHEMA}")
                return
        except sqlite3.DatabaseError as exc:
            raise self._corrupt(exc) from exc
        except OSError as exc:
            raise _disk_error(f"the store {printable(self.directory)}", exc) from exc
        if version != STORE_SCHEMA or "runs" not in tables:
            written = "benchbox 0.1 (store schema 1)" if version == 0 and "runs" in tables else f"schema {version}"
            raise UserError(
                f"The results store {printable(self.directory)} was written by {written}; this benchbox reads "
                f"schema {STORE_SCHEMA} only (its predictions were not bound to their cells, so they are not reused).",
                "Keep it for its reports if you like, and evaluate into a new store: --store NEW_DIR (or move it "
                "aside). Nothing in it is read or changed.",
            )

    def close(self) -> None:
        self._conn.close()

    def _write(self, sql: str, params: Iterable[Any] = ()) -> sqlite3.Cursor:
        try:
            return self._conn.execute(sql, tuple(params))
        except sqlite3.OperationalError as exc:
            raise _disk_error(f"the store index {printable(self.db_path)}", exc) from exc

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        self._write("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException as exc:
            self._conn.execute("ROLLBACK")
            if isinstance(exc, sqlite3.OperationalError):
                raise _disk_error(f"the store index {printable(self.db_path)}", exc) from exc
            raise
        try:
            self._conn.execute("COMMIT")
        except sqlite3.OperationalError as exc:
            self._conn.execute("ROLLBACK")
            raise _disk_error(f"the store index {printable(self.db_path)}", exc) from exc

    # -- runs ------------------------------------------------------------------------------------
    def find_run(self, key: str) -> sqlite3.Row | None:
        return self._conn.execute("SELECT * FROM runs WHERE cell_key = ?", (key,)).fetchone()

    def start_run(
        self,
        key: str,
        kind: str,
        cell: Cell | None,
        info: dict[str, Any] | None = None,
        *,
        reference: str | None = None,
        batch_size: int | None = None,
        mode: str | None = None,
        samples: str | None = None,
    ) -> int:
        """Create the run for a key, or reopen an unfinished/failed one (its predictions are kept for resuming)."""
        row = self.find_run(key)
        if row is not None:
            self._write("UPDATE runs SET status = 'running', error = NULL WHERE id = ?", (row["id"],))
            return int(row["id"])
        identity = [getattr(cell, k) if cell else None for k in IDENTITY]
        cur = self._write(
            "INSERT INTO runs (cell_key, kind, model, engine, device, precision, testset, variant, reference,"
            " batch_size, mode, samples, status, info, created) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,'running',?,?)",
            (key, kind, *identity, reference, batch_size, mode, samples, json.dumps(info or {}), now_iso()),
        )
        return int(cur.lastrowid)

    def finish_run(self, run_id: int, records: Iterable[Record], info: dict[str, Any] | None = None) -> None:
        """Store a finished run's records in one transaction (replacing any earlier records of the run)."""
        self._close_run(run_id, "done", None, records, info)

    def fail_run(self, run_id: int, error: str, records: Iterable[Record] = ()) -> None:
        self._close_run(run_id, "failed", printable(error), records, None)

    def _close_run(self, run_id, status, error, records, info) -> None:
        with self._transaction():
            self._conn.execute("DELETE FROM records WHERE run_id = ?", (run_id,))
            for record in records:
                self._insert_record(run_id, record)
            self._conn.execute(
                "UPDATE runs SET status = ?, error = ?, finished = ?, info = COALESCE(?, info),"
                " seq = (SELECT COALESCE(MAX(seq), 0) + 1 FROM runs) WHERE id = ?",
                (status, error, now_iso(), json.dumps(info, default=str) if info is not None else None, run_id),
            )

    def export_runs(self, kinds: tuple[str, ...], done_only: bool = True) -> list[dict[str, Any]]:
        """Runs of some kinds with their records, as plain data (to seed or merge another store)."""
        marks = ",".join("?" * len(kinds))
        status = "status = 'done'" if done_only else "status IN ('done', 'failed')"
        rows = self._conn.execute(
            f"SELECT * FROM runs WHERE {status} AND kind IN ({marks}) ORDER BY id", kinds
        ).fetchall()
        return [{"run": dict(row), "records": self.records_for_run(row["id"])} for row in rows]

    def import_runs(self, runs: Iterable[dict[str, Any]]) -> None:
        """Store runs exported from another store (a cluster worker's), replacing any run with the same key."""
        for item in runs:
            run = item["run"]
            cell = Cell(*(run[k] for k in IDENTITY))
            names = ("reference", "batch_size", "mode", "samples")
            run_id = self.start_run(run["cell_key"], run["kind"], cell, **{k: run[k] for k in names})
            info = json.loads(run["info"] or "{}")
            if run["status"] == "done":
                self.finish_run(run_id, item["records"], info)
            else:
                self.fail_run(run_id, run["error"] or "failed", item["records"])

    def runs(self) -> list[dict[str, Any]]:
        rows = self._conn.execute("SELECT * FROM runs ORDER BY id").fetchall()
        return [{**dict(r), "info": json.loads(r["info"] or "{}")} for r in rows]

    def latest_runs(self) -> list[dict[str, Any]]:
        """For each run identity (kind + cell + reference + batch size + mode), the run finished last."""
        latest: dict[tuple, dict[str, Any]] = {}
        for run in self.runs():
            if run["status"] == "running":
                continue
            identity = (run["kind"], *(run[k] for k in RUN_IDENTITY))
            if identity not in latest or (run["seq"] or 0) > (latest[identity]["seq"] or 0):
                latest[identity] = run
        return sorted(latest.values(), key=lambda r: r["id"])

    # -- records ---------------------------------------------------------------------------------
    def _insert_record(self, run_id: int, record: Record) -> None:
        ci = record.ci95 or (None, None)
        self._conn.execute(
            "INSERT INTO records (run_id, model, engine, device, precision, testset, variant, metric, value, n,"
            " ci_lo, ci_hi, reference, batch_size, mode, samples, flags, error, extra)"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                run_id,
                *(getattr(record.cell, k) for k in IDENTITY),
                record.metric,
                record.value,
                record.n,
                ci[0],
                ci[1],
                record.reference,
                record.batch_size,
                record.mode,
                record.samples,
                json.dumps(list(record.flags)) if record.flags else None,
                printable(record.error) if record.error else None,
                json.dumps(record.extra, default=str) if record.extra else None,
            ),
        )

    def records_for_run(self, run_id: int) -> list[Record]:
        rows = self._conn.execute("SELECT * FROM records WHERE run_id = ? ORDER BY id", (run_id,)).fetchall()
        return [self._row_to_record(r) for r in rows]

    def records(self, latest: bool = True, **where: Any) -> list[Record]:
        """Records of finished runs (only the latest run of each identity unless `latest=False`), filtered by
        field equality."""
        for key in where:
            if key not in (*IDENTITY, "metric", "reference"):
                raise KeyError(key)
        if latest:
            run_ids = [r["id"] for r in self.latest_runs()]
        else:
            run_ids = [r["id"] for r in self.runs() if r["status"] != "running"]
        out = []
        for start in range(0, len(run_ids), 500):
            chunk = run_ids[start : start + 500]
            sql = f"SELECT * FROM records WHERE run_id IN ({','.join('?' * len(chunk))})"
            params: list[Any] = list(chunk)
            for key, value in where.items():
                sql += f" AND {key} IS ?"
                params.append(value)
            out += [self._row_to_record(r) for r in self._conn.execute(sql + " ORDER BY id", params)]
        return out

    @staticmethod
    def _row_to_record(row: sqlite3.Row) -> Record:
        ci = (row["ci_lo"], row["ci_hi"]) if row["ci_lo"] is not None else None
        return Record(
            Cell(*(row[k] for k in IDENTITY)),
            row["metric"],
            row["value"],
            row["n"],
            ci,
            row["reference"],
            row["batch_size"],
            row["mode"],
            row["samples"],
            tuple(json.loads(row["flags"])) if row["flags"] else (),
            row["error"],
            json.loads(row["extra"]) if row["extra"] else {},
        )

    # -- predictions -----------------------------------------------------------------------------
    def prediction_dir(self, key: str) -> Path:
        return self.directory / "predictions" / key[:2] / key

    def _save_npz(self, path: Path, key: str, arrays: dict[str, np.ndarray]) -> None:
        if self.read_only:
            raise RuntimeError("read-only store")
        tmp = path.with_name(path.name + ".tmp.npz")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            np.savez(tmp, cell_key=np.asarray(key), **arrays)
            os.replace(tmp, path)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise _disk_error(f"predictions to {printable(path.parent)}", exc) from exc

    @staticmethod
    def _load_npz(path: Path, key: str) -> dict[str, np.ndarray] | None:
        """The arrays of a prediction file, or None when it is unreadable or belongs to another cell."""
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays = {k: data[k] for k in data.files}
        except Exception:  # truncated, garbage, half-written: recomputed
            return None
        if str(arrays.pop("cell_key", "")) != key:
            return None
        return arrays

    def save_chunk(self, key: str, start: int, stop: int, arrays: dict[str, np.ndarray]) -> None:
        """Persist the predictions for samples [start, stop) of a cell (a kill loses at most one chunk)."""
        self._save_npz(self.prediction_dir(key) / f"chunk_{start:09d}_{stop:09d}.npz", key, arrays)

    def chunk_files(self, key: str) -> tuple[int, list[Path]]:
        """Contiguous readable chunk files from sample 0 (a gap or a bad file ends them) and where they stop."""
        folder = self.prediction_dir(key)
        if not folder.is_dir():
            return 0, []
        position, files = 0, []
        for path in sorted(folder.glob("chunk_*_*.npz")):
            start, stop = (int(x) for x in path.stem.split("_")[1:3])
            if start != position or self._load_npz(path, key) is None:
                break
            files.append(path)
            position = stop
        return position, files

    def load_chunk(self, key: str, path: Path) -> dict[str, np.ndarray]:
        arrays = self._load_npz(path, key)
        if arrays is None:
            raise UserError(f"Prediction chunk {printable(path)} changed while it was read.", REBUILD_HINT)
        return arrays

    def save_final(self, key: str, arrays: dict[str, np.ndarray]) -> None:
        """The finished predictions of a cell; its chunks are then removed."""
        self._save_npz(self.prediction_dir(key) / "final.npz", key, arrays)
        for path in self.prediction_dir(key).glob("chunk_*"):
            path.unlink(missing_ok=True)

    def load_final(self, key: str) -> dict[str, np.ndarray] | None:
        path = self.prediction_dir(key) / "final.npz"
        return self._load_npz(path, key) if path.is_file() else None

    def cell_predictions(self, cell: Cell) -> dict[str, np.ndarray] | None:
        """The finished predictions of the latest run of a cell on a set variant: `summary`, `bad_index`,
        `bad_error`, and `logits` when the eval ran with --keep-logits."""
        for run in reversed(self.latest_runs()):
            if run["kind"] == "cell" and run["status"] == "done" and all(run[k] == getattr(cell, k) for k in IDENTITY):
                return self.load_final(run["cell_key"])
        return None

    def discard_predictions(self, key: str) -> None:
        """Forget a cell's predictions (`--recompute`)."""
        for path in self.prediction_dir(key).glob("*.npz"):
            path.unlink(missing_ok=True)

    def prediction_bytes(self) -> int:
        return sum(p.stat().st_size for p in (self.directory / "predictions").rglob("*.npz"))

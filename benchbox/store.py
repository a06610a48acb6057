"""Results store: a SQLite index of runs and records, plus per-cell prediction files bound to their cell key.

A run is one unit of results (a cell on one set variant, a set aggregate, a latency cell, a lint).
Predictions live in `predictions/<key[:2]>/<key>/` as chunk files (`chunk_<start>_<stop>.npz`) while a cell is
computed and one `final.npz` when it is done; every file embeds its cell key and is checked on load, so a
deleted or replaced index can never attach one model's predictions to another (the index can be rebuilt: the
predictions are found again by key). Reading commands open the index read-only and work on a read-only store.

The index uses SQLite's write-ahead log: a writer killed mid-transaction leaves uncommitted frames that no reader
ever sees (a read-only open reads the committed state, never a torn one), and two processes may create or fill
one store at once (every insert is an insert-or-get, every temporary file name is unique). A run is superseded
by the next run of the same identity; `forget` marks runs as no longer judged, keeping them and saying when.

Long because the index and the prediction files must stay consistent, so both live in this one class.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import sqlite3
import threading
import weakref
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from benchbox.artifact import now_iso
from benchbox.errors import UserError, printable
from benchbox.records import IDENTITY, Cell, Record

DEFAULT_STORE = "benchbox-results"
STORE_SCHEMA = 3
READABLE_SCHEMAS = (2, 3)  # schema 2 lacks model_id: read as unknown identity, migrated by the next writer
RUN_IDENTITY = (*IDENTITY, "reference", "batch_size", "mode")
FINISHED = ("done", "failed")

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    cell_key TEXT UNIQUE NOT NULL,
    kind TEXT NOT NULL,
    model TEXT, engine TEXT, device TEXT, precision TEXT, testset TEXT, variant TEXT,
    reference TEXT, batch_size INTEGER, mode TEXT, samples TEXT,
    status TEXT NOT NULL, error TEXT, info TEXT, created TEXT, finished TEXT, seq INTEGER, model_id TEXT
);
CREATE TABLE IF NOT EXISTS records (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id INTEGER REFERENCES runs(id) ON DELETE CASCADE,
    model TEXT, engine TEXT, device TEXT, precision TEXT, testset TEXT, variant TEXT,
    metric TEXT NOT NULL, value REAL, n INTEGER, ci_lo REAL, ci_hi REAL,
    reference TEXT, batch_size INTEGER, mode TEXT, samples TEXT, flags TEXT, error TEXT, extra TEXT, model_id TEXT
);
CREATE INDEX IF NOT EXISTS records_run ON records(run_id);
"""
MIGRATE_2_TO_3 = (
    "ALTER TABLE runs ADD COLUMN model_id TEXT",
    "ALTER TABLE records ADD COLUMN model_id TEXT",
)
RECOVER_HINT = (
    "Run `benchbox store recover --store DIR` where the store is writable (or any command that writes to it, "
    "e.g. benchbox eval): SQLite then rolls the interrupted transaction back. On read-only media, copy the store "
    "to a writable folder first."
)
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
        _OPEN.add(self)
        self._check_schema()

    def __enter__(self) -> ResultStore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- opening ---------------------------------------------------------------------------------
    def _connect(self, target: str, uri: bool = False) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(target, timeout=60, isolation_level=None, uri=uri)
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA foreign_keys = ON")
            if not self.read_only:
                _use_wal(conn, self.directory)
            return conn
        except sqlite3.OperationalError as exc:
            if "locked" in str(exc):
                raise UserError(
                    f"The results store {printable(self.directory)} stayed locked by another process for a minute.",
                    "Wait for the other benchbox command to finish, or pass --store NEW_DIR.",
                ) from exc
            raise self._corrupt(exc) from exc
        except sqlite3.DatabaseError as exc:
            raise self._corrupt(exc) from exc

    def _connect_read_only(self) -> sqlite3.Connection:
        """Read the committed state in place, or refuse. A crashed writer of a write-ahead-log store left only
        uncommitted frames, which readers skip; a legacy rollback journal it left must be rolled back first."""
        base = self.db_path.resolve().as_uri()
        conn = self._connect(f"{base}?mode=ro", uri=True)
        try:
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
            return conn
        except sqlite3.OperationalError as exc:
            conn.close()
            if _nonempty(self.db_path.with_name(self.db_path.name + "-journal")):
                raise UserError(
                    f"The results store {printable(self.directory)} was left mid-write by a process that stopped; "
                    "reading it now would show a half-written transaction.",
                    RECOVER_HINT,
                ) from exc
            if _nonempty(self.db_path.with_name(self.db_path.name + "-wal")):
                raise UserError(
                    f"The results store {printable(self.directory)} has a write-ahead log this read-only open "
                    f"cannot use ({exc}).",
                    RECOVER_HINT,
                ) from exc
            # nothing uncommitted exists (no journal, no log): the file as it stands is the committed state
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
            if not self.read_only:
                self._create_or_migrate()
            version = self._conn.execute("PRAGMA user_version").fetchone()[0]
            tables = {r[0] for r in self._conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        except sqlite3.DatabaseError as exc:
            raise self._corrupt(exc) from exc
        except OSError as exc:
            raise _disk_error(f"the store {printable(self.directory)}", exc) from exc
        self.schema = version
        if version not in READABLE_SCHEMAS or "runs" not in tables:
            written = "benchbox 0.1 (store schema 1)" if version == 0 and "runs" in tables else f"schema {version}"
            raise UserError(
                f"The results store {printable(self.directory)} was written by {written}; this benchbox reads "
                f"schemas {', '.join(map(str, READABLE_SCHEMAS))} only (its predictions were not bound to their "
                "cells, so they are not reused).",
                "Keep it for its reports if you like, and evaluate into a new store: --store NEW_DIR (or move it "
                "aside). Nothing in it is read or changed.",
            )

    def _create_or_migrate(self) -> None:
        """Create the tables of a fresh store, or add schema 3's columns to a schema-2 one, in one transaction
        (two processes opening a fresh store at once: the second finds the first's tables)."""
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            version = self._conn.execute("PRAGMA user_version").fetchone()[0]
            tables = {r[0] for r in self._conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            if not tables:
                for statement in SCHEMA.split(";"):
                    if statement.strip():
                        self._conn.execute(statement)
                self._conn.execute(f"PRAGMA user_version = {STORE_SCHEMA}")
            elif version == 2 and "runs" in tables:
                for statement in MIGRATE_2_TO_3:
                    self._conn.execute(statement)
                self._conn.execute(f"PRAGMA user_version = {STORE_SCHEMA}")
            self._conn.execute("COMMIT")
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise

    def recover(self) -> None:
        """Roll back what a stopped writer left half-done (opening read-write does it) and fold the log in."""
        if self.read_only:
            raise RuntimeError("read-only store")
        self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def close(self) -> None:
        """Close the index; a writer folds its log into the database first (a clean store is one file)."""
        if self._conn is None:
            return
        if not self.read_only:
            with contextlib.suppress(sqlite3.Error):
                self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        self._conn.close()
        self._conn = None

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
        """Create the run for a key, or reopen an unfinished/failed one (its predictions are kept for resuming).

        One statement (insert-or-get): two processes starting the same run get the same id, never an error."""
        identity = [getattr(cell, k) if cell else None for k in IDENTITY]
        columns = ", ".join(IDENTITY)
        marks = ",".join("?" * len(IDENTITY))
        row = self._write(
            f"INSERT INTO runs (cell_key, kind, {columns}, reference, batch_size, mode, samples, status, info,"
            f" created) VALUES (?, ?, {marks}, ?, ?, ?, ?, 'running', ?, ?)"
            " ON CONFLICT(cell_key) DO UPDATE SET status = 'running', error = NULL RETURNING id",
            (key, kind, *identity, reference, batch_size, mode, samples, json.dumps(info or {}), now_iso()),
        ).fetchone()
        return int(row[0])

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
        return [{"run": _run_dict(row), "records": self.records_for_run(row["id"])} for row in rows]

    def import_runs(self, runs: Iterable[dict[str, Any]]) -> None:
        """Store runs exported from another store (a cluster worker's), replacing any run with the same key."""
        for item in runs:
            run = item["run"]
            cell = Cell(*(run.get(k) for k in IDENTITY))
            names = ("reference", "batch_size", "mode", "samples")
            run_id = self.start_run(run["cell_key"], run["kind"], cell, **{k: run[k] for k in names})
            info = run["info"]
            if run["status"] == "done":
                self.finish_run(run_id, item["records"], info)
            else:
                self.fail_run(run_id, run["error"] or "failed", item["records"])

    def runs(self) -> list[dict[str, Any]]:
        rows = self._conn.execute("SELECT * FROM runs ORDER BY id").fetchall()
        return [_run_dict(r) for r in rows]

    def latest_runs(self) -> list[dict[str, Any]]:
        """For each run identity (kind + cell + reference + batch size + mode), the run finished last; forgotten
        runs and runs still going are left out."""
        latest: dict[tuple, dict[str, Any]] = {}
        for run in self.runs():
            if run["status"] not in FINISHED:
                continue
            identity = (run["kind"], *(run[k] for k in RUN_IDENTITY))
            if identity not in latest or (run["seq"] or 0) > (latest[identity]["seq"] or 0):
                latest[identity] = run
        return sorted(latest.values(), key=lambda r: r["id"])

    def forget(self, run_ids: Iterable[int] = (), failed: bool = False, why: str = "") -> list[dict[str, Any]]:
        """Mark runs as no longer judged (the chosen ids, or with `failed` every failed run that is the latest of
        its identity): they stay in the store, with when and why, and `report`/`check` no longer read them."""
        chosen = {int(i) for i in run_ids}
        if failed:
            chosen |= {r["id"] for r in self.latest_runs() if r["status"] == "failed"}
        known = {r["id"]: r for r in self.runs()}
        missing = sorted(i for i in chosen if i not in known)
        if missing:
            raise UserError(
                f"No run {', '.join(map(str, missing))} in {printable(self.directory)}.",
                "List the runs with: benchbox store list",
            )
        forgotten = []
        with self._transaction():
            for run_id in sorted(chosen):
                run = known[run_id]
                if run["status"] == "forgotten":
                    continue
                info = {**run["info"], "forgotten": {"at": now_iso(), "was": run["status"], "why": why}}
                self._conn.execute(
                    "UPDATE runs SET status = 'forgotten', info = ? WHERE id = ?", (json.dumps(info), run_id)
                )
                forgotten.append(run)
        return forgotten

    # -- records ---------------------------------------------------------------------------------
    def _insert_record(self, run_id: int, record: Record) -> None:
        ci = record.ci95 or (None, None)
        columns = ", ".join(IDENTITY)
        self._conn.execute(
            f"INSERT INTO records (run_id, {columns}, metric, value, n, ci_lo, ci_hi, reference, batch_size, mode,"
            f" samples, flags, error, extra) VALUES ({','.join('?' * (len(IDENTITY) + 13))})",
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

    def records(self, latest: bool = True, exclude: Iterable[int] = (), **where: Any) -> list[Record]:
        """Records of finished runs (only the latest run of each identity unless `latest=False`; none of the runs
        in `exclude`, e.g. stale ones), filtered by field equality."""
        for key in where:
            if key not in (*IDENTITY, "metric", "reference"):
                raise KeyError(key)
        if self.schema < 3 and where.get("model_id") is not None:
            return []  # a schema-2 store knows no model identities
        where = {k: v for k, v in where.items() if k != "model_id" or self.schema >= 3}
        if latest:
            run_ids = [r["id"] for r in self.latest_runs()]
        else:
            run_ids = [r["id"] for r in self.runs() if r["status"] in FINISHED]
        skip = set(exclude)
        run_ids = [i for i in run_ids if i not in skip]
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
            Cell(*(_column(row, k) for k in IDENTITY)),
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
        tmp = path.with_name(f".tmp-{os.getpid()}-{threading.get_ident()}-{path.name}")  # unique per writer
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
            with open(path, "rb") as handle, np.load(handle, allow_pickle=False) as data:  # closed if np.load fails
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
            try:
                start, stop = (int(x) for x in path.stem.split("_")[1:3])
            except ValueError:  # not a chunk benchbox wrote
                continue
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
        `bad_error`, and `logits` when the eval ran with --keep-logits. A cell without model_id matches any."""
        names = [k for k in IDENTITY if k != "model_id" or cell.model_id is not None]
        for run in reversed(self.latest_runs()):
            if run["kind"] == "cell" and run["status"] == "done" and all(run[k] == getattr(cell, k) for k in names):
                return self.load_final(run["cell_key"])
        return None

    def discard_predictions(self, key: str) -> None:
        """Forget a cell's predictions (`--recompute`)."""
        for path in self.prediction_dir(key).glob("*.npz"):
            path.unlink(missing_ok=True)

    def prediction_bytes(self) -> int:
        return sum(p.stat().st_size for p in (self.directory / "predictions").rglob("*.npz"))


_OPEN: weakref.WeakSet = weakref.WeakSet()


@atexit.register
def _close_all() -> None:
    """At exit, readers close first, then writers checkpoint their log and close: the last connection of a
    write-ahead-log database folds the log in, so a finished command leaves one file behind."""
    stores = list(_OPEN)
    for store in sorted(stores, key=lambda s: not s.read_only):
        with contextlib.suppress(Exception):
            store.close()


def _use_wal(conn: sqlite3.Connection, directory: Path, patience: float = 60.0) -> None:
    """Switch a store to write-ahead logging. The switch takes an exclusive lock without waiting on SQLite's busy
    handler, so two processes opening a fresh store at once retry it until the other is done (a store already
    in WAL mode, the usual case, needs no switch)."""
    import time

    deadline = time.monotonic() + patience
    while True:
        try:
            if conn.execute("PRAGMA journal_mode").fetchone()[0].lower() == "wal":
                return
            conn.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def _nonempty(path: Path) -> bool:
    try:
        return path.stat().st_size > 0
    except OSError:
        return False


def _column(row: sqlite3.Row, name: str) -> Any:
    """A row's column, None where an older schema lacks it (model_id in schema 2)."""
    return row[name] if name in row.keys() else None  # noqa: SIM118 - a Row iterates its values


def _run_dict(row: sqlite3.Row) -> dict[str, Any]:
    run = {k: row[k] for k in row.keys()}  # noqa: SIM118 - a Row iterates its values
    run.setdefault("model_id", None)
    run["info"] = json.loads(run["info"] or "{}") if isinstance(run.get("info"), str) else (run.get("info") or {})
    return run


class StoreUnion:
    """Several stores read as one, for comparing models scored in different stores (`compare --other-store`).

    Read-only: the latest runs and records of each store side by side (run ids kept apart by an offset per store),
    predictions looked up by their content key in whichever store holds them."""

    OFFSET = 10**9

    def __init__(self, stores: list[ResultStore]) -> None:
        self.stores = stores
        self.directory = stores[0].directory

    def latest_runs(self) -> list[dict[str, Any]]:
        out = []
        for k, store in enumerate(self.stores):
            out += [{**run, "id": run["id"] + k * self.OFFSET} for run in store.latest_runs()]
        return out

    def records(self, latest: bool = True, exclude: Iterable[int] = (), **where: Any) -> list[Record]:
        excluded = list(exclude)
        out: list[Record] = []
        for k, store in enumerate(self.stores):
            mine = [i - k * self.OFFSET for i in excluded if k * self.OFFSET <= i < (k + 1) * self.OFFSET]
            out += store.records(latest, mine, **where)
        return out

    def load_final(self, key: str) -> dict[str, np.ndarray] | None:
        for store in self.stores:
            found = store.load_final(key)
            if found is not None:
                return found
        return None

"""Tar and zip archives read in place: an index of their members built once and cached, and reads of one member.

ImageNet-A/R/O, ImageNet-C's group tars, ImageNet-P's tars, the ILSVRC2012 val tar and WebDataset shards are all
uncompressed tars: a member is a contiguous run of bytes, so once its offset is known a worker reads it with one
`pread`, with no extraction and no tar parsing per sample. The index (every member's directory, name, offset and
size, in archive order) is an SQLite file under the archive cache, named by the archive's resolved path, size and
modification time: a replaced archive gets a new index, never a stale one. Building it reads the tar's headers once
(seeking over the data); an ImageNet-C group tar of a million members takes about as long as reading its headers.

A gzip-compressed tar (ImageNetV2's `.tar.gz`, the devkit) cannot be read in place: it is decompressed once, with
progress, into an uncompressed tar in the archive cache, and that tar is indexed. Zip archives (ImageNet-Sketch)
have their own central directory; members are read through `zipfile`, one handle per thread.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

from benchbox.errors import UserError, printable
from benchbox.locator import Locator

INDEX_VERSION = 1
TAR_SUFFIXES = (".tar",)
GZIP_SUFFIXES = (".tar.gz", ".tgz")
ZIP_SUFFIXES = (".zip",)
ARCHIVE_SUFFIXES = TAR_SUFFIXES + GZIP_SUFFIXES + ZIP_SUFFIXES


def archive_kind(path: Path | str) -> str | None:
    """'tar', 'tar.gz' or 'zip' by the file name, None for anything else."""
    name = str(path).lower()
    if name.endswith(GZIP_SUFFIXES):
        return "tar.gz"
    if name.endswith(TAR_SUFFIXES):
        return "tar"
    if name.endswith(ZIP_SUFFIXES):
        return "zip"
    return None


def archive_cache_dir() -> Path:
    """Where indexes and decompressed tars live: `BENCHBOX_ARCHIVE_CACHE`, else `$XDG_CACHE_HOME/benchbox/archives`.

    Separate from the preprocessed-image cache (which trims itself) and not switched off with it: an index is
    needed to read an archive at all."""
    configured = os.environ.get("BENCHBOX_ARCHIVE_CACHE", "").strip()
    if configured:
        return Path(configured).expanduser()
    base = os.environ.get("XDG_CACHE_HOME", "").strip() or str(Path.home() / ".cache")
    return Path(base) / "benchbox" / "archives"


def _identity(path: Path) -> str:
    real = os.path.realpath(path)
    stat = os.stat(real)
    text = f"{real}\0{stat.st_size}\0{stat.st_mtime_ns}\0{INDEX_VERSION}"
    return hashlib.blake2b(os.fsencode(text), digest_size=10).hexdigest()


class ArchiveIndex:
    """The members of one archive: directories, files with offset and size, in archive order."""

    def __init__(self, archive: Path, data_file: Path, kind: str, db: Path) -> None:
        self.archive = archive  # what the user named (shown in messages)
        self.data_file = data_file  # what the bytes are read from (the decompressed tar of a .tar.gz)
        self.kind = kind  # "tar" or "zip" (how members are read)
        self._db = db
        self._local = threading.local()

    def _connection(self) -> sqlite3.Connection:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            uri = f"file:{self._db}?mode=ro&immutable=1"
            connection = sqlite3.connect(uri, uri=True, check_same_thread=False)
            self._local.connection = connection
        return connection

    def children(self, directory: str) -> list[tuple[str, bool]]:
        """(name, is_dir) of a directory's entries ('' is the archive's root), in archive order."""
        rows = (
            self._connection()
            .execute("SELECT name, is_dir FROM entries WHERE dir = ? ORDER BY seq", (directory,))
            .fetchall()
        )
        return [(name, bool(is_dir)) for name, is_dir in rows]

    def kind_of(self, member: str) -> str | None:
        """'file', 'dir' or None for a path inside the archive."""
        if member == "":
            return "dir"
        directory, _, name = member.rpartition("/")
        row = (
            self._connection()
            .execute("SELECT is_dir FROM entries WHERE dir = ? AND name = ?", (directory, name))
            .fetchone()
        )
        return None if row is None else ("dir" if row[0] else "file")

    def locator(self, member: str) -> str:
        """The sample locator of a file member (benchbox.locator)."""
        directory, _, name = member.rpartition("/")
        row = (
            self._connection()
            .execute("SELECT offset, size FROM entries WHERE dir = ? AND name = ? AND is_dir = 0", (directory, name))
            .fetchone()
        )
        if row is None:
            raise FileNotFoundError(f"{printable(self.archive)} has no member {member}")
        return str(Locator(self.kind, row[0], row[1], str(self.data_file), member))

    def files(self, directory: str) -> Iterator[tuple[str, int, int]]:
        """(name, offset, size) of the files directly in a directory, in archive order."""
        yield from self._connection().execute(
            "SELECT name, offset, size FROM entries WHERE dir = ? AND is_dir = 0 ORDER BY seq", (directory,)
        )

    def has_directories(self) -> bool:
        return self._connection().execute("SELECT 1 FROM entries WHERE is_dir = 1 LIMIT 1").fetchone() is not None

    def member_count(self) -> int:
        return self._connection().execute("SELECT COUNT(*) FROM entries WHERE is_dir = 0").fetchone()[0]


_OPEN: dict[str, ArchiveIndex] = {}
_OPEN_LOCK = threading.Lock()


def open_archive(path: Path, on_progress: Callable[[str], None] | None = None) -> ArchiveIndex:
    """The index of a tar, .tar.gz or zip archive, built (and for .tar.gz decompressed) on first use."""
    path = Path(path).absolute()  # locators carry it: workers and Ray nodes may run elsewhere
    kind = archive_kind(path)
    if kind is None:
        raise UserError(f"{printable(path)} is not a .tar, .tar.gz, .tgz or .zip archive.")
    if not path.is_file():
        raise UserError(f"{printable(path)} does not exist.")
    key = _identity(path)
    with _OPEN_LOCK:
        if key in _OPEN:
            return _OPEN[key]
    cache = archive_cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    data_file = path
    if kind == "tar.gz":
        data_file = cache / f"{key}-{path.name.removesuffix('.gz').removesuffix('.tgz')}"
        if not data_file.name.endswith(".tar"):
            data_file = data_file.with_name(data_file.name + ".tar")
        if not data_file.is_file():
            _decompress(path, data_file, on_progress)
    db = cache / f"{key}.index.sqlite"
    if not db.is_file():
        _build_index(data_file, db, "zip" if kind == "zip" else "tar", path)
    index = ArchiveIndex(path, data_file, "zip" if kind == "zip" else "tar", db)
    with _OPEN_LOCK:
        _OPEN.setdefault(key, index)
        return _OPEN[key]


def _decompress(source: Path, target: Path, on_progress: Callable[[str], None] | None) -> None:
    """A .tar.gz decompressed once into the archive cache (gzip has no random access), with progress lines."""
    import gzip
    import time

    tmp = target.with_name(f".tmp-{os.getpid()}-{threading.get_ident()}-{target.name}")
    total = source.stat().st_size
    say = on_progress or (lambda text: None)
    say(f"decompressing {printable(source)} ({total / 2**20:,.0f} MB compressed) once into {printable(target.parent)}")
    last = time.monotonic()
    try:
        with open(source, "rb") as raw, gzip.open(raw) as unzipped, open(tmp, "wb") as out:
            while True:
                chunk = unzipped.read(1 << 22)
                if not chunk:
                    break
                out.write(chunk)
                if time.monotonic() - last > 10:
                    last = time.monotonic()
                    say(f"  {raw.tell() / max(total, 1):.0%} of {printable(source.name)}")
        os.replace(tmp, target)
    except (OSError, EOFError) as exc:  # gzip.BadGzipFile is an OSError
        raise UserError(
            f"{printable(source)} cannot be decompressed: {exc}.", "Download it again (benchbox datasets fetch)."
        ) from exc
    finally:
        if tmp.exists():
            tmp.unlink()


def _build_index(data_file: Path, db: Path, kind: str, shown: Path) -> None:
    tmp = db.with_name(f".tmp-{os.getpid()}-{threading.get_ident()}-{db.name}")
    connection = sqlite3.connect(tmp)
    try:
        connection.executescript(
            "CREATE TABLE entries (dir TEXT NOT NULL, name TEXT NOT NULL, is_dir INTEGER NOT NULL, "
            "offset INTEGER, size INTEGER, seq INTEGER NOT NULL, PRIMARY KEY (dir, name)) WITHOUT ROWID;"
            "CREATE INDEX by_dir_seq ON entries (dir, seq);"
        )
        members = _zip_members(data_file) if kind == "zip" else _tar_members(data_file, shown)
        _insert(connection, members)
        connection.commit()
        connection.close()
        os.replace(tmp, db)
    finally:
        connection.close()
        if tmp.exists():
            tmp.unlink()


def _insert(connection: sqlite3.Connection, members: Iterator[tuple[str, int, int]]) -> None:
    """Rows for every file member and every directory above one (tars need not list their directories)."""
    seen_dirs: set[str] = {""}
    rows: list[tuple] = []
    seq = 0
    for member, offset, size in members:
        parts = [p for p in member.split("/") if p not in ("", ".")]
        if not parts or ".." in parts:
            continue  # a member that would land outside the archive's tree is never read
        for depth in range(1, len(parts)):
            directory = "/".join(parts[:depth])
            if directory not in seen_dirs:
                seen_dirs.add(directory)
                rows.append(("/".join(parts[: depth - 1]), parts[depth - 1], 1, None, None, seq))
                seq += 1
        rows.append(("/".join(parts[:-1]), parts[-1], 0, offset, size, seq))
        seq += 1
        if len(rows) >= 50000:
            connection.executemany("INSERT OR IGNORE INTO entries VALUES (?, ?, ?, ?, ?, ?)", rows)
            rows.clear()
    connection.executemany("INSERT OR IGNORE INTO entries VALUES (?, ?, ?, ?, ?, ?)", rows)


def _tar_members(path: Path, shown: Path) -> Iterator[tuple[str, int, int]]:
    import tarfile

    try:
        with tarfile.open(path, "r:") as archive:
            while True:
                info = archive.next()
                if info is None:
                    break
                archive.members = []  # the TarFile keeps every member otherwise: a million of them for ImageNet-C
                if info.isreg():
                    yield info.name, info.offset_data, info.size
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise UserError(
            f"{printable(shown)} is not a readable tar archive: {exc}.",
            "It may be truncated (an interrupted download): fetch it again.",
        ) from exc


def _zip_members(path: Path) -> Iterator[tuple[str, int, int]]:
    import zipfile

    try:
        with zipfile.ZipFile(path) as archive:
            for position, info in enumerate(archive.infolist()):
                if not info.is_dir():
                    yield info.filename, position, info.file_size
    except (zipfile.BadZipFile, OSError) as exc:
        raise UserError(f"{printable(path)} is not a readable zip archive: {exc}.") from exc


_FDS: dict[str, int] = {}
_FDS_LOCK = threading.Lock()
_ZIPS = threading.local()


def read_member(locator: Locator, max_bytes: int) -> bytes:
    """The bytes of one archive member (OSError when the archive cannot be read, ValueError when too large)."""
    if locator.second > max_bytes:
        raise ValueError(f"{locator.second / 2**20:.0f} MB")
    if locator.scheme == "zip":
        return _zip_read(locator)
    with _FDS_LOCK:
        fd = _FDS.get(locator.container)
        if fd is None:
            fd = os.open(locator.container, os.O_RDONLY)
            _FDS[locator.container] = fd
    data = os.pread(fd, locator.second, locator.first)
    if len(data) != locator.second:
        raise OSError(f"the archive ends inside this member ({len(data)} of {locator.second} bytes)")
    return data


def _zip_read(locator: Locator) -> bytes:
    import zipfile

    handles = getattr(_ZIPS, "handles", None)
    if handles is None:
        handles = _ZIPS.handles = {}
    archive = handles.get(locator.container)
    if archive is None:
        try:
            archive = handles[locator.container] = zipfile.ZipFile(locator.container)
        except zipfile.BadZipFile as exc:
            raise OSError(str(exc)) from exc
    try:
        return archive.read(archive.infolist()[locator.first])
    except (zipfile.BadZipFile, IndexError, EOFError) as exc:
        raise OSError(str(exc)) from exc

"""`benchbox datasets fetch`: download a set's published archives, resumably, verified before they are placed.

A file is written as `NAME.part` beside its place and moved there only after its checksum matches the catalog
(benchbox.datasets.downloads), so nothing half-written or wrong is ever where `--data-root` looks. An interrupted
transfer resumes with an HTTP range request (a server that ignores it sends the whole file again); a dropped
connection is retried a few times from where it stopped. `--mirror URL` fetches the same file names from another
base URL and checks them against the same checksums. Nothing here runs unless the user asks for it.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable
from pathlib import Path

from benchbox.datasets.downloads import DOWNLOADS, MANUAL_HELP, Download
from benchbox.errors import UserError, printable

CHUNK = 1 << 20
RETRIES = 3
USER_AGENT = "benchbox-datasets-fetch"


def fetch_sets(
    names: list[str],
    to: Path,
    mirror: str | None = None,
    verify: bool = True,
    given: list[Path] | None = None,
    say: Callable[[str], None] = print,
) -> list[Path]:
    """Fetch (or, with `given` files, verify and place) every archive of the named sets; returns what is in place."""
    from benchbox.datasets.catalog import resolve_testset

    placed: list[Path] = []
    specs = [resolve_testset(name) for name in names]
    for spec in specs:
        if spec.name not in DOWNLOADS:
            raise UserError(f"{spec.title} has no archive of its own to fetch.", "ReaL is scored from val's images.")
    for spec in specs:
        downloads = DOWNLOADS[spec.name]
        if given:
            placed += _place_given(spec.name, downloads, given, to, verify, say)
            continue
        if any(d.manual for d in downloads):
            raise UserError(f"{spec.title} cannot be fetched by benchbox.", MANUAL_HELP[spec.name])
        for download in downloads:
            placed.append(fetch_one(download, to, mirror, verify, say))
    return placed


def fetch_one(download: Download, to: Path, mirror: str | None, verify: bool, say: Callable[[str], None]) -> Path:
    target = to / download.place
    if not download.verifiable and verify:
        raise UserError(
            f"No published checksum exists for {download.filename}, so a download of it cannot be verified.",
            "Pass --no-verify to fetch it anyway (benchbox then cannot tell a damaged file from a good one).",
        )
    if target.is_file():
        if not verify or _matches(download, target, say):
            say(f"{download.filename}: already in place at {printable(target)}")
            return target
        raise UserError(
            f"{printable(target)} is already there but does not match the catalog's checksum.",
            "Move it away (it may be damaged or a different release) and fetch again.",
        )
    url = f"{mirror.rstrip('/')}/{download.filename}" if mirror else download.url
    target.parent.mkdir(parents=True, exist_ok=True)
    part = target.with_name(f"{target.name}.part")
    _download(url, part, download, say)
    if verify:
        _verify(download, part, say, keep_on_mismatch=False)
    os.replace(part, target)
    say(f"{download.filename}: in place at {printable(target)}")
    return target


def _download(url: str, part: Path, download: Download, say: Callable[[str], None]) -> None:
    """Fill `part` from `url`, resuming what is there; retried from where it stopped when the connection drops."""
    import http.client
    import urllib.error
    import urllib.request

    for attempt in range(RETRIES + 1):
        have = part.stat().st_size if part.exists() else 0
        headers = {"User-Agent": USER_AGENT, **({"Range": f"bytes={have}-"} if have else {})}
        try:
            with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=60) as response:
                if have and response.status != 206:  # the server ignored the range: start over
                    have = 0
                length = response.headers.get("Content-Length")
                total = have + int(length) if length and length.isdigit() else download.size
                if have:
                    say(f"{download.filename}: resuming at {have / 2**20:,.1f} MB")
                _copy(response, part, have, total, download.filename, say)
            return
        except urllib.error.HTTPError as exc:
            if exc.code == 416 and have and (download.size is None or have == download.size):
                return  # the range starts at the end: the file is complete
            raise UserError(f"{url} answered HTTP {exc.code} {exc.reason}.", _where_hint(url)) from exc
        except (urllib.error.URLError, http.client.HTTPException, OSError, TimeoutError) as exc:
            if attempt == RETRIES:
                raise UserError(
                    f"Downloading {url} failed: {getattr(exc, 'reason', exc)}.",
                    f"What arrived is kept in {printable(part)}: run the same command again to resume.",
                ) from exc
            say(f"{download.filename}: connection lost ({type(exc).__name__}); resuming")
            time.sleep(min(2**attempt, 10) * 0.1)


def _where_hint(url: str) -> str:
    return "Check the URL or the --mirror; a lab mirror must serve the same file names."


def _copy(response, part: Path, have: int, total: int | None, name: str, say: Callable[[str], None]) -> None:
    last, start, done = time.monotonic(), time.monotonic(), have
    with open(part, "ab" if have else "wb") as out:
        while True:
            chunk = response.read(CHUNK)
            if not chunk:
                break
            out.write(chunk)
            done += len(chunk)
            now = time.monotonic()
            if now - last >= 5:
                last = now
                rate = (done - have) / max(now - start, 1e-9) / 2**20
                share = f"{done / total:.0%} of {total / 2**20:,.0f} MB" if total else f"{done / 2**20:,.0f} MB"
                say(f"{name}: {share} ({rate:.1f} MB/s)")
    if total is not None and done < total:
        raise OSError(f"the transfer stopped at {done:,} of {total:,} bytes")


def _digest(path: Path, algorithm: str) -> str:
    digest = hashlib.new(algorithm)
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(CHUNK * 8), b""):
            digest.update(block)
    return digest.hexdigest()


def _matches(download: Download, path: Path, say: Callable[[str], None]) -> bool:
    try:
        _verify(download, path, say, keep_on_mismatch=True)
    except UserError:
        return False
    return True


def _verify(download: Download, path: Path, say: Callable[[str], None], keep_on_mismatch: bool) -> None:
    """The file's size and checksum against the catalog; a mismatch is one line naming the file and both hashes."""
    algorithm, expected = ("sha256", download.sha256) if download.sha256 else ("md5", download.md5)
    size = path.stat().st_size
    say(f"{download.filename}: verifying {algorithm} of {size / 2**20:,.1f} MB")
    actual = _digest(path, algorithm)
    if actual == expected and (download.size is None or size == download.size):
        return
    if not keep_on_mismatch:
        path.unlink()
    raise UserError(
        f"{download.filename}: {algorithm} is {actual}, the catalog says {expected} ({download.checksum_source})"
        + (f"; {size:,} bytes where {download.size:,} were expected" if download.size not in (None, size) else ""),
        "Nothing was placed; the damaged download was removed. Fetch it again, or check the mirror."
        if not keep_on_mismatch
        else "It was not used.",
    )


def _place_given(set_name: str, downloads, given: list[Path], to: Path, verify: bool, say) -> list[Path]:
    """Files the user downloaded themselves (`--from`): verified, then linked (or copied) into place."""
    import shutil

    by_name = {d.filename: d for d in downloads}
    placed = []
    for path in given:
        download = by_name.get(path.name)
        if download is None:
            raise UserError(
                f"{printable(path)} is not one of {set_name}'s archives.", f"Expected: {', '.join(by_name)}"
            )
        if not path.is_file():
            raise UserError(f"{printable(path)} does not exist.")
        if verify:
            _verify(download, path, say, keep_on_mismatch=True)
        target = to / download.place
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.resolve() != path.resolve():
            if target.exists():
                target.unlink()
            try:
                os.link(path, target)
            except OSError:
                shutil.copy2(path, target)
        say(f"{download.filename}: in place at {printable(target)}")
        placed.append(target)
    return placed

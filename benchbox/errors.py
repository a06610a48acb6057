"""User-facing errors: the CLI prints these as one message plus its fix, without a traceback, and exits 2."""

from __future__ import annotations

import difflib
import os
from collections.abc import Iterable


class UserError(Exception):
    """A mistake the user can fix (bad name, missing data, wrong layout); `hint` says how."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message}\n{self.hint}"


class UnsupportedPrecision(UserError):
    """This engine cannot run this precision (recorded as an explicit 'unsupported' result, not a failure)."""


def unknown_name(kind: str, name: str, known: Iterable[str], shown: Iterable[str] | None = None) -> UserError:
    """An error for an unknown registry name: the closest match, then what exists (or `shown` of it)."""
    known = sorted(set(known))
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    suggestion = f" Did you mean {close[0]!r}?" if close else ""
    listing = ", ".join(sorted(shown) if shown is not None else known)
    return UserError(f"Unknown {kind} {name!r}.{suggestion}", f"Known {kind}s: {listing}")


def printable(path: str | os.PathLike | bytes) -> str:
    """A path as text that is always valid UTF-8 (undecodable file-name bytes become \\xNN escapes).

    File names on Linux are bytes; Python keeps undecodable ones as lone surrogates, which SQLite, JSON
    consumers and terminals reject. Everything benchbox stores or prints goes through here.
    """
    from benchbox.locator import display

    raw = os.fsencode(path if isinstance(path, (str, bytes)) else str(path))  # a Path, or an archive's TreePath
    return display(raw.decode("utf-8", errors="backslashreplace"))

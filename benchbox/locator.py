"""Sample locators: how a sample that is not a file of its own (a member of a tar or zip, a row of a parquet
file) is named, so that every layer that passes sample paths around (readers, the loader, the store's digests,
Ray work units) can carry it as a string.

    tar:OFFSET:SIZE:N:ARCHIVE/MEMBER       bytes OFFSET..OFFSET+SIZE of ARCHIVE (N = len(ARCHIVE))
    zip:INDEX:SIZE:N:ARCHIVE/MEMBER        member INDEX of the zip's central directory
    parquet:GROUP:ROW:N:FILE/KEY           row ROW of row group GROUP of FILE

What follows the fourth colon is also what people read (`display`): the archive's path, then the member.
"""

from __future__ import annotations

from dataclasses import dataclass

SCHEMES = ("tar", "zip", "parquet")
_PREFIXES = tuple(f"{scheme}:" for scheme in SCHEMES)


@dataclass(frozen=True)
class Locator:
    scheme: str
    first: int  # tar: byte offset; zip: member index; parquet: row group
    second: int  # tar and zip: size in bytes; parquet: row in the group
    container: str  # the archive or parquet file (absolute path)
    name: str  # the member, or the row's key

    def __str__(self) -> str:
        return f"{self.scheme}:{self.first}:{self.second}:{len(self.container)}:{self.container}/{self.name}"


def is_locator(text: str) -> bool:
    return text.startswith(_PREFIXES)


def parse(text: str) -> Locator | None:
    """The locator a string names, or None for a plain file path."""
    if not is_locator(text):
        return None
    try:
        scheme, first, second, length, rest = text.split(":", 4)
        n = int(length)
        return Locator(scheme, int(first), int(second), rest[:n], rest[n + 1 :])
    except ValueError:
        return None


def display(text: str) -> str:
    """A sample path as a person reads it: `ARCHIVE/MEMBER` for a locator, the path itself otherwise."""
    if not is_locator(text):
        return text
    return text.split(":", 4)[4] if text.count(":") >= 4 else text

"""The artifact directory: manifest.json with data config, I/O, file hashes, parity figures and versions."""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchbox.errors import UserError
from benchbox.models import DataConfig

MANIFEST_NAME = "manifest.json"
SCHEMA_VERSION = 1
PRECISIONS = ("fp32", "fp16", "int8", "int8-cpu")


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def library_versions() -> dict[str, str | None]:
    """Versions of the libraries that shape an artifact's numbers (None when not installed)."""
    from importlib import metadata

    names = (
        "benchbox",
        "torch",
        "onnx",
        "onnxruntime",
        "onnxruntime-gpu",
        "timm",
        "numpy",
        "pillow",
        "tensorrt",
    )
    versions = {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


@dataclass
class Artifact:
    """A loaded artifact directory. Public methods check; the manifest dict is the source of truth."""

    directory: Path
    manifest: dict[str, Any]

    @classmethod
    def load(cls, directory: str | Path) -> Artifact:
        directory = Path(directory)
        path = directory / MANIFEST_NAME
        if not path.is_file():
            raise UserError(
                f"{directory} is not a benchbox artifact directory (no {MANIFEST_NAME}).",
                "Create one with: benchbox export MODEL --out DIR",
            )
        try:
            manifest = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise UserError(f"{path} is not valid JSON ({exc}).", "Re-run benchbox export to rebuild it.") from exc
        if manifest.get("schema") != SCHEMA_VERSION:
            raise UserError(
                f"{path} has schema {manifest.get('schema')}, expected {SCHEMA_VERSION}.",
                "Re-run benchbox export with this version.",
            )
        return cls(directory, manifest)

    @property
    def model(self) -> str:
        return self.manifest["model"]

    @property
    def data_config(self) -> DataConfig:
        return DataConfig.from_dict(self.manifest["data_config"])

    @property
    def precisions(self) -> list[str]:
        return list(self.manifest.get("files", {}))

    def file_for(self, precision: str, verify: bool = True) -> Path:
        """Path of the ONNX file for a precision, checked against its recorded sha256 (truncation, edits)."""
        files = self.manifest.get("files", {})
        if precision not in files:
            raise UserError(
                f"Artifact {self.directory} has no {precision} model (it has: {', '.join(files) or 'none'}).",
                f"Build it with: benchbox export {self.model} --out {self.directory} --precisions {precision}"
                + (" --calib-data DIR" if precision.startswith("int8") else ""),
            )
        entry = files[precision]
        path = self.directory / entry["path"]
        if not path.is_file():
            raise UserError(f"{path} is missing.", "Re-run benchbox export to rebuild the artifact.")
        if verify and sha256_file(path) != entry["sha256"]:
            raise UserError(
                f"{path} does not match its recorded sha256 (truncated or modified).",
                "Re-run benchbox export to rebuild the artifact.",
            )
        return path

    def entry(self, precision: str) -> dict[str, Any]:
        return self.manifest["files"][precision]

    def save(self) -> None:
        write_json_atomic(self.directory / MANIFEST_NAME, self.manifest)


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON via a temporary file and rename, so an interrupted write never leaves half a file."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=False, default=str))
    os.replace(tmp, path)


def content_key(parts: dict[str, Any]) -> str:
    """A stable hash of the inputs that determine a build step's output."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]

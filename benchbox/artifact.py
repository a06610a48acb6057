"""The artifact directory: manifest.json (data config, I/O, file hashes, parity, versions) and which precision file
each engine consumes. Exporters write it; runtime, store and evaluation read it; it imports neither of them."""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchbox.errors import UnsupportedPrecision, UserError, unknown_name
from benchbox.hashing import sha256_file  # noqa: F401 - re-exported: callers hash artifact files through here
from benchbox.models import DataConfig
from benchbox.records import Cell, base_device

MANIFEST_NAME = "manifest.json"
SCHEMA_VERSION = 1
# What users may ask for, and what the artifact holds as files. `int8` resolves to a flavour per engine.
PRECISIONS = ("fp32", "fp16", "bf16", "int8", "int8-cpu", "int8-trt")
ARTIFACT_FILES = ("fp32", "fp16", "int8", "int8-cpu")
REBUILD = "Re-run benchbox export to rebuild the artifact."


def now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON via a temporary file and rename, so an interrupted write never leaves half a file."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    try:
        tmp.write_text(json.dumps(data, indent=2, sort_keys=False, default=str))
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise UserError(f"Cannot write {path}: {exc.strerror or exc}.", "Check free space and permissions.") from exc


def content_key(parts: dict[str, Any]) -> str:
    """A stable hash of the inputs that determine a step's output."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def check_precision(precision: str) -> str:
    if precision not in PRECISIONS:
        raise unknown_name("precision", precision, PRECISIONS)
    return precision


def artifact_file_for(engine: str, device: str, precision: str) -> str | None:
    """Which artifact file an engine consumes at a precision (None: the engine runs the source model).

    `int8` means the U8S8 `int8-cpu` flavour for ONNX Runtime on the CPU and the symmetric TensorRT flavour
    everywhere else; `int8-trt` and `int8-cpu` name a flavour explicitly. BF16 exists only in PyTorch.
    """
    check_precision(precision)
    if engine == "torch":
        return None
    if precision == "bf16":
        raise UnsupportedPrecision(f"{engine} has no bf16 artifact in benchbox.", "bf16 runs in PyTorch on CUDA.")
    if precision == "int8":
        return "int8-cpu" if (engine, base_device(device)) == ("ort", "cpu") else "int8"
    if precision == "int8-trt":
        return "int8"
    return precision


def _require(condition: bool, path: Path, what: str) -> None:
    if not condition:
        raise UserError(f"{path} is not a valid benchbox manifest: {what}.", REBUILD)


@dataclass
class Artifact:
    """A loaded artifact directory. `load` validates the manifest; `file_for` verifies the file it returns."""

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
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise UserError(f"{path} is not valid JSON ({exc}).", REBUILD) from exc
        except OSError as exc:
            raise UserError(f"Cannot read {path}: {exc.strerror or exc}.") from exc
        cls.validate(manifest, path)
        return cls(directory, manifest)

    @classmethod
    def reusable(cls, directory: Path, export_key: str) -> Artifact | None:
        """The artifact already in `directory` when it was exported with `export_key` and its FP32 file is
        intact; None when there is none, it is unreadable or it came from other inputs (then export again)."""
        if not (Path(directory) / MANIFEST_NAME).is_file():
            return None
        try:
            artifact = cls.load(directory)
            if artifact.manifest.get("export_key") == export_key:
                artifact.file_for("fp32")
                return artifact
        except UserError:
            return None
        return None

    @staticmethod
    def validate(manifest: Any, path: Path) -> None:
        """Refuse manifests that are not what `benchbox export` writes (wrong type, missing fields, old schema)."""
        _require(isinstance(manifest, dict), path, "it holds a JSON " + type(manifest).__name__ + ", not an object")
        if manifest.get("schema") != SCHEMA_VERSION:
            raise UserError(f"{path} has schema {manifest.get('schema')!r}, expected {SCHEMA_VERSION}.", REBUILD)
        _require(isinstance(manifest.get("model"), str) and manifest["model"], path, "no model name")
        _require(isinstance(manifest.get("data_config"), dict), path, "no data_config object")
        try:
            DataConfig.from_dict(manifest["data_config"])
        except (TypeError, ValueError) as exc:
            raise UserError(f"{path} has an invalid data_config: {exc}.", REBUILD) from exc
        files = manifest.get("files")
        _require(isinstance(files, dict) and "fp32" in files, path, "no files.fp32 entry")
        for name, entry in files.items():
            _require(name in ARTIFACT_FILES, path, f"unknown precision file {name!r}")
            _require(isinstance(entry, dict), path, f"files.{name} is not an object")
            for key in ("path", "sha256"):
                _require(isinstance(entry.get(key), str) and entry[key], path, f"files.{name}.{key} is missing")

    @property
    def model(self) -> str:
        return self.manifest["model"]

    @property
    def model_id(self) -> str:
        """The model's identity: a short hash of the FP32 file every other precision derives from (the name is
        only a label: two `model.onnx` from different folders are two models)."""
        return str(self.manifest["files"]["fp32"]["sha256"])[:12]

    def cell(self, engine: str, device: str, precision: str) -> Cell:
        """The cell of this model on an engine, device and precision."""
        return Cell(self.model, engine, device, precision, model_id=self.model_id)

    @property
    def data_config(self) -> DataConfig:
        return DataConfig.from_dict(self.manifest["data_config"])

    @property
    def precisions(self) -> list[str]:
        return list(self.manifest.get("files", {}))

    @property
    def source_kind(self) -> str:
        """How the FP32 model came to be: exported from PyTorch, or a user's ONNX file (no torch reference)."""
        return str((self.manifest.get("source") or {}).get("kind", "torch"))

    def entry(self, precision: str) -> dict[str, Any]:
        files = self.manifest["files"]
        if precision not in files:
            raise UserError(
                f"Artifact {self.directory} has no {precision} model (it has: {', '.join(files)}).",
                f"Build it with: benchbox export {self.model} --out {self.directory} --precisions {precision}"
                + (" --calib-data DIR" if precision.startswith("int8") else ""),
            )
        return files[precision]

    def file_for(self, precision: str, verify: bool = True) -> Path:
        """Path of the ONNX file for a precision, checked against its recorded sha256 (truncation, edits)."""
        entry = self.entry(precision)
        path = self.directory / entry["path"]
        if not path.is_file():
            raise UserError(f"{path} is missing.", REBUILD)
        if verify and sha256_file(path) != entry["sha256"]:
            raise UserError(f"{path} does not match its recorded sha256 (truncated or modified).", REBUILD)
        return path

    def key_for(self, engine: str, device: str, precision: str) -> str:
        """The content that decides an engine's outputs: the precision file's hash, or the export key for torch."""
        name = artifact_file_for(engine, device, precision)
        if name is None:
            return str(self.manifest.get("export_key", ""))
        return self.entry(name)["sha256"]

    def require_files(self, engines: list[str], precisions: list[str], device: str) -> None:
        """Fail before any work, naming the export command, when an engine needs a file the artifact lacks."""
        for engine in engines:
            for precision in precisions:
                try:
                    name = artifact_file_for(engine, device, precision)
                except UnsupportedPrecision:
                    continue  # recorded as unsupported by the run, not a reason to stop
                if name is not None:
                    self.file_for(name, verify=False)

    def save(self) -> None:
        write_json_atomic(self.directory / MANIFEST_NAME, self.manifest)

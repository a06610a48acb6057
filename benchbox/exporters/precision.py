"""The shape every FP32 -> lower-precision step shares: content key, reuse check, build, numeric check, record."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from benchbox.artifact import Artifact, sha256_file
from benchbox.environment import library_versions
from benchbox.errors import UserError
from benchbox.exporters.onnx import compare_logits, input_name, parity_inputs

PARITY_HELD_OUT = 32  # images picked beside the calibration ones, never calibrated on, for the numeric check


class PrecisionFromOnnx:
    """Common shape of the FP32 -> lower-precision steps. Subclasses give `key` and `build_impl`."""

    precision = ""

    def __init__(self, artifact: Artifact, calib_files: list[Path], parity_files: list[Path]) -> None:
        from benchbox.datasets.transforms import EvalTransform

        self.artifact = artifact
        self.calib_files = calib_files
        self.parity_files = parity_files
        self.transform = EvalTransform(artifact.data_config)
        self.used_files: list[Path] = []
        self.skipped_files: list[tuple[Path, str]] = []  # unreadable calibration images, and why
        self.used_ids: list[int] = []  # content ids of the used ones

    def key(self) -> str:
        raise NotImplementedError

    def build_impl(self, fp32_path: Path, out_path: Path, crops: np.ndarray) -> dict[str, Any]:
        raise NotImplementedError

    def run(self) -> None:
        key = self.key()
        files = self.artifact.manifest["files"]
        entry = files.get(self.precision)
        if entry and entry.get("key") == key and (self.artifact.directory / entry["path"]).is_file():
            try:
                self.artifact.file_for(self.precision)
                return
            except UserError:
                pass
        fp32_path = self.artifact.file_for("fp32")
        out_path = self.artifact.directory / f"model.{self.precision}.onnx"
        details = self.build_impl(fp32_path, out_path, self.calibration_crops())
        parity = self.parity(fp32_path, out_path)
        if not parity.get("finite", True) or not np.isfinite(parity.get("max_abs_diff", 0.0)):
            out_path.unlink(missing_ok=True)
            raise UserError(
                f"The {self.precision} build of {self.artifact.model} gives NaN/Inf logits where FP32 gives finite "
                f"ones (max |Δlogit| {parity.get('max_abs_diff')}, on {parity.get('n')} {parity.get('source')}): it "
                "is refused, not recorded.",
                "Its values overflow the precision's range: see benchbox lint on the FP32 file, or deploy that "
                "precision only for a model whose activations fit it.",
            )
        files[self.precision] = {
            "path": out_path.name,
            "sha256": sha256_file(out_path),
            "key": key,
            "parity": parity,
            **details,
        }
        self.artifact.manifest["versions"] = library_versions()
        self.artifact.save()

    def calibration_crops(self) -> np.ndarray:
        """uint8 crops of the calibration images (or of 32 generated images when there are none)."""
        from benchbox.exporters.calibration import calibration_crops

        if self.calib_files:
            crops, self.used_files, self.skipped_files, self.used_ids = calibration_crops(
                self.calib_files, self.transform
            )
            return crops
        from benchbox.datasets.synthetic import synthetic_crops

        return synthetic_crops(32, self.transform, seed=1234)

    def parity(self, fp32_path: Path, path: Path) -> dict[str, Any]:
        """Compare with FP32 in ONNX Runtime on images other than the calibration ones."""
        import onnxruntime as ort

        held_out = [str(p) for p in self.parity_files] if len(self.parity_files) >= 8 else None
        batch, source = parity_inputs(self.artifact.data_config, held_out, n=PARITY_HELD_OUT)
        options = ort.SessionOptions()
        options.log_severity_level = 3
        ref = ort.InferenceSession(str(fp32_path), options, providers=["CPUExecutionProvider"])
        low = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        feed = {input_name(ref): batch}
        result = compare_logits(ref.run(None, feed)[0], low.run(None, {input_name(low): batch})[0])
        result.update({"source": source, "reference": "ort-fp32-cpu"})
        return result

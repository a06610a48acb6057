"""`benchbox export`: FP32 ONNX, then the FP16 and INT8 artifacts derived from it, each cached by content key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from benchbox.errors import UserError
from benchbox.exporters.manifest import Artifact, content_key, library_versions, sha256_file
from benchbox.exporters.onnx import INPUT_NAME, OnnxFromTorch, compare_logits, parity_inputs

KNOWN = ("fp32", "fp16", "int8", "int8-cpu")
PARITY_HELD_OUT = 32  # images picked beside the calibration ones, never calibrated on, for the numeric check


def build_artifacts(
    model: str,
    out: Path,
    checkpoint: Path | None = None,
    precisions: list[str] | None = None,
    calib_data: Path | None = None,
    calib_size: int = 256,
    calib_method: str = "entropy",
    opset: int = 18,
    trt: bool = False,
    calib_note: str | None = None,
) -> Artifact:
    """Export MODEL and build every requested precision into one artifact directory."""
    precisions = precisions or ["fp32"]
    for p in precisions:
        if p not in KNOWN:
            from benchbox.errors import unknown_name

            raise unknown_name("precision", p, KNOWN)
    wants_int8 = any(p.startswith("int8") for p in precisions)
    if wants_int8 and calib_data is None:
        raise UserError(
            "INT8 needs calibration images, and none were given.",
            "Pass --calib-data DIR (an ImageNet-style or flat folder of images disjoint from your test sets, e.g. "
            "part of the ImageNet train split) and optionally --calib-size N.",
        )
    if trt:
        from benchbox.runtime.tensorrt import require_tensorrt

        require_tensorrt()
    calib_files: list[Path] = []
    parity_files: list[Path] = []
    if calib_data is not None:
        from benchbox.exporters.int8 import select_calibration_files

        selected = select_calibration_files(Path(calib_data), calib_size + PARITY_HELD_OUT)
        calib_files, parity_files = selected[:calib_size], selected[calib_size:]
    artifact = OnnxFromTorch(model, out, checkpoint, opset, [str(p) for p in parity_files] or None)()
    if "fp16" in precisions:
        Fp16Step(artifact, calib_files, parity_files).run()
    if wants_int8:
        for flavour in ("int8", "int8-cpu"):
            Int8Step(artifact, flavour, calib_files, parity_files, calib_method, calib_note).run()
    if trt:
        from benchbox.exporters.tensorrt import build_engines

        build_engines(artifact, [p for p in artifact.precisions if p != "int8-cpu"])
    return artifact


class _PrecisionStep:
    """Common shape of the FP32 -> lower-precision steps: key, reuse check, build, numeric check, record."""

    precision = ""

    def __init__(self, artifact: Artifact, calib_files: list[Path], parity_files: list[Path]) -> None:
        self.artifact = artifact
        self.calib_files = calib_files
        self.parity_files = parity_files
        self.transform_config = artifact.data_config

    def key(self) -> str:
        raise NotImplementedError

    def build_impl(self, fp32_path: Path, out_path: Path, batch: np.ndarray) -> dict[str, Any]:
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
        batch = self.calibration_batch()
        details = self.build_impl(fp32_path, out_path, batch)
        parity = self.parity(fp32_path, out_path)
        files[self.precision] = {
            "path": out_path.name,
            "sha256": sha256_file(out_path),
            "key": key,
            "parity": parity,
            **details,
        }
        self.artifact.manifest["versions"] = library_versions()
        self.artifact.save()

    def calibration_batch(self) -> np.ndarray:
        from benchbox.datasets.transforms import EvalTransform
        from benchbox.exporters.int8 import calibration_batch

        transform = EvalTransform(self.transform_config)
        if self.calib_files:
            batch, used = calibration_batch(self.calib_files, transform)
            self._used = used
            return batch
        self._used = []
        batch, _ = parity_inputs(self.transform_config, None, n=32)
        return batch

    def parity(self, fp32_path: Path, path: Path) -> dict[str, Any]:
        """Compare with FP32 in ONNX Runtime on images other than the calibration ones."""
        import onnxruntime as ort

        held_out = [str(p) for p in self.parity_files] if len(self.parity_files) >= 8 else None
        batch, source = parity_inputs(self.transform_config, held_out, n=PARITY_HELD_OUT)
        options = ort.SessionOptions()
        options.log_severity_level = 3
        ref = ort.InferenceSession(str(fp32_path), options, providers=["CPUExecutionProvider"])
        low = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        result = compare_logits(ref.run(None, {INPUT_NAME: batch})[0], low.run(None, {INPUT_NAME: batch})[0])
        result.update({"source": source, "reference": "ort-fp32-cpu"})
        return result


class Fp16Step(_PrecisionStep):
    precision = "fp16"

    def key(self) -> str:
        return content_key(
            {
                "fp32": self.artifact.entry("fp32")["sha256"],
                "step": "fp16-v1",
                "ranges": [sha256_file(p) for p in self.calib_files[:64]],
            }
        )

    def calibration_batch(self) -> np.ndarray:
        batch = super().calibration_batch()
        return batch[:64]

    def build_impl(self, fp32_path: Path, out_path: Path, batch: np.ndarray) -> dict[str, Any]:
        from benchbox.exporters.fp16 import convert_fp16

        info = convert_fp16(fp32_path, out_path, batch)
        info["range_source"] = "calibration images" if self.calib_files else "generated images"
        return {"fp16": info}


class Int8Step(_PrecisionStep):
    def __init__(
        self,
        artifact: Artifact,
        flavour: str,
        calib_files: list[Path],
        parity_files: list[Path],
        method: str,
        note: str | None = None,
    ) -> None:
        super().__init__(artifact, calib_files, parity_files)
        self.precision = flavour
        self.method = method
        self.note = note
        self._hashes = [sha256_file(p) for p in calib_files]

    def key(self) -> str:
        import onnxruntime

        return content_key(
            {
                "fp32": self.artifact.entry("fp32")["sha256"],
                "flavour": self.precision,
                "method": self.method,
                "calib": self._hashes,
                "ort": onnxruntime.__version__,
            }
        )

    def build_impl(self, fp32_path: Path, out_path: Path, batch: np.ndarray) -> dict[str, Any]:
        from benchbox.exporters.int8 import preprocess_for_quantization, quantize

        pre = preprocess_for_quantization(fp32_path, self.artifact.directory / "model.fp32.pre-quant.onnx")
        info = quantize(pre, out_path, self.precision, self.method, batch)
        used = set(map(str, self._used))
        files = [{"path": str(p), "sha256": h} for p, h in zip(self.calib_files, self._hashes) if str(p) in used]
        return {
            "quantization": info,
            "calibration": {"method": self.method, "size": len(files), "files": files, "note": self.note},
        }

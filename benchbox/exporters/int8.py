"""Int8FromOnnx: static post-training quantization to Q/DQ ONNX with ONNX Runtime's tools, two flavours.

- `int8` (TensorRT): signed activations and weights, symmetric (zero points 0), per-channel weights.
- `int8-cpu` (ONNX Runtime on x86): unsigned activations, signed per-channel weights (U8S8), the fast path
  of ORT's CPU kernels. On CPUs without VNNI, weights use 7 bits (`reduce_range`) to avoid saturation.
Calibration images go through exactly the artifact's eval transform.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np

from benchbox.errors import UserError
from benchbox.exporters.manifest import Artifact, content_key, sha256_file
from benchbox.exporters.precision import PrecisionFromOnnx

FLAVOURS = ("int8", "int8-cpu")
METHODS = ("minmax", "entropy", "percentile")


def select_calibration_files(folder: Path, count: int, seed: int = 0) -> list[Path]:
    """`count` images from an ImageNet-style folder (class-balanced round robin) or a flat folder, seeded."""
    from benchbox.datasets.readers import IMAGE_EXTENSIONS, natural_key

    if not folder.is_dir():
        raise UserError(f"Calibration folder {folder} does not exist.", "Pass --calib-data DIR with images.")
    if count < 1:
        raise UserError("--calib-size must be at least 1.")
    rng = random.Random(seed)
    root = folder / "val" if (folder / "val").is_dir() and not any(folder.glob("*.*")) else folder
    subdirs = sorted((p for p in root.iterdir() if p.is_dir()), key=lambda p: natural_key(p.name))
    pools: list[list[Path]] = []
    for sub in subdirs or [root]:
        files = sorted(
            (p for p in sub.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS),
            key=lambda p: natural_key(p.name),
        )
        rng.shuffle(files)
        if files:
            pools.append(files)
    if not pools:
        raise UserError(f"No images (.jpg/.jpeg/.png) found in {folder}.", "Pass --calib-data DIR with images.")
    chosen: list[Path] = []
    depth = 0
    while len(chosen) < count and any(depth < len(p) for p in pools):
        order = list(range(len(pools)))
        rng.shuffle(order)
        for i in order:
            if depth < len(pools[i]) and len(chosen) < count:
                chosen.append(pools[i][depth])
        depth += 1
    return chosen


def calibration_batch(files: list[Path], transform) -> tuple[np.ndarray, list[Path]]:
    """Preprocessed calibration images (unreadable ones are left out and reported by the caller)."""
    from benchbox.datasets.transforms import UnreadableImage, load_rgb

    arrays, used = [], []
    for path in files:
        try:
            arrays.append(transform(load_rgb(path)))
            used.append(path)
        except UnreadableImage:
            continue
    if not arrays:
        raise UserError("None of the calibration images could be read.", "Check --calib-data.")
    return np.stack(arrays), used


class _ArrayReader:
    """ONNX Runtime CalibrationDataReader over a preprocessed array (batches of 1: the histogram calibrators
    stack per-batch arrays and fail on a short last batch)."""

    def __init__(self, batch: np.ndarray, input_name: str, size: int = 1) -> None:
        self.batch, self.input_name, self.size, self.position = batch, input_name, size, 0

    def get_next(self) -> dict[str, np.ndarray] | None:
        if self.position >= self.batch.shape[0]:
            return None
        chunk = self.batch[self.position : self.position + self.size]
        self.position += self.size
        return {self.input_name: chunk}

    def rewind(self) -> None:
        self.position = 0


def cpu_has_vnni() -> bool:
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return True
    return any(f in flags for f in ("avx512_vnni", "avx_vnni", "amx_int8"))


def preprocess_for_quantization(fp32_path: Path, out_path: Path) -> Path:
    """ORT's quantization pre-processing (symbolic shape inference, optimisation, shape inference)."""
    from onnxruntime.quantization.shape_inference import quant_pre_process

    if not out_path.is_file():
        tmp = out_path.with_suffix(".tmp.onnx")
        quant_pre_process(str(fp32_path), str(tmp), skip_symbolic_shape=False)
        tmp.replace(out_path)
    return out_path


def quantize(
    pre_path: Path, out_path: Path, flavour: str, method: str, batch: np.ndarray, input_name: str = "input"
) -> dict[str, Any]:
    """Write the Q/DQ model for a flavour and return its settings."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    if flavour not in FLAVOURS:
        raise UserError(f"Unknown INT8 flavour {flavour!r}.", f"Use one of {FLAVOURS}.")
    if method not in METHODS:
        raise UserError(f"Unknown calibration method {method!r}.", f"Use one of {', '.join(METHODS)}.")
    calib = {
        "minmax": CalibrationMethod.MinMax,
        "entropy": CalibrationMethod.Entropy,
        "percentile": CalibrationMethod.Percentile,
    }[method]
    if flavour == "int8":
        settings = {
            "activation_type": QuantType.QInt8,
            "weight_type": QuantType.QInt8,
            "per_channel": True,
            "reduce_range": False,
            "extra_options": {"ActivationSymmetric": True, "WeightSymmetric": True},
        }
    else:
        settings = {
            "activation_type": QuantType.QUInt8,
            "weight_type": QuantType.QInt8,
            "per_channel": True,
            "reduce_range": not cpu_has_vnni(),
            "extra_options": {"ActivationSymmetric": False, "WeightSymmetric": True},
        }
    if method == "entropy":
        settings["extra_options"]["CalibTensorRangeSymmetric"] = flavour == "int8"
    tmp = out_path.with_suffix(".tmp.onnx")
    quantize_static(
        str(pre_path),
        str(tmp),
        _ArrayReader(batch, input_name),
        quant_format=QuantFormat.QDQ,
        calibrate_method=calib,
        **settings,
    )
    tmp.replace(out_path)
    return {
        "flavour": flavour,
        "activations": "int8 symmetric" if flavour == "int8" else "uint8 asymmetric",
        "weights": "int8 symmetric per-channel" + (" (7-bit, reduce_range)" if settings["reduce_range"] else ""),
        "format": "QDQ",
        "method": method,
    }


class Int8FromOnnx(PrecisionFromOnnx):
    """FP32 ONNX -> INT8 Q/DQ ONNX in one flavour, calibrated, checked against FP32 and recorded."""

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
        pre = preprocess_for_quantization(fp32_path, self.artifact.directory / "model.fp32.pre-quant.onnx")
        info = quantize(pre, out_path, self.precision, self.method, batch)
        used = set(map(str, self._used))
        files = [{"path": str(p), "sha256": h} for p, h in zip(self.calib_files, self._hashes) if str(p) in used]
        return {
            "quantization": info,
            "calibration": {"method": self.method, "size": len(files), "files": files, "note": self.note},
        }

"""Int8FromOnnx: static post-training quantization to Q/DQ ONNX with ONNX Runtime's tools, two flavours.

- `int8` (TensorRT): signed activations and weights, symmetric (zero points 0), per-channel weights, FP32 biases.
- `int8-cpu` (ONNX Runtime on x86): unsigned activations, signed per-channel weights (U8S8), the fast path
  of ORT's CPU kernels. On CPUs without VNNI, weights use 7 bits (`reduce_range`) to avoid saturation.
Calibration images go through exactly the artifact's eval transform.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from benchbox.artifact import Artifact, content_key, sha256_file
from benchbox.environment import cpu_has_vnni
from benchbox.errors import UserError
from benchbox.exporters.calibration import CropReader
from benchbox.exporters.precision import PrecisionFromOnnx

FLAVOURS = ("int8", "int8-cpu")
METHODS = ("minmax", "entropy", "percentile")
MAX_STRIDE = 16  # images whose activations ONNX Runtime holds at once while calibrating


def calibration_stride(count: int, limit: int = MAX_STRIDE) -> int:
    """The largest stride <= limit that divides `count` (ORT requires strides to tile the data exactly)."""
    return max(s for s in range(1, min(limit, count) + 1) if count % s == 0)


def preprocess_for_quantization(fp32_path: Path, out_path: Path) -> Path:
    """ORT's quantization pre-processing (symbolic shape inference, optimisation, shape inference)."""
    from onnxruntime.quantization.shape_inference import quant_pre_process

    if not out_path.is_file():
        tmp = out_path.with_suffix(".tmp.onnx")
        quant_pre_process(str(fp32_path), str(tmp), skip_symbolic_shape=False)
        tmp.replace(out_path)
    return out_path


def quantize(
    pre_path: Path, out_path: Path, flavour: str, method: str, reader: CropReader, stride: int = MAX_STRIDE
) -> dict[str, Any]:
    """Write the Q/DQ model for a flavour and return its settings.

    Calibration runs in strides of at most `stride` images: ORT collects each stride's activations, folds them
    into its running min/max or histograms and drops them, so memory no longer grows with the image count."""
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
            # biases stay FP32: TensorRT's parser dequantizes INT8/FP8/INT4 only, not INT32 (`benchbox lint`)
            "extra_options": {"ActivationSymmetric": True, "WeightSymmetric": True, "QuantizeBias": False},
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
    strided = calibration_stride(len(reader), stride)
    settings["extra_options"]["CalibStridedMinMax"] = strided
    tmp = out_path.with_suffix(".tmp.onnx")
    quantize_static(
        str(pre_path),
        str(tmp),
        reader,
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
        "calibration_stride": strided,  # images whose activations were held at once
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
                "step": "int8-v2",
                "method": self.method,
                "calib": self._hashes,
                "ort": onnxruntime.__version__,
                # the int8-cpu flavour quantizes weights to 7 bits on CPUs without VNNI: another machine, another file
                "reduce_range": self.precision == "int8-cpu" and not cpu_has_vnni(),
            }
        )

    def build_impl(self, fp32_path: Path, out_path: Path, crops: np.ndarray) -> dict[str, Any]:
        pre = preprocess_for_quantization(fp32_path, self.artifact.directory / "model.fp32.pre-quant.onnx")
        from benchbox.exporters.onnx import input_name_of

        reader = CropReader(crops, self.transform, input_name_of(fp32_path))
        info = quantize(pre, out_path, self.precision, self.method, reader)
        used = set(map(str, self.used_files))
        files = [{"path": str(p), "sha256": h} for p, h in zip(self.calib_files, self._hashes) if str(p) in used]
        calibration = {
            "method": self.method,
            "size": len(files),
            "files": files,
            "content_ids": [f"{i:016x}" for i in self.used_ids],  # what eval's overlap check compares
            "note": self.note,
        }
        return {"quantization": info, "calibration": calibration}

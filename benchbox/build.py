"""`benchbox export`: FP32 ONNX, then the FP16 and INT8 artifacts derived from it, each cached by content key."""

from __future__ import annotations

from pathlib import Path

from benchbox.errors import UserError
from benchbox.exporters.fp16 import Fp16FromOnnx
from benchbox.exporters.int8 import Int8FromOnnx
from benchbox.exporters.manifest import Artifact
from benchbox.exporters.onnx import OnnxFromTorch
from benchbox.exporters.precision import PARITY_HELD_OUT

KNOWN = ("fp32", "fp16", "int8", "int8-cpu")


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
    tf32: bool = False,
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
        Fp16FromOnnx(artifact, calib_files, parity_files).run()
    if wants_int8:
        for flavour in ("int8", "int8-cpu"):
            Int8FromOnnx(artifact, flavour, calib_files, parity_files, calib_method, calib_note).run()
    if trt:
        from benchbox.exporters.tensorrt import build_engines

        build_engines(artifact, [p for p in artifact.precisions if p != "int8-cpu"], tf32=tf32)
    return artifact

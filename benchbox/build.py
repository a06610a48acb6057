"""`benchbox export`: FP32 ONNX, then the FP16 and INT8 artifacts derived from it, each cached by content key."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from benchbox.artifact import Artifact
from benchbox.errors import UserError, printable
from benchbox.options import ExportOptions, ModelOptions

StepFn = Callable[[str], None]


def default_out(model: str) -> Path:
    """Where an export goes by default: artifacts/NAME, or for an ONNX file artifacts/STEM-HASH (named by content:
    two model.onnx from different folders never share a folder)."""
    if model.lower().endswith(".onnx"):
        from benchbox.hashing import sha256_file

        try:
            return Path("artifacts") / f"{Path(model).stem}-{sha256_file(model)[:8]}"
        except OSError:
            return Path("artifacts") / Path(model).stem  # missing: the export says so
    return Path("artifacts") / model.replace(":", "_").replace("/", "_")


def check_export_inputs(model: str, out: Path, export: ExportOptions) -> None:
    """Everything that can be checked before the (slow) export starts."""
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {printable(out)} is an existing file, not a folder.", "Pass a folder for the artifact.")
    wants_int8 = any(p.startswith("int8") for p in export.precisions)
    if wants_int8 and export.calib_data is None:
        raise UserError(
            "INT8 needs calibration images, and none were given.",
            "Pass --calib-data DIR (an ImageNet-style or flat folder of images disjoint from your test sets, e.g. "
            "part of the ImageNet train split) and optionally --calib-size N.",
        )
    if export.calib_data is not None and not Path(export.calib_data).is_dir():
        raise UserError(
            f"Calibration folder {printable(export.calib_data)} does not exist.", "Pass --calib-data DIR with images."
        )
    if export.trt:
        from benchbox.environment import require_tensorrt

        require_tensorrt()


def fp32_artifact(model: str, out: Path, export: ExportOptions, model_options: ModelOptions, parity_files, step):
    """The FP32 file: a user's ONNX file as it is, or an export from PyTorch with a parity check."""
    from benchbox.exporters.onnx import OnnxFromTorch
    from benchbox.exporters.onnx_file import SOURCE_OPTIONS, OnnxFromFile, is_onnx_source

    if is_onnx_source(model):
        step(f"FP32: validate {printable(model)} and copy it into the artifact")
        return OnnxFromFile(model, out, model_options)()
    given = [f"--{k.replace('_', '-')}" for k in (*SOURCE_OPTIONS, "make_batch_dynamic") if getattr(model_options, k)]
    if given:
        raise UserError(
            f"{', '.join(given)} describe an ONNX file's preprocessing; {model} has its own.",
            "Drop them, or pass the path of an .onnx file as MODEL.",
        )
    step(f"FP32 ONNX of {model} (opset {export.opset}) with a parity check")
    return OnnxFromTorch(
        model,
        out,
        model_options.checkpoint,
        export.opset,
        [str(p) for p in parity_files] or None,
        offline=export.offline,
    )()


def _report_calibration(builder, step: StepFn, what: str) -> None:
    """Run a precision step and say on how many images it really calibrated, naming the ones it could not read."""
    builder.run()
    asked, used, skipped = len(builder.calib_files), len(builder.used_files), builder.skipped_files
    if not asked or not (used or skipped):
        return  # reused from an earlier export, or calibrated on generated images (said when it was built)
    text = f"{what}: calibrated on {used} of {asked} images"
    if skipped:
        names = "; ".join(f"{printable(path)}: {why}" for path, why in skipped[:3])
        more = f" and {len(skipped) - 3} more" if len(skipped) > 3 else ""
        text += f" ({len(skipped)} unreadable, skipped: {names}{more})"
    step(text)


def build_artifacts(
    model: str,
    out: Path | None = None,
    export: ExportOptions | None = None,
    model_options: ModelOptions | None = None,
    calib_note: str | None = None,
    on_step: StepFn | None = None,
) -> Artifact:
    """Export MODEL and build every requested precision into one artifact directory."""
    from benchbox.exporters.calibration import select_calibration_files
    from benchbox.exporters.fp16 import Fp16FromOnnx
    from benchbox.exporters.int8 import Int8FromOnnx
    from benchbox.exporters.precision import PARITY_HELD_OUT

    export = export or ExportOptions()
    model_options = model_options or ModelOptions()
    out = Path(out or default_out(model))
    step = on_step or (lambda text: None)
    check_export_inputs(model, out, export)
    calib_files: list[Path] = []
    parity_files: list[Path] = []
    if export.calib_data is not None:
        selected = select_calibration_files(Path(export.calib_data), export.calib_size + PARITY_HELD_OUT)
        calib_files, parity_files = selected[: export.calib_size], selected[export.calib_size :]
    artifact = fp32_artifact(model, out, export, model_options, parity_files, step)
    if "fp16" in export.precisions:
        step("FP16: activation ranges, conversion, parity against FP32")
        _report_calibration(Fp16FromOnnx(artifact, calib_files, parity_files), step, "FP16 ranges")
    if any(p.startswith("int8") for p in export.precisions):
        flavours = ("int8", "int8-cpu") if "int8" in export.precisions else ("int8-cpu",)
        for flavour in flavours:
            step(f"INT8 ({flavour}): {export.calib_method} calibration, parity")
            built = Int8FromOnnx(artifact, flavour, calib_files, parity_files, export.calib_method, calib_note)
            _report_calibration(built, step, f"INT8 ({flavour})")
    if export.trt:
        from benchbox.exporters.tensorrt import build_engines

        step("TensorRT engines")
        build_engines(artifact, [p for p in artifact.precisions if p != "int8-cpu"], tf32=export.tf32)
    return artifact

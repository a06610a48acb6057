"""OnnxFromFile: a user's own ONNX file as the FP32 artifact (what Polygraphy and trtexec start from).

The file is validated (onnx.checker, one float32 NCHW image input with three channels, a (batch, 1000) output, a
dynamic batch axis — a fixed one is rewritten only when asked, and the rewrite is verified by running the
graph at two batch sizes), copied into the artifact, and recorded with its sha256. An ONNX file does not say how
its images were preprocessed, so that has to be given: `--data-config FILE.json`, `--config-from TIMM_NAME`, or
`--mean/--std/--crop-pct/--interpolation` (the input size is read from the file). FP16 and INT8 are then built
from it exactly as from an export; their parity is measured against this FP32 file, as there is no PyTorch model.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from benchbox.artifact import SCHEMA_VERSION, Artifact, content_key, now_iso, sha256_file
from benchbox.environment import library_versions
from benchbox.errors import UserError, printable
from benchbox.models import DataConfig

SOURCE_OPTIONS = ("input_size", "mean", "std", "crop_pct", "interpolation", "data_config", "config_from")


def is_onnx_source(model: str) -> bool:
    return model.lower().endswith(".onnx")


def data_config_for(model_options, file_size: tuple[int, int, int]) -> DataConfig:
    """The preprocessing of an ONNX source: a JSON file or a timm model's config, then the single flags on top."""
    given = {k: getattr(model_options, k) for k in SOURCE_OPTIONS if getattr(model_options, k) is not None}
    if not {"data_config", "config_from", "mean", "std"} & set(given):
        raise UserError(
            "An ONNX file does not say how its images were preprocessed.",
            "Pass --data-config FILE.json, --config-from TIMM_NAME (borrow a timm model's preprocessing), or "
            "--mean/--std (and --crop-pct, --interpolation); the input size is read from the file.",
        )
    base: dict[str, Any] = {}
    if model_options.config_from:
        import timm

        cfg = timm.get_pretrained_cfg(model_options.config_from)
        if cfg is None:
            raise UserError(f"timm knows no model {model_options.config_from!r} to borrow preprocessing from.")
        from benchbox.models import data_config_from_timm

        base = data_config_from_timm(cfg.to_dict()).to_dict()
    if model_options.data_config:
        try:
            base.update(json.loads(Path(model_options.data_config).read_text()))
        except (OSError, json.JSONDecodeError) as exc:
            raise UserError(f"Cannot read --data-config {printable(model_options.data_config)}: {exc}") from exc
    for key in ("mean", "std", "crop_pct", "interpolation"):
        if key in given:
            base[key] = given[key]
    size = tuple(given.get("input_size") or file_size)
    if tuple(size) != tuple(file_size):
        raise UserError(f"--input-size {size} differs from the ONNX file's input {file_size}.")
    base["input_size"], base["num_classes"] = list(file_size), 1000
    try:
        return DataConfig.from_dict(base)
    except (TypeError, ValueError) as exc:
        raise UserError(f"Invalid preprocessing for the ONNX file: {exc}") from exc


class OnnxFromFile:
    """Validate a user's ONNX file, make it the FP32 file of an artifact, write the manifest."""

    def __init__(self, path: str | Path, out: str | Path, model_options) -> None:
        self.path, self.out, self.options = Path(path), Path(out), model_options

    def __call__(self) -> Artifact:
        import onnx

        if not self.path.is_file():
            raise UserError(f"ONNX file {printable(self.path)} not found.")
        try:
            model = onnx.load(str(self.path))
        except Exception as exc:
            raise UserError(f"{printable(self.path)} is not a readable ONNX model: {exc}") from exc
        try:
            onnx.checker.check_model(model, full_check=True)
        except Exception as exc:
            raise UserError(f"{printable(self.path)} fails onnx.checker: {str(exc).splitlines()[0][:300]}") from exc
        tensor, size, batch = self._image_input(model)
        config = data_config_for(self.options, size)
        original = sha256_file(self.path)
        key = content_key(
            {
                "onnx": original,
                "data_config": config.to_dict(),
                "dynamic": self.options.make_batch_dynamic,
                "benchbox": library_versions()["benchbox"],
            }
        )
        reused = self._reusable(key)
        if reused is not None:
            return reused
        changes = []
        if batch is not None:
            if not self.options.make_batch_dynamic:
                raise UserError(
                    f"{printable(self.path)} fixes the batch size to {batch} on input {tensor.name!r}: TensorRT "
                    "profiles and eval's last, smaller batch need it dynamic.",
                    "Pass --make-batch-dynamic to let benchbox rewrite the batch axis (it verifies the result), or "
                    "re-export the model with a dynamic batch dimension.",
                )
            model = make_batch_dynamic(model)
            changes.append(f"batch axis of the input and outputs made dynamic (was fixed to {batch})")
        self.out.mkdir(parents=True, exist_ok=True)
        target = self.out / "model.fp32.onnx"
        tmp = target.with_suffix(".tmp")
        try:
            onnx.save(model, str(tmp))
            check_runs(tmp, tensor.name, size, verify_batches=bool(changes))
            tmp.replace(target)
        finally:
            tmp.unlink(missing_ok=True)  # a refused file leaves nothing behind
        outputs = [o.name for o in model.graph.output]
        manifest = {
            "schema": SCHEMA_VERSION,
            "model": self.path.stem,
            "source": {"kind": "onnx", "path": str(self.path.resolve()), "sha256": original, "changes": changes},
            "export_key": key,
            "created": now_iso(),
            "data_config": config.to_dict(),
            "inputs": [{"name": tensor.name, "shape": ["batch", *size], "dtype": "float32"}],
            "outputs": [{"name": outputs[0], "shape": ["batch", 1000], "dtype": "float32"}],
            "opset": next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None),
            "exporter": "user ONNX file",
            "files": {"fp32": {"path": target.name, "sha256": sha256_file(target), "parity": {}}},
            "versions": library_versions(),
        }
        artifact = Artifact(self.out, manifest)
        artifact.save()
        return artifact

    def _reusable(self, key: str) -> Artifact | None:
        return Artifact.reusable(self.out, key)

    def _image_input(self, model):
        """The one image input: (tensor, (3, H, W), fixed batch size or None)."""
        initializers = {i.name for i in model.graph.initializer}
        inputs = [i for i in model.graph.input if i.name not in initializers]
        if len(inputs) != 1:
            raise UserError(
                f"{printable(self.path)} has {len(inputs)} inputs; benchbox evaluates image classifiers "
                "with one image input."
            )
        tensor = inputs[0]
        elem = tensor.type.tensor_type.elem_type
        dims = tensor.type.tensor_type.shape.dim
        static = [d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None for d in dims]
        if elem != 1 or len(dims) != 4 or static[1] != 3 or static[2] is None or static[3] is None:
            shape = [d.dim_param or d.dim_value for d in dims]
            raise UserError(
                f"Input {tensor.name!r} of {printable(self.path)} is {shape} of type {elem}; benchbox needs a "
                "float32 (batch, 3, H, W) image with a static H and W."
            )
        return tensor, (3, static[2], static[3]), static[0]


def make_batch_dynamic(model):
    """Set a symbolic batch dimension on the graph's inputs and outputs; intermediate shapes are inferred again."""
    for value in [*model.graph.input, *model.graph.output]:
        dims = value.type.tensor_type.shape.dim
        if dims:
            dims[0].Clear()
            dims[0].dim_param = "batch"
    del model.graph.value_info[:]
    return model


def check_runs(path: Path, input_name: str, size: tuple[int, int, int], verify_batches: bool) -> None:
    """Run the graph on CPU: it must give (batch, 1000); after a rewrite, batch 3 must equal three batch-1 runs."""
    import onnxruntime as ort

    from benchbox.exporters.onnx import check_output_classes

    options = ort.SessionOptions()
    options.log_severity_level = 3
    try:
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        batch = np.random.default_rng(0).standard_normal((3, *size), dtype=np.float32)
        out = session.run(None, {input_name: batch})[0]
    except Exception as exc:
        hint = "the graph fixes the batch size inside (e.g. a Reshape to a constant batch)" if verify_batches else ""
        raise UserError(
            f"ONNX Runtime cannot run {printable(path)} at batch 3: {str(exc).splitlines()[0][:300]}", hint or None
        ) from exc
    if out.ndim != 2 or out.shape[0] != 3:
        raise UserError(f"The ONNX model returns {out.shape} for a batch of 3, not (batch, classes) logits.")
    check_output_classes(int(out.shape[1]), printable(path))
    if verify_batches:
        singles = np.concatenate([session.run(None, {input_name: batch[i : i + 1]})[0] for i in range(3)])
        if not np.allclose(out, singles, rtol=1e-4, atol=1e-4):
            raise UserError(
                "After making the batch axis dynamic, a batch of 3 no longer equals three single images: "
                "the graph mixes samples or fixes the batch size inside."
            )

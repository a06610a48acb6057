"""OnnxFromTorch: torch module -> FP32 ONNX with a dynamic batch axis, checked and compared with PyTorch."""

from __future__ import annotations

import inspect
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from benchbox.artifact import (
    MANIFEST_NAME,
    SCHEMA_VERSION,
    Artifact,
    content_key,
    now_iso,
    sha256_file,
    write_json_atomic,
)
from benchbox.environment import library_versions
from benchbox.errors import UserError
from benchbox.models import ResolvedModel, resolve_model

DEFAULT_OPSET = 18
PARITY_IMAGES = 16
INPUT_NAME, OUTPUT_NAME = "input", "logits"
NUM_CLASSES = 1000  # the label space of the whole ImageNet test-set family


def input_name(session) -> str:
    """The (single) image input of an ONNX Runtime session."""
    return session.get_inputs()[0].name


def input_name_of(path: str | Path) -> str:
    """The image input's name in an ONNX file (read from the graph, without loading the weights)."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    initializers = {i.name for i in model.graph.initializer}
    names = [i.name for i in model.graph.input if i.name not in initializers]
    return names[0] if names else INPUT_NAME


def check_output_classes(classes: int, what: str) -> None:
    """Refuse models whose output is not the 1000 ImageNet-1k classes: every test set is scored in that space."""
    if classes != NUM_CLASSES:
        raise UserError(
            f"{what} outputs {classes} classes; benchbox scores the {NUM_CLASSES} ImageNet-1k classes (every set "
            "of the family is labelled in that space).",
            "Export a model with a 1000-class ImageNet head (e.g. the pretrained classifier, not a fine-tuned one).",
        )


def hub_revision(name: str) -> str | None:
    """The cached hub revision of a timm or hf-hub name (None when nothing is cached), without network access."""
    from benchbox.models.hub import cached_hub_file

    repo = name.split(":", 1)[1] if name.startswith("hf-hub:") else None
    if repo is None and ":" not in name:
        try:
            import timm

            cfg = timm.get_pretrained_cfg(name)
            repo = getattr(cfg, "hf_hub_id", None) if cfg is not None else None
        except Exception:
            repo = None
    found = cached_hub_file(repo) if repo else None
    return found[1] if found else None


class OnnxFromTorch:
    """Export MODEL to `out/model.fp32.onnx` and write the artifact manifest; reuse an identical earlier export."""

    def __init__(
        self,
        model: str,
        out: str | Path,
        checkpoint: str | Path | None = None,
        opset: int = DEFAULT_OPSET,
        parity_images: list[str] | None = None,
        offline: bool = False,
    ) -> None:
        self.model_name = model
        self.out = Path(out)
        self.checkpoint = Path(checkpoint) if checkpoint else None
        self.opset = opset
        self.parity_images = parity_images
        self.offline = offline

    def export_key(self) -> str:
        from benchbox.models.lite import LITE_PACKAGES, lite_weights_path

        weights = None
        if self.checkpoint is not None:
            weights = sha256_file(self.checkpoint)
        elif self.model_name in LITE_PACKAGES:
            weights = sha256_file(lite_weights_path(self.model_name))
        else:  # a hub model: the revision in the local cache, so a newer download is a new export
            weights = hub_revision(self.model_name)
        versions = library_versions()
        return content_key(
            {
                "model": self.model_name,
                "weights": weights,
                "opset": self.opset,
                "torch": versions["torch"],
                "timm": versions["timm"],
                "benchbox": versions["benchbox"],
            }
        )

    def __call__(self) -> Artifact:
        """Build (or reuse) the artifact and return it."""
        from benchbox.vocabulary import OPSETS

        if not OPSETS[0] <= self.opset <= OPSETS[1]:
            raise UserError(
                f"Opset {self.opset} is out of range.",
                f"Use an opset between {OPSETS[0]} and {OPSETS[1]} (default 18).",
            )
        key = self.export_key()
        existing = self._reusable(key)
        if existing is not None:
            return existing
        resolved = resolve_model(self.model_name, self.checkpoint, self.offline)
        self._check_outputs(resolved)
        return self._export_impl(resolved, key)

    @staticmethod
    def _check_outputs(resolved: ResolvedModel) -> None:
        """One forward pass before the (slow) export: the output must be (batch, 1000) logits."""
        import torch

        try:
            with torch.no_grad():
                out = resolved.module(torch.zeros(2, *resolved.data_config.input_size))
        except Exception as exc:
            raise UserError(
                f"{resolved.name} fails on a (2, {', '.join(map(str, resolved.data_config.input_size))}) input: "
                f"{type(exc).__name__}: {exc}",
                "Check the model's input size in its data config.",
            ) from exc
        if not isinstance(out, torch.Tensor) or out.ndim != 2 or out.shape[0] != 2:
            shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            raise UserError(f"{resolved.name} returns {shape}, not (batch, classes) logits.")
        check_output_classes(int(out.shape[1]), resolved.name)

    def _reusable(self, key: str) -> Artifact | None:
        return Artifact.reusable(self.out, key)

    def _export_impl(self, resolved: ResolvedModel, key: str) -> Artifact:
        import onnx

        self.out.mkdir(parents=True, exist_ok=True)
        path = self.out / "model.fp32.onnx"
        tmp = self.out / "model.fp32.onnx.tmp"
        try:
            exporter = export_onnx(resolved.module, resolved.data_config.input_size, tmp, self.opset)
            try:
                onnx.checker.check_model(str(tmp), full_check=True)
            except Exception as exc:
                raise UserError(f"The exported ONNX graph fails onnx.checker: {exc}") from exc
            tmp.replace(path)
        finally:
            for leftover in (tmp, tmp.with_name(tmp.name + ".data")):
                leftover.unlink(missing_ok=True)  # a refused export leaves nothing behind
        parity = torch_onnx_parity(resolved, path, self.parity_images)
        manifest: dict[str, Any] = {
            "schema": SCHEMA_VERSION,
            "model": resolved.name,
            "source": {**resolved.source, "checkpoint": str(self.checkpoint) if self.checkpoint else None},
            "export_key": key,
            "created": now_iso(),
            "data_config": resolved.data_config.to_dict(),
            "inputs": [{"name": INPUT_NAME, "shape": ["batch", *resolved.data_config.input_size], "dtype": "float32"}],
            "outputs": [{"name": OUTPUT_NAME, "shape": ["batch", NUM_CLASSES], "dtype": "float32"}],
            "opset": self.opset,
            "exporter": exporter,
            "files": {"fp32": {"path": path.name, "sha256": sha256_file(path), "parity": parity}},
            "versions": library_versions(),
        }
        write_json_atomic(self.out / MANIFEST_NAME, manifest)
        return Artifact(self.out, manifest)


def export_onnx(module: Any, input_size: tuple[int, int, int], path: Path, opset: int) -> str:
    """torch.onnx.export with a dynamic batch (example batch 2: torch.export specialises 0/1); returns the exporter.

    The dynamo exporter is tried first; models it cannot capture fall back to the TorchScript exporter.
    """
    import torch

    example = torch.randn(2, *input_size)
    arg_name = next(iter(inspect.signature(module.forward).parameters), "x")
    common = {"input_names": [INPUT_NAME], "output_names": [OUTPUT_NAME]}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            torch.onnx.export(
                module,
                (example,),
                str(path),
                dynamic_shapes={arg_name: {0: "batch"}},
                opset_version=opset,
                dynamo=True,
                external_data=False,
                verbose=False,
                **common,
            )
            return "dynamo"
        except Exception:
            torch.onnx.export(
                module,
                (example,),
                str(path),
                opset_version=min(opset, 20),
                dynamo=False,
                dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
                **common,
            )
            return "torchscript"


def parity_inputs(resolved_cfg, images: list[str] | None, n: int = PARITY_IMAGES) -> tuple[np.ndarray, str]:
    """A batch of real images (when given) or generated ones, through the artifact's eval transform."""
    from benchbox.datasets.synthetic import synthetic_batch
    from benchbox.datasets.transforms import EvalTransform, UnreadableImage, load_rgb

    transform = EvalTransform(resolved_cfg)
    if images:
        arrays = []
        for path in images:
            try:
                arrays.append(transform(load_rgb(path)))
            except UnreadableImage:
                continue
            if len(arrays) == n:
                break
        if arrays:
            return np.stack(arrays), "held-out real images"
    return synthetic_batch(n, transform, seed=1234), "generated images"


def compare_logits(reference: np.ndarray, other: np.ndarray) -> dict[str, Any]:
    """Max/mean absolute logit difference and top-1 agreement (percent) between two runs on the same inputs."""
    reference = np.asarray(reference, np.float32)
    other = np.asarray(other, np.float32)
    finite = bool(np.isfinite(other).all())
    diff = np.abs(reference - other)
    agree = float(np.mean(reference.argmax(1) == other.argmax(1)) * 100.0)
    return {
        "max_abs_diff": float(np.nanmax(diff)) if finite else float("inf"),
        "mean_abs_diff": float(np.nanmean(diff)) if finite else float("inf"),
        "top1_agreement": agree,
        "n": int(reference.shape[0]),
        "finite": finite,
    }


def torch_onnx_parity(resolved: ResolvedModel, path: Path, images: list[str] | None) -> dict[str, Any]:
    """Run the same batch through PyTorch and ONNX Runtime (CPU) and compare the logits."""
    import onnxruntime as ort
    import torch

    batch, source = parity_inputs(resolved.data_config, images)
    with torch.no_grad():
        reference = resolved.module(torch.from_numpy(batch)).numpy()
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    produced = session.run(None, {INPUT_NAME: batch})[0]
    result = compare_logits(reference, produced)
    result["source"] = source
    result["reference"] = "torch-fp32-cpu"
    result["passed"] = bool(result["max_abs_diff"] < 1e-3 and result["top1_agreement"] == 100.0)
    return result

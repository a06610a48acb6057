"""EngineFromOnnx: precision ONNX -> TensorRT engine (TensorRT 10 and 11), cached per GPU and version.

- TensorRT >= 10.12 and 11.x: strongly typed networks; precision comes from the ONNX graph (the FP16 graph,
  the symmetric `int8` Q/DQ flavour). No precision builder flags (11.x removed them).
- TensorRT < 10.12: weakly typed; FP16 is the FP16 builder flag on the FP32 graph, and Q/DQ graphs need the
  INT8 flag (explicit quantization).
- One optimization profile over the batch range, a workspace limit, a timing cache file, TF32 cleared for
  FP32 unless asked for (recorded). The ONNX file is parsed from its path, so external data works.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from benchbox.errors import UserError
from benchbox.exporters.manifest import content_key, write_json_atomic

STRONG_TYPING_FROM = (10, 12)
DEFAULT_WORKSPACE = 4 << 30


def parse_version(version: str) -> tuple[int, int]:
    parts = [int(p) for p in version.split(".")[:2] if p.isdigit()]
    return tuple((parts + [0, 0])[:2])  # type: ignore[return-value]


def strongly_typed(version: str) -> bool:
    return parse_version(version) >= STRONG_TYPING_FROM


def profile_shapes(
    input_size: tuple[int, ...], min_batch: int = 1, opt_batch: int = 8, max_batch: int = 32
) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
    """(min, opt, max) input shapes of the single optimization profile over the batch range."""
    if not 1 <= min_batch <= opt_batch <= max_batch:
        raise UserError(
            f"Batch profile must satisfy 1 <= min <= opt <= max, got {min_batch}, {opt_batch}, {max_batch}."
        )
    dims = tuple(int(d) for d in input_size)
    return (min_batch, *dims), (opt_batch, *dims), (max_batch, *dims)


@dataclass(frozen=True)
class EngineSpec:
    """Everything an engine depends on; its hash is the cache key."""

    onnx_sha256: str
    precision: str
    trt_version: str
    gpu_name: str
    compute_capability: str
    profile: tuple
    workspace_bytes: int = DEFAULT_WORKSPACE
    tf32: bool = False
    builder_optimization_level: int = 3
    extra: dict[str, Any] = field(default_factory=dict)

    def key(self) -> str:
        data = asdict(self)
        data["profile"] = [list(s) for s in self.profile]
        return content_key(data)


def source_precision(trt_version: str, precision: str) -> tuple[str, list[str]]:
    """Which artifact ONNX to parse and which builder flags to set, by API generation."""
    if precision not in ("fp32", "fp16", "int8", "int8-trt", "bf16"):
        raise UserError(f"TensorRT has no {precision} path in benchbox.", "Use fp32, fp16 or int8.")
    precision = "int8" if precision == "int8-trt" else precision
    if strongly_typed(trt_version):
        if precision == "bf16":
            raise UserError("BF16 on strongly typed TensorRT needs a BF16 ONNX graph, which benchbox does not build.")
        return precision, []
    if precision == "fp16":
        return "fp32", ["FP16"]
    if precision == "int8":
        return "int8", ["INT8", "FP16"]
    if precision == "bf16":
        return "fp32", ["BF16"]
    return "fp32", []


def check_cached(engine_dir: Path, spec: EngineSpec) -> tuple[Path | None, str | None]:
    """(engine path, None) when a matching engine exists; (None, reason) when one exists for something else."""
    key = spec.key()
    path = engine_dir / f"{spec.precision}-{key}.engine"
    meta = path.with_suffix(".json")
    if path.is_file() and meta.is_file():
        return path, None
    labels = (
        ("gpu_name", "GPU"),
        ("compute_capability", "compute capability"),
        ("trt_version", "TensorRT version"),
        ("onnx_sha256", "ONNX model"),
    )
    closest: tuple[int, str] | None = None
    for other in sorted(engine_dir.glob(f"{spec.precision}-*.json")):
        try:
            old = json.loads(other.read_text())
        except json.JSONDecodeError:
            continue
        diffs = [
            f"{label} {old.get(name)!r} (this run: {getattr(spec, name)!r})"
            for name, label in labels
            if old.get(name) != getattr(spec, name)
        ]
        reason = (
            (
                f"the cached {spec.precision} engine {other.with_suffix('.engine').name} was built for "
                f"{'; '.join(diffs)}: refusing it and rebuilding"
            )
            if diffs
            else (f"the cached {spec.precision} engine was built with other options: rebuilding")
        )
        if closest is None or len(diffs) < closest[0]:
            closest = (len(diffs), reason)
    if closest is not None:
        return None, closest[1]
    return None, None


class EngineFromOnnx:
    """Build (or reuse) the TensorRT engine for one precision of an artifact."""

    def __init__(
        self,
        artifact,
        precision: str,
        opt_batch: int = 8,
        max_batch: int = 32,
        workspace_bytes: int = DEFAULT_WORKSPACE,
        tf32: bool = False,
        trt_module=None,
        gpu: dict[str, str] | None = None,
    ) -> None:
        self.artifact = artifact
        self.precision = precision
        self.opt_batch, self.max_batch = opt_batch, max_batch
        self.workspace_bytes = workspace_bytes
        self.tf32 = tf32
        self._trt = trt_module
        self._gpu = gpu
        self.notes: list[str] = []

    @property
    def trt(self):
        if self._trt is None:
            from benchbox.runtime.tensorrt import require_tensorrt

            require_tensorrt()
            import tensorrt

            self._trt = tensorrt
        return self._trt

    def spec(self) -> EngineSpec:
        source, flags = source_precision(self.trt.__version__, self.precision)
        gpu = self._gpu or _gpu_identity()
        entry = self.artifact.entry(source)
        profile = profile_shapes(self.artifact.data_config.input_size, 1, self.opt_batch, self.max_batch)
        return EngineSpec(
            entry["sha256"],
            self.precision,
            self.trt.__version__,
            gpu["name"],
            gpu["compute_capability"],
            profile,
            self.workspace_bytes,
            self.tf32,
            extra={"source": source, "flags": flags},
        )

    def __call__(self) -> tuple[Path, EngineSpec]:
        spec = self.spec()
        engine_dir = self.artifact.directory / "engines"
        engine_dir.mkdir(exist_ok=True)
        cached, reason = check_cached(engine_dir, spec)
        if cached is not None:
            return cached, spec
        if reason:
            self.notes.append(reason)
        path = engine_dir / f"{spec.precision}-{spec.key()}.engine"
        plan = self.build_impl(spec, engine_dir / "timing.cache")
        path.with_suffix(".tmp").write_bytes(plan)
        path.with_suffix(".tmp").replace(path)
        write_json_atomic(path.with_suffix(".json"), {**asdict(spec), "key": spec.key()})
        return path, spec

    def build_impl(self, spec: EngineSpec, timing_cache: Path) -> bytes:
        trt = self.trt
        logger = trt.Logger(trt.Logger.WARNING)
        builder = trt.Builder(logger)
        flags = 0
        if strongly_typed(spec.trt_version):
            flags = 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)  # ignored (always on) in 11.x
        network = builder.create_network(flags)
        parser = trt.OnnxParser(network, logger)
        onnx_path = self.artifact.file_for(spec.extra["source"])
        if not parser.parse_from_file(str(onnx_path)):
            errors = [str(parser.get_error(i)) for i in range(parser.num_errors)]
            raise UserError(
                f"TensorRT could not parse {onnx_path}:\n" + "\n".join(errors),
                "See the parser errors above; an opset or operator TensorRT lacks is the usual cause.",
            )
        config = builder.create_builder_config()
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, spec.workspace_bytes)
        config.builder_optimization_level = spec.builder_optimization_level
        if not spec.tf32 and hasattr(trt.BuilderFlag, "TF32"):
            config.clear_flag(trt.BuilderFlag.TF32)
        for name in spec.extra["flags"]:
            config.set_flag(getattr(trt.BuilderFlag, name))
        profile = builder.create_optimization_profile()
        profile.set_shape(network.get_input(0).name, *spec.profile)
        config.add_optimization_profile(profile)
        cache = config.create_timing_cache(timing_cache.read_bytes() if timing_cache.is_file() else b"")
        config.set_timing_cache(cache, False)
        plan = builder.build_serialized_network(network, config)
        if plan is None:
            raise UserError(f"TensorRT failed to build the {spec.precision} engine (see its log above).")
        timing_cache.write_bytes(bytes(config.get_timing_cache().serialize()))
        return bytes(plan)


def _gpu_identity() -> dict[str, str]:
    from benchbox.environment import gpu_info

    info = gpu_info()
    if info is None:
        raise UserError("No NVIDIA GPU found (nvidia-smi).", "TensorRT engines are built on the GPU that runs them.")
    return {"name": info["name"], "compute_capability": info["compute_capability"]}


def build_engines(artifact, precisions: list[str], tf32: bool = False) -> list[Path]:
    """`export --trt`: one engine per precision ONNX, recorded in the manifest (TF32 choice included)."""
    built = []
    for precision in precisions:
        path, spec = EngineFromOnnx(artifact, precision, tf32=tf32)()
        artifact.manifest.setdefault("engines", {})[precision] = {
            "path": str(path.relative_to(artifact.directory)),
            "key": spec.key(),
            "trt": spec.trt_version,
            "gpu": spec.gpu_name,
            "tf32": spec.tf32,
        }
        built.append(path)
    artifact.save()
    return built

"""EngineFromOnnx: precision ONNX -> TensorRT engine through NVIDIA's Polygraphy loaders, cached per GPU and version.

Polygraphy (`NetworkFromOnnxPath` -> `CreateConfig` -> `EngineBytesFromNetwork`) owns what changes between
TensorRT releases: network creation flags, the builder config, profiles, the timing cache, and the FP16/INT8
builder flags that TensorRT 11 removed. benchbox decides only what depends on the artifact:

- TensorRT >= 10.12 and 11.x: strongly typed; precision comes from the ONNX graph (the FP16 graph, the symmetric
  `int8` Q/DQ flavour); no precision flags.
- TensorRT < 10.12: weakly typed; FP16 is the FP16 flag on the FP32 graph, Q/DQ graphs add the INT8 flag.
- One optimization profile over 1..max batch (eval passes its --batch-size), a workspace limit, a timing
  cache beside the engines, TF32 off for FP32 unless asked (recorded).

The engine cache is keyed by everything an engine depends on; an engine built for another GPU, TensorRT
version or model is refused with every difference named, and rebuilt.
"""

from __future__ import annotations

import contextlib
import io
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from benchbox.artifact import content_key, write_json_atomic
from benchbox.environment import parse_version, require_tensorrt
from benchbox.errors import UserError

STRONG_TYPING_FROM = (10, 12)
DEFAULT_WORKSPACE = 4 << 30


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
    """Which artifact ONNX to parse and which precision flags to set, by API generation."""
    if precision not in ("fp32", "fp16", "int8", "int8-trt", "bf16"):
        raise UserError(f"TensorRT has no {precision} path in benchbox.", "Use fp32, fp16 or int8.")
    precision = "int8" if precision == "int8-trt" else precision
    if strongly_typed(trt_version):
        if precision == "bf16":
            raise UserError("BF16 on strongly typed TensorRT needs a BF16 ONNX graph, which benchbox does not build.")
        return precision, []
    if precision == "fp16":
        return "fp32", ["fp16"]
    if precision == "int8":
        return "int8", ["int8", "fp16"]
    if precision == "bf16":
        return "fp32", ["bf16"]
    return "fp32", []


def check_cached(engine_dir: Path, spec: EngineSpec) -> tuple[Path | None, str | None]:
    """(engine path, None) when a matching engine exists; (None, reason) when one exists for something else."""
    path = engine_dir / f"{spec.precision}-{spec.key()}.engine"
    if path.is_file() and path.with_suffix(".json").is_file():
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
        except (json.JSONDecodeError, OSError):
            continue
        diffs = [
            f"{label} {old.get(name)!r} (this run: {getattr(spec, name)!r})"
            for name, label in labels
            if old.get(name) != getattr(spec, name)
        ]
        engine = other.with_suffix(".engine").name
        reason = (
            f"the cached {spec.precision} engine {engine} was built for {'; '.join(diffs)}: refusing it and rebuilding"
            if diffs
            else f"the cached {spec.precision} engine was built with other options: rebuilding"
        )
        if closest is None or len(diffs) < closest[0]:
            closest = (len(diffs), reason)
    return None, closest[1] if closest else None


class EngineFromOnnx:
    """Build (or reuse) the TensorRT engine for one precision of an artifact; returns (path, spec) when called.

    This is the loader a TrtRunner receives (building and running stay apart, as in Polygraphy)."""

    def __init__(
        self,
        artifact,
        precision: str,
        opt_batch: int = 8,
        max_batch: int = 32,
        workspace_bytes: int = DEFAULT_WORKSPACE,
        tf32: bool = False,
        gpu: dict[str, str] | None = None,
        trt_version: str | None = None,
    ) -> None:
        self.artifact = artifact
        self.precision = precision
        self.opt_batch, self.max_batch = min(opt_batch, max_batch), max_batch
        self.workspace_bytes = workspace_bytes
        self.tf32 = tf32
        self._gpu = gpu
        self._trt_version = trt_version  # given: tests with a stand-in tensorrt; else read from the module
        self.notes: list[str] = []

    def trt_version(self) -> str:
        if self._trt_version is None:
            require_tensorrt()
            import tensorrt

            self._trt_version = tensorrt.__version__
        return self._trt_version

    def spec(self) -> EngineSpec:
        version = self.trt_version()
        source, flags = source_precision(version, self.precision)
        gpu = self._gpu or _gpu_identity()
        profile = profile_shapes(self.artifact.data_config.input_size, 1, self.opt_batch, self.max_batch)
        return EngineSpec(
            self.artifact.entry(source)["sha256"],
            self.precision,
            version,
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

    def loaders(self, spec: EngineSpec, timing_cache: Path):
        """The Polygraphy loader chain for a spec (not run yet)."""
        import tensorrt as trt
        from polygraphy.backend.trt import CreateConfig, EngineBytesFromNetwork, NetworkFromOnnxPath, Profile

        from benchbox.exporters.onnx import input_name_of

        onnx_path = self.artifact.file_for(spec.extra["source"])
        network = NetworkFromOnnxPath(str(onnx_path), strongly_typed=strongly_typed(spec.trt_version))
        low, opt, high = spec.profile
        profile = Profile().add(input_name_of(onnx_path), min=low, opt=opt, max=high)
        flags = set(spec.extra["flags"])
        config = CreateConfig(
            tf32=spec.tf32,
            fp16="fp16" in flags or None,
            int8="int8" in flags or None,
            bf16="bf16" in flags or None,
            profiles=[profile],
            memory_pool_limits={trt.MemoryPoolType.WORKSPACE: spec.workspace_bytes},
            builder_optimization_level=spec.builder_optimization_level,
            load_timing_cache=str(timing_cache) if timing_cache.is_file() else None,
        )
        return EngineBytesFromNetwork(network, config, save_timing_cache=str(timing_cache))

    def build_impl(self, spec: EngineSpec, timing_cache: Path) -> bytes:
        from polygraphy.exception import PolygraphyException

        log = io.StringIO()
        try:
            with contextlib.redirect_stdout(log):  # Polygraphy's log; shown in full when the build fails
                plan = self.loaders(spec, timing_cache)()
        except PolygraphyException as exc:
            errors = [line for line in log.getvalue().splitlines() if "[E]" in line or "[!]" in line]
            raise UserError(
                f"TensorRT could not build the {spec.precision} engine from "
                f"{self.artifact.entry(spec.extra['source'])['path']}: {exc}\n" + "\n".join(errors),
                "Run `benchbox lint ARTIFACT` for the operators and quantization rules TensorRT rejects.",
            ) from exc
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

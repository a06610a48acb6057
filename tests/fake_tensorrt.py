"""A stand-in `tensorrt` module with the real API names, for driving Polygraphy's loaders on a CPU machine.

Polygraphy imports `tensorrt` lazily and keeps the module object, so one module object is installed in
sys.modules and `configure(version)` replaces its contents per test. Every call that matters is appended to
`calls`, so tests assert on what Polygraphy asked TensorRT to do; an API Polygraphy starts using that this
stand-in lacks fails the test (which is the point: a Polygraphy change must break a test here).
"""

from __future__ import annotations

import enum
import sys
import types

MODULE = types.ModuleType("tensorrt")
calls: list[tuple[str, tuple]] = []


def _enum(name: str, members: list[str]) -> type[enum.IntEnum]:
    return enum.IntEnum(name, {m: i for i, m in enumerate(members)})


class HostMemory(bytes):
    """IHostMemory: bytes-like and a context manager."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


class TimingCache:
    def __init__(self, data: bytes) -> None:
        self.data = bytes(data) or b"timing-cache"

    def serialize(self) -> HostMemory:
        return HostMemory(self.data)

    def combine(self, other, ignore_mismatch) -> bool:
        calls.append(("cache.combine", (ignore_mismatch,)))
        return True


class Profile:
    def set_shape(self, name, low, opt, high) -> None:
        calls.append(("profile.set_shape", (name, tuple(low), tuple(opt), tuple(high))))

    def set_shape_input(self, *args) -> None:
        calls.append(("profile.set_shape_input", args))


class Tensor:
    def __init__(self, name: str, shape: tuple) -> None:
        self.name, self.shape, self.dtype, self.is_shape_tensor = name, shape, "FLOAT", False


class Network:
    def __init__(self, flags: int) -> None:
        self.flags = flags
        self.inputs = [Tensor("input", (-1, 3, 160, 160))]

    @property
    def num_inputs(self) -> int:
        return len(self.inputs)

    def get_input(self, index: int) -> Tensor:
        return self.inputs[index]

    def __iter__(self):
        return iter([])

    def get_flag(self, flag) -> bool:
        return bool(self.flags & (1 << int(flag)))


class Config:
    DLA_core = -1
    default_device_type = "GPU"
    profiling_verbosity = "LAYER_NAMES_ONLY"
    int8_calibrator = None

    def __init__(self) -> None:
        self.flags: set = {MODULE.BuilderFlag.TF32}  # TF32 is on by default, as in TensorRT
        self.pools: dict = {}
        self.profiles: list = []
        self.cache = None

    def set_flag(self, flag) -> None:
        calls.append(("config.set_flag", (flag.name,)))
        self.flags.add(flag)

    def clear_flag(self, flag) -> None:
        calls.append(("config.clear_flag", (flag.name,)))
        self.flags.discard(flag)

    def get_flag(self, flag) -> bool:
        return flag in self.flags

    def set_memory_pool_limit(self, pool, size) -> None:
        calls.append(("config.set_memory_pool_limit", (pool.name, size)))
        self.pools[pool] = size

    def get_memory_pool_limit(self, pool) -> int:
        return self.pools.get(pool, 0)

    def get_tactic_sources(self) -> int:
        return 0

    def get_preview_feature(self, feature) -> bool:
        return False

    def add_optimization_profile(self, profile) -> int:
        self.profiles.append(profile)
        return len(self.profiles) - 1

    @property
    def num_optimization_profiles(self) -> int:
        return len(self.profiles)

    def create_timing_cache(self, data) -> TimingCache:
        return TimingCache(data)

    def set_timing_cache(self, cache, ignore_mismatch) -> bool:
        calls.append(("config.set_timing_cache", (cache.data, ignore_mismatch)))
        self.cache = cache
        return True

    def get_timing_cache(self) -> TimingCache:
        return self.cache

    def __setattr__(self, name, value) -> None:
        if name == "builder_optimization_level":
            calls.append(("config.builder_optimization_level", (value,)))
        object.__setattr__(self, name, value)


class Parser:
    errors: list[str] = []

    def __init__(self, network, logger) -> None:
        self.network, self.flags = network, 0

    def parse_from_file(self, path: str) -> bool:
        calls.append(("parser.parse_from_file", (path,)))
        return not self.errors

    @property
    def num_errors(self) -> int:
        return len(self.errors)

    def get_error(self, index: int) -> str:
        return self.errors[index]

    def clear_flag(self, flag) -> None:
        pass


class Builder:
    def __init__(self, logger) -> None:
        pass

    def create_network(self, flags: int = 0) -> Network:
        calls.append(("builder.create_network", (flags,)))
        return Network(flags)

    def create_builder_config(self) -> Config:
        return Config()

    def create_optimization_profile(self) -> Profile:
        return Profile()

    def build_serialized_network(self, network, config) -> HostMemory:
        calls.append(("builder.build_serialized_network", (sorted(f.name for f in config.flags),)))
        return HostMemory(b"plan-bytes")


class ILogger:
    def __init__(self) -> None:
        pass


class Logger(ILogger):
    INTERNAL_ERROR, ERROR, WARNING, INFO, VERBOSE = range(5)

    def __init__(self, severity=2) -> None:
        super().__init__()


def configure(version: str, parser_errors: list[str] | None = None) -> types.ModuleType:
    """Reset the stand-in to one TensorRT version (11.x has no precision builder flags) and install it."""
    calls.clear()
    flags = [
        "DEBUG",
        "GPU_FALLBACK",
        "REFIT",
        "DISABLE_TIMING_CACHE",
        "TF32",
        "SPARSE_WEIGHTS",
        "DIRECT_IO",
        "VERSION_COMPATIBLE",
        "STRIP_PLAN",
    ]
    if not version.startswith("11"):
        flags += ["FP16", "BF16", "INT8", "OBEY_PRECISION_CONSTRAINTS", "PREFER_PRECISION_CONSTRAINTS"]
    Parser.errors = list(parser_errors or [])
    MODULE.__dict__.clear()
    MODULE.__dict__.update(
        __name__="tensorrt",
        __version__=version,
        Logger=Logger,
        ILogger=ILogger,
        Builder=Builder,
        OnnxParser=Parser,
        init_libnvinfer_plugins=lambda logger, namespace: True,
        BuilderFlag=_enum("BuilderFlag", flags),
        NetworkDefinitionCreationFlag=_enum("NetworkDefinitionCreationFlag", ["EXPLICIT_BATCH", "STRONGLY_TYPED"]),
        MemoryPoolType=_enum("MemoryPoolType", ["WORKSPACE", "DLA_MANAGED_SRAM", "TACTIC_SHARED_MEMORY"]),
        DeviceType=_enum("DeviceType", ["GPU", "DLA"]),
        ProfilingVerbosity=_enum("ProfilingVerbosity", ["LAYER_NAMES_ONLY", "NONE", "DETAILED"]),
        TacticSource=_enum("TacticSource", ["CUBLAS", "CUDNN"]),
        PreviewFeature=_enum("PreviewFeature", ["ALIASED_PLUGIN_IO_10_03"]),
        QuantizationFlag=_enum("QuantizationFlag", ["CALIBRATE_BEFORE_FUSION"]),
        LayerType=_enum("LayerType", ["CONVOLUTION", "QUANTIZE", "DEQUANTIZE", "SHAPE"]),
        OnnxParserFlag=_enum("OnnxParserFlag", ["NATIVE_INSTANCENORM"]),
    )
    sys.modules["tensorrt"] = MODULE
    return MODULE


def remove() -> None:
    sys.modules.pop("tensorrt", None)

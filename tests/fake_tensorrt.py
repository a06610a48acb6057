"""A stand-in `tensorrt` module with the real API names, for driving Polygraphy's loaders and runner on a CPU.

Polygraphy imports `tensorrt` lazily and keeps the module object, so one module object is installed in
sys.modules and `configure(version)` replaces its contents per test. Every call that matters is appended to
`calls`, so tests assert on what Polygraphy asked TensorRT to do; an API Polygraphy starts using that this
stand-in lacks fails the test (which is the point: a Polygraphy change must break a test here).

The build side (Builder, network, config, profile, parser) records what it was asked; the "plan" it serializes
names the ONNX file it parsed. The runtime side is TensorRT 10/11's name-based API as Polygraphy's TrtRunner calls
it (Runtime.deserialize_cuda_engine, ICudaEngine.num_io_tensors / get_tensor_name / get_tensor_mode /
get_tensor_dtype / get_tensor_format / get_tensor_profile_shape, IExecutionContext.set_input_shape /
set_tensor_address / set_output_allocator / execute_async_v3, IOutputAllocator): executing runs the parsed ONNX
file with ONNX Runtime on the "device" memory of tests/fake_cuda.py. Names TensorRT 11 removed (the FP16/INT8
builder flags, implicit batch, bindings) are absent there, as in TensorRT.
"""

from __future__ import annotations

import ctypes
import enum
import json
import sys
import types

import numpy as np

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
    def __init__(self) -> None:
        self.shapes = None

    def set_shape(self, name, low, opt, high) -> None:
        calls.append(("profile.set_shape", (name, tuple(low), tuple(opt), tuple(high))))
        self.shapes = [list(low), list(opt), list(high)]

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
        self.network.onnx_path = path
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
        shapes = [p.shapes for p in config.profiles if getattr(p, "shapes", None)]
        plan = {"fake-plan": 1, "onnx": getattr(network, "onnx_path", None), "profile": shapes[0] if shapes else None}
        return HostMemory(json.dumps(plan).encode())


class ILogger:
    def __init__(self) -> None:
        pass


class Logger(ILogger):
    INTERNAL_ERROR, ERROR, WARNING, INFO, VERBOSE = range(5)

    def __init__(self, severity=2) -> None:
        super().__init__()


class IOutputAllocator:
    def __init__(self) -> None:
        pass


class ICudaEngine:
    """An engine over the ONNX file its plan names, with one input and one output, as benchbox's graphs have."""

    def __init__(self, plan: dict) -> None:
        import onnxruntime as ort

        self.onnx_path = plan["onnx"]
        self.profile = plan.get("profile") or [[1, 3, 160, 160], [8, 3, 160, 160], [32, 3, 160, 160]]
        self.session = ort.InferenceSession(self.onnx_path, providers=["CPUExecutionProvider"])
        self.names = [self.session.get_inputs()[0].name, self.session.get_outputs()[0].name]
        self.contexts: list[IExecutionContext] = []

    @property
    def num_io_tensors(self) -> int:
        return len(self.names)

    def get_tensor_name(self, index: int) -> str:
        return self.names[index]

    def get_tensor_mode(self, name: str):
        return MODULE.TensorIOMode.INPUT if name == self.names[0] else MODULE.TensorIOMode.OUTPUT

    def get_tensor_dtype(self, name: str):
        return MODULE.float32

    def get_tensor_format(self, name: str, profile_index: int = 0):
        return MODULE.TensorFormat.LINEAR

    def get_tensor_shape(self, name: str):
        """The engine's shape: -1 on the dynamic batch axis."""
        if name == self.names[0]:
            return (-1, *self.profile[2][1:])
        return (-1, *[d for d in self.session.get_outputs()[0].shape[1:]])

    def get_tensor_profile_shape(self, name: str, profile_index: int):
        return [tuple(s) for s in self.profile]

    def is_shape_inference_io(self, name: str) -> bool:
        return False

    def create_execution_context(self, strategy=None):
        calls.append(("engine.create_execution_context", (strategy,)))
        context = IExecutionContext(self)
        self.contexts.append(context)
        return context


class IExecutionContext:
    def __init__(self, engine: ICudaEngine) -> None:
        self.engine = engine
        self.active_optimization_profile = 0
        self.shapes = {engine.names[0]: tuple(engine.profile[2])}
        self.addresses: dict[str, int] = {}
        self.allocators: dict[str, IOutputAllocator] = {}

    def get_tensor_shape(self, name: str):
        return self.shapes.get(name, ())

    def set_input_shape(self, name: str, shape) -> bool:
        low, high = self.engine.profile[0], self.engine.profile[2]
        if not all(lo <= s <= hi for s, lo, hi in zip(shape, low, high)):
            return False  # outside the optimization profile, as TensorRT refuses it
        self.shapes[name] = tuple(shape)
        return True

    def get_tensor_address(self, name: str) -> int:
        return self.addresses.get(name, 0)

    def set_tensor_address(self, name: str, address: int) -> bool:
        self.addresses[name] = int(address)
        return True

    def set_output_allocator(self, name: str, allocator) -> bool:
        self.allocators[name] = allocator
        return True

    def execute_async_v3(self, stream: int) -> bool:
        """Read the input from its device address, run the ONNX file, hand the logits to the output allocator."""
        calls.append(("context.execute_async_v3", (int(stream),)))
        source, target = self.engine.names
        shape = self.shapes[source]
        count = int(np.prod(shape))
        batch = np.ctypeslib.as_array((ctypes.c_float * count).from_address(self.addresses[source])).reshape(shape)
        logits = self.engine.session.run(None, {source: np.array(batch)})[0].astype(np.float32)
        allocator = self.allocators[target]
        pointer = allocator.reallocate_output_async(target, 0, logits.nbytes, 256, stream)
        ctypes.memmove(pointer, logits.ctypes.data, logits.nbytes)
        allocator.notify_shape(target, logits.shape)
        return True


class Runtime:
    def __init__(self, logger) -> None:
        pass

    def deserialize_cuda_engine(self, plan) -> ICudaEngine | None:
        calls.append(("runtime.deserialize_cuda_engine", ()))
        try:
            data = json.loads(bytes(plan))
        except ValueError:
            return None  # not a plan this stand-in wrote: TensorRT returns None
        return ICudaEngine(data) if data.get("onnx") else None


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
        Runtime=Runtime,
        ICudaEngine=ICudaEngine,
        IExecutionContext=IExecutionContext,
        IOutputAllocator=IOutputAllocator,
        TensorIOMode=_enum("TensorIOMode", ["NONE", "INPUT", "OUTPUT"]),
        TensorFormat=_enum("TensorFormat", ["LINEAR", "CHW2", "HWC8", "CHW4", "CHW16", "CHW32", "HWC"]),
        ExecutionContextAllocationStrategy=_enum("ExecutionContextAllocationStrategy", ["STATIC", "USER_MANAGED"]),
        DataType=_enum("DataType", ["FLOAT", "HALF", "INT8", "INT32", "BOOL", "UINT8", "INT64", "BF16"]),
    )
    types_ = MODULE.DataType
    MODULE.__dict__.update(
        float32=types_.FLOAT,
        float16=types_.HALF,
        int8=types_.INT8,
        int32=types_.INT32,
        bool=types_.BOOL,
        uint8=types_.UINT8,
        int64=types_.INT64,
        bfloat16=types_.BF16,
    )
    sys.modules["tensorrt"] = MODULE
    return MODULE


def remove() -> None:
    sys.modules.pop("tensorrt", None)

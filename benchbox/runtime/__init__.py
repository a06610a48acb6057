"""Runners: one interface (activate / infer / deactivate) over PyTorch, ONNX Runtime and TensorRT, and whatever a
plugin adds. Engines are registered under the entry-point group `benchbox.engines` (the built-ins too); each is a
BaseRunner subclass that says what it runs on (`devices`, `precisions`) and how it is made (`create`)."""

from __future__ import annotations

from benchbox.errors import UserError, unknown_name
from benchbox.records import base_device
from benchbox.registry import Registry


def _builtins():
    from benchbox.runtime.onnxrt import OrtRunner
    from benchbox.runtime.tensorrt import TrtRunner
    from benchbox.runtime.torch import TorchRunner

    return (TorchRunner, OrtRunner, TrtRunner)


def _check_runner(obj) -> None:
    from benchbox.runtime.base import BaseRunner

    if not (isinstance(obj, type) and issubclass(obj, BaseRunner)):
        raise TypeError(f"it is a {type(obj).__name__}, not a subclass of benchbox.runtime.base.BaseRunner")


ENGINES = Registry("benchbox.engines", _builtins, lambda runner: runner.engine, _check_runner)  # name -> class


def engine_class(engine: str):
    """The runner class of an engine name; unknown names list the installed engines (did you mean ...?)."""
    if engine not in ENGINES:
        raise unknown_name("engine", engine, list(ENGINES))
    return ENGINES[engine]


def check_engine_device(engine: str, device: str) -> None:
    """Refuse engine/device pairs that do not exist (before any work). `cuda@a100`: cuda on a named target."""
    runner = engine_class(engine)
    device = base_device(device)
    if device not in runner.accepted_devices:
        raise UserError(
            f"{engine} does not run on device {device!r}.", f"Use one of {', '.join(runner.accepted_devices)}."
        )


def create_runner(engine: str, artifact, precision: str = "fp32", device: str = "cpu", **options):
    """The runner for an engine name over an artifact at a precision (nothing is loaded until `activate`).

    options: threads, cuda_backend (TensorRT), max_batch (the TensorRT profile's largest batch), pipeline
    (True for eval: the runner shares the CPU with decoding, so ONNX Runtime's idle threads must not spin).
    """
    check_engine_device(engine, device)
    return engine_class(engine).create(artifact, precision, base_device(device), **options)

"""benchbox's vocabulary, defined once: precisions, engines, devices and set layouts, with their order, labels and
colours. Everything that sorts, labels or colours one of these asks the type, never a table of its own.

Each is a `str` enum: a member equals (and hashes like) its value, so records, SQLite rows and JSON keep plain
strings and still compare with the members.
"""

from __future__ import annotations

from enum import Enum


class Word(str, Enum):
    """A string enum whose members are their values (hash, str, format and JSON all see the value)."""

    __hash__ = str.__hash__

    def __str__(self) -> str:
        return str(self.value)

    def __format__(self, spec: str) -> str:
        return format(str(self.value), spec)

    @classmethod
    def parse(cls, text: str):
        """The member named by `text`, or a UserError listing the members (with did-you-mean)."""
        from benchbox.errors import unknown_name

        try:
            return cls(str(text).strip().lower())
        except ValueError:
            raise unknown_name(cls.kind(), str(text), [m.value for m in cls]) from None

    @classmethod
    def kind(cls) -> str:
        return cls.__name__.lower()

    @classmethod
    def values(cls) -> tuple[str, ...]:
        return tuple(m.value for m in cls)


class Precision(Word):
    """What users ask for. `int8` resolves to a flavour per engine (artifact.artifact_file_for)."""

    FP32 = "fp32"
    BF16 = "bf16"
    FP16 = "fp16"
    INT8 = "int8"
    INT8_CPU = "int8-cpu"
    INT8_TRT = "int8-trt"

    @property
    def rank(self) -> int:
        """Display order: full precision first."""
        return list(Precision).index(self)

    @property
    def colour(self) -> str:
        """One colour per precision, the same in every plot (colour-blind safe: Okabe-Ito)."""
        return _PRECISION_COLOURS[self]

    @property
    def label(self) -> str:
        return _PRECISION_LABELS[self]


_PRECISION_COLOURS = {
    Precision.FP32: "#0072B2",
    Precision.BF16: "#56B4E9",
    Precision.FP16: "#009E73",
    Precision.INT8: "#D55E00",
    Precision.INT8_CPU: "#E69F00",
    Precision.INT8_TRT: "#CC79A7",
}
_PRECISION_LABELS = {
    Precision.FP32: "FP32",
    Precision.BF16: "BF16",
    Precision.FP16: "FP16",
    Precision.INT8: "INT8",
    Precision.INT8_CPU: "INT8 (CPU, U8S8)",
    Precision.INT8_TRT: "INT8 (TensorRT, S8S8)",
}
# The precision files an artifact can hold (int8 is the TensorRT flavour's file).
ARTIFACT_FILES = (Precision.FP32, Precision.FP16, Precision.INT8, Precision.INT8_CPU)
EXPORT_PRECISIONS = (Precision.FP32, Precision.FP16, Precision.INT8, Precision.INT8_CPU)
OPSETS = (13, 23)  # the ONNX opsets benchbox exports at (the options and the exporter check the same range)
UNKNOWN_RANK = len(Precision)


def precision_rank(name: str | None) -> int:
    """Order of a precision name (unknown names sort last)."""
    try:
        return Precision(name).rank
    except ValueError:
        return UNKNOWN_RANK


def precision_colour(name: str | None, fallback: str = "#555555") -> str:
    try:
        return Precision(name).colour
    except ValueError:
        return fallback


class Engine(Word):
    TORCH = "torch"
    ORT = "ort"
    TRT = "trt"


class Device(Word):
    CPU = "cpu"
    CUDA = "cuda"
    TENSORRT = "tensorrt"  # ONNX Runtime's TensorRT execution provider

    @classmethod
    def of(cls, device: str) -> Device:
        """The device a runner uses: `cuda@a100` (a cell on a plan's named cluster target) runs on `cuda`."""
        return cls(str(device).split("@", 1)[0])


class Layout(Word):
    """How a test set lies on disk (picks its reader)."""

    IMAGES = "images"  # <wnid>/<image> (or flat val with a label file)
    V2 = "v2"  # <class index>/<image>, one folder per variant
    VAL_LABELS = "val-labels"  # scored from val's predictions (ReaL)
    C = "c"  # <corruption>/<severity>/<wnid>/<image>
    P = "p"  # <perturbation>/<wnid>/<video>.mp4
    CUSTOM = "custom"  # a plugin's own reader (TestSet.locate)


class Verdict(Word):
    READY = "ready"
    NOT_READY = "not-ready"
    CANNOT_DECIDE = "cannot-decide"

    @property
    def exit_code(self) -> int:
        return {Verdict.READY: 0, Verdict.NOT_READY: 1, Verdict.CANNOT_DECIDE: 2}[self]

    @property
    def words(self) -> str:
        return {Verdict.READY: "READY", Verdict.NOT_READY: "NOT READY", Verdict.CANNOT_DECIDE: "CANNOT DECIDE"}[self]

    @property
    def colour(self) -> str:
        return {Verdict.READY: "#1a7f37", Verdict.NOT_READY: "#cf222e", Verdict.CANNOT_DECIDE: "#9a6700"}[self]


class GateStatus(Word):
    PASS = "pass"
    FAIL = "fail"
    UNDECIDED = "undecided"
    SKIPPED = "skipped"
    INFO = "info"  # reported, not judged (e.g. TensorRT lint of an ONNX Runtime-only deployment)

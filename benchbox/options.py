"""One schema for the options of export, eval and bench: the CLI, plans and the demo all build from it.

Each option is declared once (name, kind, default, limits, help). `parse_options` turns a mapping (command-line
values, a plan table, the demo's settings) into a typed options object, refusing unknown keys (with
did-you-mean) and wrong types or ranges before any work starts. `typer_parameters` makes the CLI's flags
from the same declarations, so adding an option is one line here.

Long because every option of every command is declared here, once.
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, make_dataclass
from pathlib import Path
from typing import Any

from benchbox.errors import UserError
from benchbox.vocabulary import EXPORT_PRECISIONS as VOCAB_EXPORT_PRECISIONS
from benchbox.vocabulary import OPSETS, Device, Precision

DEVICES = Device.values()
EXPORT_PRECISIONS = tuple(p.value for p in VOCAB_EXPORT_PRECISIONS)
RUN_PRECISIONS = Precision.values()
CALIB_METHODS = ("minmax", "entropy", "percentile")


def installed_engines() -> tuple[str, ...]:
    """The engines registered under `benchbox.engines` (the built-ins and installed plugins)."""
    from benchbox.runtime import ENGINES

    return tuple(ENGINES)


CUDA_BACKENDS = ("polygraphy", "pycuda", "cuda-python")  # cuda-python: the old name of the default
LATENCY_MODES = ("end-to-end", "compute")
INTERPOLATIONS = ("nearest", "lanczos", "bilinear", "bicubic", "box", "hamming")


@dataclass(frozen=True)
class Opt:
    """One option. `kind`: int float bool str choice path list ints floats sets paths."""

    name: str
    kind: str
    default: Any
    help: str
    minimum: float | None = None
    maximum: float | None = None
    positive: bool = False  # strictly greater than zero (floats)
    choices: tuple[str, ...] | Callable[[], tuple[str, ...]] | None = None  # a callable: known when used
    cli: bool = True
    plan: bool = True
    flag: str | None = None  # CLI flag when it differs from --name-with-dashes
    length: int | None = None  # exact list length (floats/ints)

    @property
    def cli_flag(self) -> str:
        return self.flag or "--" + self.name.replace("_", "-")

    @property
    def allowed(self) -> tuple[str, ...] | None:
        return self.choices() if callable(self.choices) else self.choices


def _common(engines_default: tuple[str, ...] = ("ort",)) -> list[Opt]:
    return [
        Opt(
            "engines",
            "list",
            list(engines_default),
            "Engines: torch, ort, trt, or an installed plugin's (comma list).",
            choices=installed_engines,
            flag="--engine",
        ),
        Opt(
            "device",
            "choice",
            "cpu",
            "cpu, cuda (ORT CUDA provider, torch, trt) or tensorrt (ORT TensorRT provider).",
            choices=DEVICES,
        ),
        Opt("threads", "int", None, "Inference threads (ONNX Runtime intra-op / torch).", minimum=1),
        Opt(
            "cuda_backend",
            "choice",
            "polygraphy",
            "TensorRT compute-mode input memory: polygraphy (polygraphy.cuda) or pycuda.",
            choices=CUDA_BACKENDS,
        ),
        Opt("store", "path", Path("benchbox-results"), "Results store directory.", plan=False),
        Opt("json", "path", None, "Also write {'records': [...]} to this file.", plan=False),
        Opt(
            "mlflow",
            "str",
            None,
            'Also log the store\'s results to this MLflow tracking URI (pip install -e ".[mlflow]").',
            plan=False,
        ),
    ]


MODEL_OPTIONS = [
    Opt(
        "name",
        "str",
        "efficientnet_lite0",
        "Model: efficientnet_lite0|1|2, a timm name, torchvision:NAME, "
        "hf-hub:ORG/NAME, module:callable or a path to an .onnx file.",
        cli=False,
    ),
    Opt("checkpoint", "path", None, "State dict to load (weights_only=True)."),
    Opt("input_size", "ints", None, "ONNX source: input C,H,W (e.g. 3,224,224).", minimum=1, length=3),
    Opt("mean", "floats", None, "ONNX source: normalisation mean per channel.", length=3),
    Opt("std", "floats", None, "ONNX source: normalisation std per channel.", positive=True, length=3),
    Opt(
        "crop_pct",
        "float",
        None,
        "ONNX source: centre-crop fraction (resize to size / crop_pct).",
        positive=True,
        maximum=1.0,
    ),
    Opt("interpolation", "choice", None, "ONNX source: resize interpolation.", choices=INTERPOLATIONS),
    Opt("data_config", "path", None, "ONNX source: a JSON file with input_size/mean/std/crop_pct/interpolation."),
    Opt("config_from", "str", None, "ONNX source: borrow the preprocessing of this timm model name."),
    Opt(
        "make_batch_dynamic",
        "bool",
        False,
        "ONNX source with a fixed batch size: rewrite its batch axis as "
        "dynamic (verified by running it at two batch sizes).",
    ),
]

EXPORT_OPTIONS = [
    Opt("out", "path", None, "Artifact directory (default: artifacts/MODEL).", plan=False),
    Opt(
        "precisions",
        "list",
        ["fp32"],
        "fp32, fp16, int8 (builds both INT8 flavours), int8-cpu.",
        choices=EXPORT_PRECISIONS,
    ),
    Opt("calib_data", "path", None, "Images for INT8 calibration (ImageNet-style or flat folder)."),
    Opt("calib_size", "int", 256, "How many calibration images (seeded, class-balanced).", minimum=1),
    Opt("calib_method", "choice", "entropy", "INT8 calibration: minmax, entropy or percentile.", choices=CALIB_METHODS),
    Opt("opset", "int", 18, "ONNX opset of the export (13..23).", minimum=OPSETS[0], maximum=OPSETS[1]),
    Opt("trt", "bool", False, "Also build TensorRT engines (needs a GPU and TensorRT)."),
    Opt("tf32", "bool", False, "Allow TF32 maths in FP32 TensorRT engines (off by default)."),
    Opt("offline", "bool", False, "Never download weights (also when HF_HUB_OFFLINE is set)."),
]


def _run_precisions() -> Opt:
    """Which precisions eval and bench run (the same choices for both)."""
    return Opt(
        "precisions",
        "list",
        ["fp32"],
        "fp32, fp16, int8, int8-cpu, int8-trt (bf16: torch on CUDA).",
        choices=RUN_PRECISIONS,
    )


EVAL_OPTIONS = [
    *_common(),
    _run_precisions(),
    Opt("sets", "sets", "val", "Test sets: val, real, v2, sketch, a, r, o, c, p (comma list) or all."),
    Opt("data_root", "path", None, "Folder holding the test sets (see benchbox datasets)."),
    Opt(
        "paths",
        "paths",
        {},
        "SET=SOURCE for one set (repeatable): a folder, an archive (.tar, .tar.gz, .zip), WebDataset shards "
        "(a folder, a {0000..0063} pattern, a list file), parquet files or hf:ORG/NAME[:SPLIT].",
        flag="--path",
    ),
    Opt("real_labels", "path", None, "real.json when it is not in the data root."),
    Opt(
        "p_baseline",
        "str",
        None,
        "ImageNet-P normaliser for mFR/mT5D: a JSON file or a model name with fp32 ImageNet-P results in the store.",
    ),
    Opt("limit", "int", None, "Score an evenly spread subset of N images per set variant.", minimum=1),
    Opt(
        "until_decided",
        "bool",
        False,
        "Stop scoring each set once every gate of the policy concerning it is decided (anytime-valid confidence "
        "sequences; docs/policy.md). Needs the baseline precision and another in the same run.",
    ),
    Opt("policy", "path", None, "The policy --until-decided decides (default: the default policy)."),
    Opt("batch_size", "int", 32, "Images per inference batch.", minimum=1),
    Opt("workers", "int", None, "Decode threads (default: the CPU count, at most 8).", minimum=1),
    Opt("keep_logits", "bool", False, "Also store full float32 logits (4 KB per image per cell)."),
    Opt("recompute", "bool", False, "Ignore finished cells in the store and compute them again."),
    Opt(
        "rehash",
        "bool",
        False,
        "Key cached predictions by each file's content, not its path, size and modification time (finds a file "
        "replaced by another of the same size and time; reads every file once more).",
    ),
    Opt(
        "max_image_mb",
        "float",
        256.0,
        "Largest file read per image or video, in MB (larger: a counted skip).",
        positive=True,
    ),
    Opt("cache_dir", "path", None, "Preprocessed-image cache (default: $BENCHBOX_CACHE or ~/.cache/benchbox)."),
    Opt("no_cache", "bool", False, "Do not read or write the preprocessed-image cache."),
    Opt("cache_size_gb", "float", 20.0, "Size bound of the preprocessed-image cache, in GB.", positive=True),
    Opt("chunk_samples", "int", 512, "Samples per stored prediction chunk.", minimum=1, cli=False, plan=False),
]

BENCH_OPTIONS = [
    *_common(),
    _run_precisions(),
    Opt("batch_sizes", "ints", [1, 8, 32], "Batch sizes to time (comma list).", minimum=1),
    Opt("warmup", "float", 1.0, "Warm-up seconds per cell.", minimum=0.0),
    Opt("duration", "float", 3.0, "Timed seconds per cell (at least --min-iterations runs).", positive=True),
    Opt("min_iterations", "int", 10, "Fewest timed iterations per cell.", minimum=1),
    Opt(
        "mode",
        "choice",
        "end-to-end",
        "end-to-end (host in, host out) or compute (device-resident input).",
        choices=LATENCY_MODES,
    ),
]


RAY_OPTIONS = [
    Opt(
        "address",
        "str",
        None,
        "Ray cluster to run on: auto (the cluster this node belongs to), local, or HOST:PORT.",
        cli=False,
    ),
    Opt(
        "shard_size",
        "int",
        2048,
        "Samples per work unit (rounded up to a multiple of the eval batch size).",
        minimum=1,
        cli=False,
    ),
    Opt(
        "max_retries",
        "int",
        3,
        "Times a unit whose worker died is run again before its cell is failed.",
        minimum=0,
        cli=False,
    ),
    Opt(
        "cpus_per_unit",
        "float",
        1.0,
        "CPUs each work unit asks Ray for (its inference and decode threads).",
        positive=True,
        cli=False,
    ),
]


def _default(opt: Opt) -> Any:
    if opt.kind == "sets":
        from benchbox.datasets.catalog import parse_sets

        return parse_sets(opt.default)
    return _copy(opt.default)


KIND_TYPES: dict[str, Any] = {
    "int": int,
    "float": float,
    "bool": bool,
    "str": str,
    "choice": str,
    "path": Path,
    "list": list[str],
    "ints": list[int],
    "floats": list[float],
    "sets": "SetSelection",
    "paths": dict[str, Path],
}


def _dataclass(name: str, options: list[Opt]):
    """A frozen options class whose fields carry their kinds' types (None where the option has no default)."""
    fields = []
    for o in options:
        kind = KIND_TYPES[o.kind]
        annotation = kind if o.default is not None or o.kind in ("bool", "sets", "paths") else kind | None
        fields.append((o.name, annotation, field(default_factory=lambda o=o: _default(o))))
    return make_dataclass(name, fields, frozen=True)


def _copy(value: Any) -> Any:
    return list(value) if isinstance(value, list) else dict(value) if isinstance(value, dict) else value


ModelOptions = _dataclass("ModelOptions", MODEL_OPTIONS)
ExportOptions = _dataclass("ExportOptions", EXPORT_OPTIONS)
EvalOptions = _dataclass("EvalOptions", EVAL_OPTIONS)
BenchOptions = _dataclass("BenchOptions", BENCH_OPTIONS)
RayOptions = _dataclass("RayOptions", RAY_OPTIONS)
GROUPS = {
    ModelOptions: MODEL_OPTIONS,
    ExportOptions: EXPORT_OPTIONS,
    EvalOptions: EVAL_OPTIONS,
    BenchOptions: BENCH_OPTIONS,
    RayOptions: RAY_OPTIONS,
}


def thread_warning(threads: int | None) -> str | None:
    """A warning when more inference threads are asked for than the machine has cores (oversubscribed threads
    contend for the cores and run many times slower)."""
    import os

    cores = os.cpu_count() or 1
    if threads and threads > cores:
        return (
            f"--threads {threads} is more than this machine's {cores} logical cores: the threads contend for the "
            f"cores and inference slows down, often many times over. Use at most {cores}."
        )
    return None


def did_you_mean(name: str, known: list[str]) -> str:
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    return f" Did you mean {close[0]!r}?" if close else ""


def parse_options(cls, values: Mapping[str, Any], where: str, base: Path | None = None, plan: bool = False):
    """A typed options object from `values`; unknown keys and bad values are UserErrors naming `where`.

    `base`: relative paths resolve against it (a plan's folder). `plan`: only plan-level keys are accepted.
    """
    options = {o.name: o for o in GROUPS[cls] if (o.plan if plan else True)}
    for key in values:
        if key not in options:
            known = sorted(options)
            raise UserError(
                f"Unknown option {key!r} in {where}.{did_you_mean(key, known)}", f"Known: {', '.join(known)}"
            )
    parsed = {name: convert(options[name], value, where, base, strict=plan) for name, value in values.items()}
    return cls(**parsed)


def _fail(opt: Opt, value: Any, where: str, why: str) -> UserError:
    return UserError(f"{opt.name} = {value!r} in {where}: {why}.", f"{opt.name}: {opt.help}")


def _number(opt: Opt, value: Any, where: str, integer: bool, strict: bool = False) -> int | float:
    allowed = (int, float) if strict else (int, float, str)
    if isinstance(value, bool) or not isinstance(value, allowed):
        raise _fail(opt, value, where, "expected " + ("an integer" if integer else "a number"))
    try:
        number = int(value) if integer else float(value)
    except OverflowError:  # int(inf), int(1e400): TOML and the shell both allow them
        raise _fail(opt, value, where, "expected a finite number") from None
    except ValueError:
        raise _fail(opt, value, where, "expected " + ("an integer" if integer else "a number")) from None
    if integer and isinstance(value, float) and value != number:
        raise _fail(opt, value, where, "expected an integer")
    if number != number or number in (float("inf"), float("-inf")):
        raise _fail(opt, value, where, "expected a finite number")
    if opt.minimum is not None and number < opt.minimum:
        raise _fail(opt, value, where, f"must be at least {opt.minimum:g}")
    if opt.maximum is not None and number > opt.maximum:
        raise _fail(opt, value, where, f"must be at most {opt.maximum:g}")
    if opt.positive and number <= 0:
        raise _fail(opt, value, where, "must be greater than 0")
    return number


def _items(opt: Opt, value: Any, where: str) -> list:
    if isinstance(value, str):
        items = [part.strip() for part in value.split(",")]
        if any(not part for part in items):
            raise _fail(opt, value, where, "empty item in the comma list")
        return items
    if isinstance(value, (list, tuple)):
        return list(value)
    if isinstance(value, (int, float)) and not isinstance(value, bool) and opt.kind in ("ints", "floats"):
        return [value]
    raise _fail(opt, value, where, "expected a list or a comma-separated string")


def convert(opt: Opt, value: Any, where: str, base: Path | None = None, strict: bool = False) -> Any:
    """Check and convert one value of an option. `strict` (plans, policies): numbers must be numbers, not text."""
    if value is None:
        return _default(opt)
    kind = opt.kind
    if kind in ("int", "float"):
        return _number(opt, value, where, kind == "int", strict)
    if kind == "bool":
        if not isinstance(value, bool):
            raise _fail(opt, value, where, "expected true or false (a TOML boolean, not a string)")
        return value
    if kind in ("str", "choice"):
        if not isinstance(value, str) or not value.strip():
            raise _fail(opt, value, where, "expected a non-empty string")
        if kind == "choice" and value not in opt.allowed:
            raise _fail(
                opt, value, where, f"expected one of {', '.join(opt.allowed)}{did_you_mean(value, list(opt.allowed))}"
            )
        return value
    if kind == "path":
        if not isinstance(value, (str, Path)) or not str(value).strip():
            raise _fail(opt, value, where, "expected a path")
        path = Path(value).expanduser()
        return path if base is None or path.is_absolute() else (base / path).resolve()
    if kind in ("list", "ints", "floats"):
        items = _items(opt, value, where)
        if not items:
            raise _fail(opt, value, where, "the list is empty")
        if kind == "list":
            for item in items:
                if not isinstance(item, str) or not item.strip():
                    raise _fail(opt, value, where, "expected strings")
                allowed = opt.allowed
                if allowed and item not in allowed:
                    hint = did_you_mean(item, list(allowed))
                    raise _fail(opt, value, where, f"{item!r} is not one of {', '.join(allowed)}{hint}")
            return list(dict.fromkeys(items))
        numbers = [_number(opt, item, where, kind == "ints", strict and not isinstance(value, str)) for item in items]
        if opt.length is not None and len(numbers) != opt.length:
            raise _fail(opt, value, where, f"expected {opt.length} values")
        return numbers
    if kind == "sets":
        from benchbox.datasets.catalog import parse_sets

        text = ",".join(value) if isinstance(value, (list, tuple)) else value
        if not isinstance(text, str) or not text.strip():
            raise _fail(opt, value, where, "expected set names or all")
        return parse_sets(text)
    if kind == "paths":
        return _set_paths(opt, value, where, base)
    raise AssertionError(kind)


def _set_paths(opt: Opt, value: Any, where: str, base: Path | None) -> dict[str, Path]:
    from benchbox.datasets.catalog import resolve_testset

    if isinstance(value, Mapping):
        pairs = list(value.items())
    elif isinstance(value, (list, tuple)):
        pairs = []
        for item in value:
            if not isinstance(item, str) or "=" not in item:
                raise UserError(f"--path {item!r} is not SET=DIR.", "Example: --path a=/data/imagenet-a")
            name, folder = item.split("=", 1)
            pairs.append((name, folder))
    else:
        raise _fail(opt, value, where, "expected SET=DIR entries")
    path_opt = Opt(opt.name, "path", None, opt.help)
    paths: dict[str, Path] = {}
    for name, folder in pairs:
        key = resolve_testset(str(name)).name
        if key in paths:
            raise UserError(
                f"--path {key}= is given twice in {where} ({paths[key]} and {folder}).",
                "Give each set one source; to score two folders, run eval twice into the same store.",
            )
        text = str(folder).strip()
        # hf:ORG/NAME names a dataset in the Hugging Face cache, not a path (benchbox.datasets.sources)
        paths[key] = Path(text) if text.startswith("hf:") else convert(path_opt, folder, where, base)
    return paths


def typer_parameters(options: list[Opt], skip: tuple[str, ...] = ()) -> list[inspect.Parameter]:
    """CLI parameters (typer Options) for a group, in declaration order."""
    import typer

    params = []
    for opt in options:
        if not opt.cli or opt.name in skip:
            continue
        annotation: Any
        if opt.kind == "bool":
            annotation, default = bool, typer.Option(bool(opt.default), opt.cli_flag, help=opt.help)
        else:
            annotation = {"int": int, "float": float, "path": Path, "paths": list[str]}.get(opt.kind, str)
            annotation = annotation | None
            shown = opt.default
            if isinstance(shown, list):
                shown = ",".join(map(str, shown))
            elif isinstance(shown, dict) or shown is None:
                shown = None
            default = typer.Option(shown, opt.cli_flag, help=opt.help, show_default=shown is not None)
        params.append(
            inspect.Parameter(opt.name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation)
        )
    return params

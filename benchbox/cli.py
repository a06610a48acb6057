"""The `benchbox` command line: a thin typer shell over the library, one function per command."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer

from benchbox.errors import UserError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="What deploying an image classifier at FP32/FP16/INT8 costs, measured the reference way.",
)


ARTIFACTS_ARG = typer.Argument(..., help="Artifact directory from benchbox export.")
ENGINE_OPTION = typer.Option("ort", help="torch, ort or trt (comma list allowed).")
DEVICE_OPTION = typer.Option(
    "cpu", help="cpu, cuda (ORT CUDA provider, torch, trt) or tensorrt (ORT TensorRT provider)."
)
STORE_OPTION = typer.Option(Path("benchbox-results"), help="Results store directory.")
JSON_OPTION = typer.Option(None, "--json", help="Write {'records': [...]} here.")
CUDA_BACKEND_OPTION = typer.Option("cuda-python", help="TensorRT device memory: cuda-python or pycuda.")


def _split(text: str | None) -> list[str]:
    return [part.strip() for part in (text or "").split(",") if part.strip()]


def _parse_paths(items: list[str] | None) -> dict[str, Path]:
    from benchbox.datasets.catalog import resolve_testset

    paths = {}
    for item in items or []:
        if "=" not in item:
            raise UserError(f"--path {item!r} is not SET=DIR.", "Example: --path a=/data/imagenet-a")
        name, folder = item.split("=", 1)
        paths[resolve_testset(name).name] = Path(folder)
    return paths


def _write_json(path: Path | None, payload: dict) -> None:
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(payload, indent=2, default=str))


@app.command()
def export(
    model: str = typer.Argument(
        "efficientnet_lite0", help="efficientnet_lite0|1|2, a timm name, torchvision:NAME or module:callable"
    ),
    checkpoint: Path | None = typer.Option(None, help="State dict to load (weights_only=True)."),
    out: Path | None = typer.Option(None, help="Artifact directory (default: artifacts/MODEL)."),
    precisions: str = typer.Option("fp32", help="Comma list of fp32, fp16, int8 (int8 builds both flavours)."),
    calib_data: Path | None = typer.Option(None, help="Images for INT8 calibration (ImageNet-style or flat)."),
    calib_size: int = typer.Option(256, help="How many calibration images (seeded, class-balanced)."),
    calib_method: str = typer.Option("entropy", help="minmax, entropy or percentile."),
    opset: int = typer.Option(18, help="ONNX opset."),
    trt: bool = typer.Option(False, "--trt", help="Also build TensorRT engines (needs a GPU and TensorRT)."),
    tf32: bool = typer.Option(False, "--tf32", help="Allow TF32 maths in FP32 TensorRT engines (off by default)."),
) -> None:
    """Export MODEL to ONNX artifacts (one per precision) with parity figures in manifest.json."""
    from benchbox.build import build_artifacts

    out = out or Path("artifacts") / model.replace(":", "_").replace("/", "_")
    artifact = build_artifacts(
        model, out, checkpoint, _split(precisions), calib_data, calib_size, calib_method, opset, trt, tf32=tf32
    )
    from benchbox.console import console

    for precision, entry in artifact.manifest["files"].items():
        parity = entry.get("parity") or {}
        console.print(
            f"{precision:9s} {artifact.directory / entry['path']}  "
            f"max|Δlogit|={parity.get('max_abs_diff', float('nan')):.3g}  "
            f"top-1 agreement={parity.get('top1_agreement', float('nan')):.1f}% "
            f"(vs {parity.get('reference', '?')}, {parity.get('n', 0)} {parity.get('source', '')})"
        )
    console.print(f"artifact: {artifact.directory}")


@app.command(name="eval")
def eval_(
    artifacts: Path = ARTIFACTS_ARG,
    engine: str = ENGINE_OPTION,
    device: str = DEVICE_OPTION,
    precisions: str = typer.Option("fp32", help="Comma list: fp32, fp16, int8 (bf16 for torch on CUDA)."),
    sets: str = typer.Option("val", help="Comma list of val, real, v2, sketch, a, r, o, c, p, or all."),
    data_root: Path | None = typer.Option(None, help="Folder holding the test sets (see benchbox datasets)."),
    path: list[str] | None = typer.Option(None, help="SET=DIR for one set (repeatable)."),
    real_labels: Path | None = typer.Option(None, help="real.json when it is not in the data root."),
    p_baseline: str | None = typer.Option(
        None,
        help="ImageNet-P normaliser for mFR/mT5D: a JSON file or a model "
        "name with fp32 ImageNet-P results in the store.",
    ),
    limit: int | None = typer.Option(None, help="Score an evenly spread subset of N images per set."),
    batch_size: int = typer.Option(32, min=1),
    workers: int | None = typer.Option(None, help="Decode threads (default: CPU count, at most 8)."),
    threads: int | None = typer.Option(None, help="Inference threads (ONNX Runtime intra-op / torch)."),
    store: Path = STORE_OPTION,
    json_out: Path | None = JSON_OPTION,
    cuda_backend: str = CUDA_BACKEND_OPTION,
) -> None:
    """Score an artifact on the test sets with each engine and precision (resumable)."""
    from benchbox.console import print_notes, print_records, progress_bars
    from benchbox.datasets.catalog import parse_sets
    from benchbox.evaluate import EvalOptions, Evaluator
    from benchbox.exporters.manifest import Artifact
    from benchbox.store import ResultStore

    engines = _check_engines(_split(engine))
    artifact = Artifact.load(artifacts)
    options = EvalOptions(
        engines=engines,
        precisions=_split(precisions),
        sets=parse_sets(sets),
        all_sets=sets.strip().lower() == "all",
        data_root=data_root,
        paths=_parse_paths(path),
        real_labels=real_labels,
        limit=limit,
        batch_size=batch_size,
        workers=workers,
        device=device,
        threads=threads,
        p_baseline=p_baseline,
        cuda_backend=cuda_backend,
    )
    result_store = ResultStore(store)
    with progress_bars() as update:
        result = Evaluator(artifact, result_store, options, update).run()
    print_records(result.records, title=f"{artifact.model} — eval")
    print_notes(result.problems, result.warnings, result.unreadable, result.missing_sets, result.failures)
    _write_json(json_out, result.to_json())


@app.command()
def bench(
    artifacts: Path = ARTIFACTS_ARG,
    engine: str = ENGINE_OPTION,
    device: str = DEVICE_OPTION,
    precisions: str = typer.Option("fp32", help="Comma list: fp32, fp16, int8, int8-cpu, int8-trt (bf16: torch)."),
    batch_sizes: str = typer.Option("1,8,32", help="Comma list of batch sizes."),
    warmup: float = typer.Option(1.0, help="Warm-up seconds per cell."),
    duration: float = typer.Option(3.0, help="Timed seconds per cell (at least --min-iterations runs)."),
    min_iterations: int = typer.Option(10, min=1),
    threads: int | None = typer.Option(None, help="ONNX Runtime intra-op / torch threads (recorded)."),
    mode: str = typer.Option("end-to-end", help="end-to-end (host in, host out) or compute (device-resident)."),
    store: Path = STORE_OPTION,
    json_out: Path | None = JSON_OPTION,
    cuda_backend: str = CUDA_BACKEND_OPTION,
) -> None:
    """Latency and throughput on synthetic input, in a loop of its own (never from an accuracy run)."""
    from benchbox.bench import BenchOptions, run_bench
    from benchbox.console import console, print_records, progress_bars
    from benchbox.exporters.manifest import Artifact
    from benchbox.store import ResultStore

    try:
        sizes = [int(b) for b in _split(batch_sizes)]
    except ValueError as exc:
        raise UserError(f"--batch-sizes {batch_sizes!r} is not a comma list of integers.") from exc
    if not sizes or min(sizes) < 1:
        raise UserError("--batch-sizes needs positive integers, e.g. 1,8,32.")
    engines = _check_engines(_split(engine))
    artifact = Artifact.load(artifacts)
    options = BenchOptions(
        engines=engines,
        precisions=_split(precisions),
        batch_sizes=sizes,
        warmup_s=warmup,
        duration_s=duration,
        min_iterations=min_iterations,
        threads=threads,
        device=device,
        mode=mode,
        cuda_backend=cuda_backend,
    )
    with progress_bars() as update:
        result = run_bench(artifact, ResultStore(store), options, update)
    shown = [
        r
        for r in result.records
        if r["metric"]
        in (
            "latency_p50_ms",
            "latency_p99_ms",
            "throughput_ips",
            "latency_cv",
            "singlestream_p90_ms",
            "offline_throughput_ips",
            "unsupported",
            "error",
        )
    ]
    print_records(shown, title=f"{artifact.model} — latency ({device}, {mode})", extra_column="batch_size")
    for warning in result.warnings:
        console.print(f"[bold yellow]WARNING:[/bold yellow] {warning}")
    for failure in result.failures:
        console.print(f"[red]failed cell:[/red] {failure}")
    _write_json(json_out, result.to_json())


def _check_engines(engines: list[str]) -> list[str]:
    from benchbox.runtime import ENGINES

    for e in engines:
        if e not in ENGINES:
            from benchbox.errors import unknown_name

            raise unknown_name("engine", e, ENGINES)
    if "trt" in engines:
        from benchbox.runtime.tensorrt import require_tensorrt

        require_tensorrt()
    return engines


@app.command()
def datasets(
    data_root: Path | None = typer.Option(None, help="Folder holding the test sets."),
    path: list[str] | None = typer.Option(None, help="SET=DIR for one set (repeatable)."),
    json_out: Path | None = typer.Option(None, "--json"),
) -> None:
    """Which test sets are present under a data root: counts against the official ones, layout problems."""
    from benchbox.console import console
    from benchbox.datasets.discovery import survey

    if data_root is not None and not data_root.is_dir():
        raise UserError(f"Data root {data_root} does not exist.", "Pass the folder that holds val/, imagenet-a/, …")
    rows = survey(data_root, _parse_paths(path))
    from rich.table import Table

    table = Table(title=f"Test sets under {data_root}")
    for column in ("set", "found", "where", "images", "official", "problems"):
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(
            row["set"],
            "yes" if row["found"] else "no",
            str(row["where"] or "—"),
            str(row["count"] or "—"),
            str(row["official"] or "—"),
            "; ".join(row["problems"]) or "",
        )
    console.print(table)
    _write_json(json_out, {"sets": rows})


@app.command(name="make-c")
def make_c_command(
    val_dir: Path = typer.Argument(..., help="Any ImageNet-style val folder (<wnid>/<image>)."),
    out: Path = typer.Argument(..., help="Where to write <corruption>/<severity>/<wnid>/<image>."),
    corruptions: str | None = typer.Option(None, help="Comma list (default: the 15 + 4)."),
    severities: str = typer.Option("1,2,3,4,5"),
    limit: int | None = typer.Option(None, help="Use an evenly spread subset of N images."),
    seed: int = typer.Option(0),
    workers: int = typer.Option(2, min=1),
) -> None:
    """Write a synthesized ImageNet-C tree (Resize 256, CenterCrop 224, corrupt, JPEG q85; seeded)."""
    from benchbox.console import console
    from benchbox.datasets.synthesize import make_c

    try:
        levels = [int(s) for s in _split(severities)]
    except ValueError as exc:
        raise UserError(f"--severities {severities!r} is not a comma list of 1..5.") from exc
    summary = make_c(val_dir, out, _split(corruptions) or None, levels, limit, seed, workers)
    console.print(
        f"{summary['images']} images x {len(summary['corruptions'])} corruptions x "
        f"{len(summary['severities'])} severities -> {out} (labelled synthesized)"
    )
    for error in summary["unreadable"]:
        console.print(f"[yellow]unreadable, skipped:[/yellow] {error}")


@app.command(name="make-p")
def make_p_command(
    val_dir: Path = typer.Argument(..., help="Any ImageNet-style val folder (<wnid>/<image>)."),
    out: Path = typer.Argument(..., help="Where to write <perturbation>/<wnid>/<name>.mp4."),
    perturbations: str | None = typer.Option(None, help="Comma list (default: the 10 + 4)."),
    limit: int | None = typer.Option(None, help="Use an evenly spread subset of N images."),
    seed: int = typer.Option(0),
    workers: int = typer.Option(2, min=1),
) -> None:
    """Write synthesized ImageNet-P perturbation sequences as H.264 MP4 files (seeded)."""
    from benchbox.console import console
    from benchbox.datasets.synthesize import make_p

    summary = make_p(val_dir, out, _split(perturbations) or None, limit, seed, workers)
    console.print(
        f"{summary['images']} images x {len(summary['perturbations'])} perturbations -> {out} (labelled synthesized)"
    )


@app.command()
def report(
    store: Path = STORE_OPTION,
    out: Path = typer.Option(Path("benchbox-report"), help="Where to write the report files."),
) -> None:
    """Write report.md, a self-contained report.html, results.json and results.csv from the store."""
    from benchbox.console import console
    from benchbox.reports.report import build_report

    paths = build_report(store, out)
    for kind, path in paths.items():
        console.print(f"{kind:5s} {path}")


@app.command()
def check(
    store: Path = STORE_OPTION,
    policy: Path | None = typer.Option(None, help="TOML policy (default: the one shipped with benchbox)."),
) -> None:
    """Readiness gates from a policy: exit 0 ready, 1 not ready, 2 cannot decide."""
    from benchbox.reports.check import check_and_print

    raise typer.Exit(check_and_print(store, policy))


@app.command()
def run(plan: Path = typer.Argument(..., help="Plan file (see examples/plan.toml).")) -> None:
    """Run a whole comparison from a plan: export, eval, bench, report, check (resumable)."""
    from benchbox.console import console, progress_bars
    from benchbox.plan import run_plan

    with progress_bars() as update:
        outcome = run_plan(plan, update, console.print)
    for failure in outcome.failures:
        console.print(f"[red]failed:[/red] {failure}")
    console.print(f"report: {outcome.report.get('html')}")
    raise typer.Exit(outcome.verdict or 0)


@app.command()
def doctor() -> None:
    """What this machine can run (CUDA, GPU, driver, TensorRT, ONNX Runtime providers), with advice."""
    from rich.markup import escape
    from rich.table import Table

    from benchbox.console import console
    from benchbox.doctor import diagnose

    table = Table(title="benchbox doctor")
    for column in ("component", "status", "detail", "advice"):
        table.add_column(column, overflow="fold")
    for row in diagnose():
        colour = "green" if row["status"] == "ok" else "yellow"
        table.add_row(row["component"], f"[{colour}]{row['status']}[/]", escape(row["detail"]), escape(row["advice"]))
    console.print(table)


@app.command()
def demo(
    data_root: Path | None = typer.Option(None, help="Real data (e.g. ../shared/data/imagenet-sample)."),
    out: Path = typer.Option(Path("benchbox-demo"), help="Where the demo writes artifacts, store and report."),
) -> None:
    """The whole pipeline on the bundled EfficientNet-Lite0, on CPU, with no downloads."""
    from benchbox.demo import run_demo

    raise typer.Exit(run_demo(data_root, out))


def main() -> None:
    """Console entry point: user mistakes print a message and the fix, never a traceback."""
    from benchbox.console import err_console

    try:
        code = app(standalone_mode=False)  # click returns the Exit code instead of raising in this mode
    except UserError as exc:
        from rich.markup import escape

        err_console.print(f"[bold red]error:[/bold red] {escape(exc.message)}")
        if exc.hint:
            err_console.print(exc.hint, markup=False)
        sys.exit(2)
    except KeyboardInterrupt:
        err_console.print("interrupted: finished work is stored; run the same command again to resume.")
        sys.exit(130)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except Exception as exc:  # click usage errors come here in non-standalone mode
        import click

        if isinstance(exc, click.exceptions.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        if isinstance(exc, click.exceptions.Abort):
            sys.exit(130)
        raise
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()

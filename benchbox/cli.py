"""The `benchbox` command line: a thin typer shell over the library, one function per command.

The flags of export, eval and bench come from benchbox.options (one declaration per option, shared with plans
and the demo). `main` turns every user mistake into one line on stderr and exit code 2 — also with typer
releases that vendor their own click, whose exceptions are not `click`'s.

Long because it holds one short function per command (twelve commands), as DESIGN's layout asks.
"""

from __future__ import annotations

import importlib
import inspect
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer

from benchbox.errors import UserError, printable
from benchbox.options import (
    BENCH_OPTIONS,
    EVAL_OPTIONS,
    EXPORT_OPTIONS,
    MODEL_OPTIONS,
    BenchOptions,
    EvalOptions,
    ExportOptions,
    ModelOptions,
    Opt,
    convert,
    parse_options,
    typer_parameters,
)

app = typer.Typer(
    add_completion=True,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
    help="What deploying an image classifier at FP32/FP16/INT8 costs, measured the reference way.",
)
CLI = "the command line"


def _version(value: bool) -> None:
    if value:
        from importlib import metadata

        try:
            version = metadata.version("benchbox")
        except metadata.PackageNotFoundError:  # a source tree that is not installed
            from benchbox import __version__ as version
        typer.echo(f"benchbox {version}")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print benchbox's version and exit."
    ),
) -> None:
    """What deploying an image classifier at FP32/FP16/INT8 costs, measured the reference way."""


def _command(name: str, options: list[Opt], leading: list[inspect.Parameter], skip: tuple[str, ...] = ()):
    """Register `impl(**values)` as a command whose flags are the declared options (after `leading` arguments)."""

    def decorator(impl: Callable[..., Any]) -> Callable[..., Any]:
        params = [*leading, *typer_parameters(options, skip)]

        def command(**kwargs: Any) -> Any:
            return impl(**kwargs)

        command.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
        command.__annotations__ = {p.name: p.annotation for p in params}
        command.__doc__, command.__name__ = impl.__doc__, impl.__name__
        app.command(name=name)(command)
        return impl

    return decorator


def _argument(name: str, annotation: Any, default: Any, help_text: str) -> inspect.Parameter:
    return inspect.Parameter(
        name, inspect.Parameter.KEYWORD_ONLY, default=typer.Argument(default, help=help_text), annotation=annotation
    )


def _split(values: dict[str, Any], options: list[Opt]) -> dict[str, Any]:
    names = {o.name for o in options}
    return {k: v for k, v in values.items() if k in names}


def _check_json_target(path: Path | None, flag: str = "--json", example: str = "results.json") -> None:
    if path is not None and path.is_dir():
        raise UserError(f"{flag} {printable(path)} is a folder.", f"Pass a file path, e.g. {flag} {example}.")


def _write_json(path: Path | None, payload: dict) -> None:
    if path is None:
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(payload, indent=2, default=str))
    except OSError as exc:
        raise UserError(f"Cannot write {printable(path)}: {exc.strerror or exc}.") from exc


ARTIFACTS = _argument("artifacts", Path, ..., "Artifact directory from benchbox export.")


@_command(
    "export",
    [*MODEL_OPTIONS, *EXPORT_OPTIONS],
    [
        _argument(
            "model",
            str,
            "efficientnet_lite0",
            "efficientnet_lite0|1|2, a timm name, torchvision:NAME, "
            "hf-hub:ORG/NAME, module:callable or a path to an .onnx file",
        )
    ],
)
def export(model: str, **values: Any) -> None:
    """Export MODEL to ONNX artifacts (one per precision) with parity figures in manifest.json.

    Example: benchbox export efficientnet_lite0 --precisions fp32,fp16 --out artifacts/lite0"""
    from benchbox.build import build_artifacts
    from benchbox.console import Steps, console, quiet_libraries

    model_options = parse_options(ModelOptions, {**_split(values, MODEL_OPTIONS), "name": model}, CLI)
    options = parse_options(ExportOptions, _split(values, EXPORT_OPTIONS), CLI)
    steps = Steps()
    with quiet_libraries():
        artifact = build_artifacts(model, options.out, options, model_options, on_step=steps)
    steps.done()
    for precision, entry in artifact.manifest["files"].items():
        parity = entry.get("parity") or {}
        where = f"{precision:9s} {printable(artifact.directory / entry['path'])}  "
        if "max_abs_diff" not in parity:  # a user's ONNX file: there is no PyTorch model to compare it with
            console.print(f"{where}parity: not applicable (the source is this ONNX file)", markup=False)
            continue
        console.print(
            f"{where}max|Δlogit|={parity['max_abs_diff']:.3g}  "
            f"top-1 agreement={parity.get('top1_agreement', float('nan')):.1f}% "
            f"(vs {parity.get('reference', '?')}, {parity.get('n', 0)} {parity.get('source', '')})",
            markup=False,
        )
    console.print(f"artifact: {printable(artifact.directory)}", markup=False)


@_command("eval", EVAL_OPTIONS, [ARTIFACTS])
def eval_(artifacts: Path, **values: Any) -> None:
    """Score an artifact on the test sets with each engine and precision (resumable).

    Example: benchbox eval artifacts/lite0 --data-root data --sets val --precisions fp32,fp16 --until-decided"""
    from benchbox.artifact import Artifact
    from benchbox.console import print_notes, print_records, progress_bars
    from benchbox.evaluation.evaluator import Evaluator, check_option_files
    from benchbox.store import ResultStore

    options = parse_options(EvalOptions, values, CLI)
    _check_json_target(options.json)
    _check_engines(options.engines)
    check_option_files(options)
    artifact = Artifact.load(artifacts)
    store = ResultStore(options.store)
    with progress_bars() as update:
        result = Evaluator(artifact, store, options, update).run()
    print_records(result.records, title=f"{artifact.model} — eval")
    print_notes(result.problems, result.warnings, result.unreadable, result.missing_sets, result.failures)
    if result.cache:
        from benchbox.console import console

        console.print(
            f"preprocessed-image cache: {result.cache.get('hits', 0)} hits, {result.cache.get('misses', 0)} decoded",
            markup=False,
        )
    for name, stopped in result.sequential.items():
        from benchbox.console import console

        state = "decided" if stopped["decided"] else "not decided"
        console.print(
            f"--until-decided {name}: {state} after {stopped['n']:,} of {stopped['N']:,} per variant "
            f"(alpha per gate {stopped['alpha_gate']:.2g}; "
            + ", ".join(f"{status} {count}" for status, count in sorted(stopped["gates"].items()))
            + ")",
            markup=False,
        )
    cost = _cost_rows(options.store, artifact)
    if cost:
        from benchbox.console import print_cost_table

        print_cost_table(cost)
    _write_json(options.json, {**result.to_json(), "precision_cost": [row.to_json() for row in cost]})
    _log_mlflow(options)
    if not any(r.metric not in ("failed", "unsupported") for r in result.records):
        raise typer.Exit(1)  # nothing was scored: every cell failed, or no variant had a readable image


def _log_mlflow(options) -> None:
    """--mlflow: the store's results to the tracking server, once the command's own work is stored."""
    if not getattr(options, "mlflow", None):
        return
    from benchbox.console import console
    from benchbox.tracking import log_store

    logged = log_store(options.mlflow, options.store)
    console.print(
        f"mlflow: {len(logged['runs'])} run(s) under {logged['parent']}, {logged['new_metrics']} new metric(s)",
        markup=False,
    )


def _cost_rows(store: Path, artifact) -> list:
    """The cost table of one model as the store holds it now (every comparison is made from stored summaries)."""
    from benchbox.reports.comparison import Comparison, sort_key
    from benchbox.store import ResultStore

    with ResultStore(store, read_only=True) as opened:
        rows = Comparison(opened).rows()
    return sorted((r for r in rows if r.model_id == artifact.model_id), key=sort_key)


@_command("bench", BENCH_OPTIONS, [ARTIFACTS])
def bench(artifacts: Path, **values: Any) -> None:
    """Latency and throughput on synthetic input, in a loop of its own (never from an accuracy run).

    Example: benchbox bench artifacts/lite0 --precisions fp32 --batch-sizes 1 --duration 0.5"""
    from benchbox.artifact import Artifact
    from benchbox.bench import run_bench
    from benchbox.console import console, print_records, progress_bars
    from benchbox.store import ResultStore

    options = parse_options(BenchOptions, values, CLI)
    _check_json_target(options.json)
    _check_engines(options.engines)
    artifact = Artifact.load(artifacts)
    with progress_bars() as update:
        result = run_bench(artifact, ResultStore(options.store), options, update)
    shown = (
        "latency_p50_ms",
        "latency_p99_ms",
        "throughput_ips",
        "latency_cv",
        "singlestream_p90_ms",
        "offline_throughput_ips",
        "unsupported",
        "failed",
    )
    print_records(
        [r for r in result.records if r.metric in shown],
        title=f"{artifact.model} — latency ({options.device}, {options.mode})",
        extra_column="batch_size",
    )
    for warning in result.warnings:
        console.print(f"WARNING: {warning}", markup=False)
    for failure in result.failures:
        console.print(f"failed cell: {failure}", markup=False)
    _write_json(options.json, result.to_json())
    _log_mlflow(options)
    if result.measured == 0:
        raise typer.Exit(1)  # every cell failed or was unsupported: nothing was measured


def _check_engines(engines: list[str]) -> None:
    if "trt" in engines:
        from benchbox.environment import require_tensorrt

        require_tensorrt()


@app.command()
def lint(
    artifacts: Path = typer.Argument(..., help="Artifact directory from benchbox export, or an .onnx file."),
    trt: str | None = typer.Option(
        None,
        help="TensorRT version to check against, e.g. 10.16 or 11.5 (default: the "
        "installed one, else the newest in the table).",
    ),
    batch_sizes: str = typer.Option("1,8,32", help="Batch sizes the engines must accept."),
    store: Path = typer.Option(Path("benchbox-results"), help="Results store (the lint records gate `check`)."),
    json_out: Path | None = typer.Option(None, "--json", help="Also write the findings as JSON."),
) -> None:
    """TensorRT readiness of every ONNX file of an artifact, on any CPU: operators, types, opset, Q/DQ rules,
    dynamic batch, FP16 overflow. Exit 0 clean, 1 with errors.

    Example: benchbox lint artifacts/lite0"""
    from rich.markup import escape
    from rich.table import Table

    from benchbox.artifact import Artifact
    from benchbox.console import console
    from benchbox.exporters.lint import lint_records
    from benchbox.store import ResultStore

    sizes = convert(Opt("batch_sizes", "ints", None, "batch sizes", minimum=1), batch_sizes, CLI)
    _check_json_target(json_out)
    if trt is None:
        from benchbox.environment import tensorrt_status

        trt = tensorrt_status()["version"]
    if artifacts.is_file() and artifacts.suffix.lower() == ".onnx":  # a bare ONNX file: the same rules, no store
        from benchbox.exporters.lint import finding_json, lint_file, trt_line

        findings = [finding_json(f) for f in lint_file(artifacts, trt, sizes)]
        version = trt_line(trt)[0]
        errors = [f for f in findings if f["severity"] == "error"]
        from benchbox.records import Cell, Record

        cell = Cell(printable(artifacts.name), "trt", "cuda", "file")
        records = [Record(cell, "trt_lint_errors", float(len(errors)), extra={"trt": version, "findings": findings})]
        name = printable(artifacts)
    else:
        artifact = Artifact.load(artifacts)
        records = lint_records(artifact, ResultStore(store), trt, sizes)
        name = artifact.model
    table = Table(title=escape(f"{name}: TensorRT readiness ({records[0].extra['trt'] if records else trt})"))
    for column in ("file", "rule", "severity", "where", "finding"):
        table.add_column(column, overflow="fold")
    for record in records:
        for finding in record.extra["findings"]:
            table.add_row(
                *(
                    escape(str(x))
                    for x in (
                        record.cell.precision,
                        finding["rule"],
                        finding["severity"],
                        finding["where"],
                        finding["message"],
                    )
                )
            )
    console.print(table)
    errors = sum(int(r.value) for r in records if r.metric == "trt_lint_errors")
    files = ", ".join(sorted({r.cell.precision if r.cell.precision != "file" else name for r in records}))
    console.print(f"{errors} error(s) in {files}" if errors else f"clean: {files}", markup=False)
    _write_json(json_out, {"records": [r.to_json() for r in records]})
    if errors:
        raise typer.Exit(1)


datasets_app = typer.Typer(
    help="Which test sets are present (any source: folders, archives, shards, parquet), and fetching them.\n\n"
    "Example: benchbox datasets --data-root data",
    invoke_without_command=True,
)
app.add_typer(datasets_app, name="datasets")


@datasets_app.callback()
def datasets(
    ctx: typer.Context,
    data_root: Path | None = typer.Option(None, help="Folder holding the test sets."),
    path: list[str] | None = typer.Option(None, help="SET=SOURCE for one set (repeatable)."),
    json_out: Path | None = typer.Option(None, "--json", help="Also write the table as JSON."),
) -> None:
    """Which test sets are present under a data root: format, counts against the official ones, problems.

    Example: benchbox datasets --data-root data"""
    if ctx.invoked_subcommand is not None:
        return
    from rich.markup import escape
    from rich.table import Table

    from benchbox.console import console
    from benchbox.datasets.discovery import survey

    if data_root is not None and not data_root.is_dir():
        raise UserError(f"Data root {printable(data_root)} does not exist.", "Pass the folder that holds val/, …")
    _check_json_target(json_out)
    paths = parse_options(EvalOptions, {"paths": path or []}, CLI).paths
    rows = survey(data_root, paths)
    table = Table(title=escape(f"Test sets under {printable(data_root) if data_root else '(no data root)'}"))
    for column in ("set", "found", "where", "format", "images", "official", "problems"):
        table.add_column(column, overflow="fold")
    for row in rows:
        cells = [
            row["set"],
            "yes" if row["found"] else "no",
            row["where"] or "—",
            row.get("format") or "—",
            row["count"] or "—",
            row["official"] or "—",
            "; ".join(row["problems"]),
        ]
        table.add_row(*(escape(str(c)) for c in cells))
    console.print(table)
    _write_json(json_out, {"sets": rows})


@datasets_app.command("fetch")
def datasets_fetch(
    sets: list[str] = typer.Argument(
        ..., help="Set names (a, r, o, c, p, v2; val and sketch with --from), or hf:ORG/NAME."
    ),
    to: Path | None = typer.Option(None, "--to", help="Folder to put the archives in (then: --data-root DIR)."),
    mirror: str | None = typer.Option(None, help="Base URL of a mirror serving the same file names."),
    no_verify: bool = typer.Option(False, "--no-verify", help="Do not check checksums (for files that have none)."),
    given: list[Path] | None = typer.Option(None, "--from", help="An archive you downloaded yourself (repeatable)."),
) -> None:
    """Download the published archives of test sets, resumably, each verified against its catalogued checksum
    before it is moved into place. Archives are read unextracted: afterwards `--data-root DIR` finds them.

    Example: benchbox datasets fetch a r o --to /data/imagenet
    """
    from benchbox.datasets.fetch import fetch_sets

    hub = [name for name in sets if name.startswith("hf:")]
    if hub:
        from benchbox.datasets.sources.parquet import download_dataset

        for name in hub:
            repo, _, split = name.removeprefix("hf:").partition(":")
            folder = download_dataset(repo, split or None)
            typer.echo(f"{repo}: in the Hugging Face cache at {printable(folder)}; use --path SET={name}")
    rest = [name for name in sets if not name.startswith("hf:")]
    if not rest:
        return
    if to is None:
        raise UserError("--to DIR is required: the folder the archives go in.", "Example: --to /data/imagenet")
    placed = fetch_sets(rest, to, mirror, not no_verify, list(given or []), say=lambda text: typer.echo(text, err=True))
    typer.echo(f"{len(placed)} archive(s) in place under {printable(to)}; evaluate with --data-root {printable(to)}")


LIMIT = Opt("limit", "int", None, "images", minimum=1)
WORKERS = Opt("workers", "int", 2, "processes", minimum=1)
SEED = Opt("seed", "int", 0, "seed", minimum=0)


@app.command(name="make-c")
def make_c_command(
    val_dir: Path = typer.Argument(..., help="Any ImageNet-style val folder (<wnid>/<image>)."),
    out: Path = typer.Argument(..., help="Where to write <corruption>/<severity>/<wnid>/<image>."),
    corruptions: str | None = typer.Option(None, help="Comma list (default: the 15 + 4)."),
    severities: str = typer.Option("1,2,3,4,5", help="Comma list of 1..5."),
    limit: int | None = typer.Option(None, help="Use an evenly spread subset of N images."),
    seed: int = typer.Option(0, help="Base seed (per image and corruption seeds derive from it)."),
    workers: int = typer.Option(2, help="Processes."),
) -> None:
    """Write a synthesized ImageNet-C tree (Resize 256, CenterCrop 224, corrupt, JPEG q85; seeded).

    Example: benchbox make-c data/val data/imagenet-c --corruptions fog,contrast --severities 1,3 --limit 8"""
    from benchbox.console import console, progress_bars
    from benchbox.datasets.synthesize import make_c

    levels = convert(Opt("severities", "ints", None, "1..5", minimum=1, maximum=5), severities, CLI)
    names = convert(Opt("corruptions", "list", None, "names"), corruptions, CLI) if corruptions else None
    with progress_bars() as update:
        summary = make_c(
            val_dir,
            out,
            names,
            levels,
            convert(LIMIT, limit, CLI),
            convert(SEED, seed, CLI),
            convert(WORKERS, workers, CLI),
            on_progress=update,
        )
    console.print(
        f"{summary['images']} images x {len(summary['corruptions'])} corruptions x "
        f"{len(summary['severities'])} severities -> {printable(out)} (labelled synthesized)",
        markup=False,
    )
    for error in summary["unreadable"]:
        console.print(f"unreadable, skipped: {error}", markup=False)


@app.command(name="make-p")
def make_p_command(
    val_dir: Path = typer.Argument(..., help="Any ImageNet-style val folder (<wnid>/<image>)."),
    out: Path = typer.Argument(..., help="Where to write <perturbation>/<wnid>/<name>.mp4."),
    perturbations: str | None = typer.Option(None, help="Comma list (default: the 10 + 4)."),
    limit: int | None = typer.Option(None, help="Use an evenly spread subset of N images."),
    seed: int = typer.Option(0, help="Base seed."),
    workers: int = typer.Option(2, help="Processes."),
) -> None:
    """Write synthesized ImageNet-P perturbation sequences as H.264 MP4 files (seeded).

    Example: benchbox make-p data/val data/imagenet-p --perturbations translate --limit 4"""
    from benchbox.console import console, progress_bars
    from benchbox.datasets.synthesize import make_p

    names = convert(Opt("perturbations", "list", None, "names"), perturbations, CLI) if perturbations else None
    with progress_bars() as update:
        summary = make_p(
            val_dir,
            out,
            names,
            convert(LIMIT, limit, CLI),
            convert(SEED, seed, CLI),
            convert(WORKERS, workers, CLI),
            on_progress=update,
        )
    console.print(
        f"{summary['images']} images x {len(summary['perturbations'])} perturbations -> {printable(out)} "
        "(labelled synthesized)",
        markup=False,
    )
    for error in summary["unreadable"]:
        console.print(f"unreadable, skipped: {error}", markup=False)


@app.command()
def report(
    store: Path = typer.Option(Path("benchbox-results"), help="Results store directory (read only)."),
    out: Path = typer.Option(Path("benchbox-report"), help="Where to write the report files."),
    policy: Path | None = typer.Option(None, help="TOML policy for the verdict (default: benchbox's)."),
) -> None:
    """Write report.md, a self-contained report.html, results.json and results.csv from the store; print the
    verdict and the cost table.

    Example: benchbox report --store benchbox-results --out benchbox-report"""
    from benchbox.console import console
    from benchbox.reports.check import check_store, print_verdict
    from benchbox.reports.report import build_report

    if out.exists() and not out.is_dir():
        raise UserError(f"--out {printable(out)} is a file.", "Pass a folder for the report.")
    result = check_store(store, policy)
    paths = build_report(store, out, policy, result)
    print_verdict(result)
    for kind, path in paths.items():
        console.print(f"{kind:5s} {printable(path)}", markup=False)


@app.command()
def check(
    store: Path = typer.Option(Path("benchbox-results"), help="Results store directory (read only)."),
    policy: Path | None = typer.Option(None, help="TOML policy (default: the one shipped with benchbox)."),
    json_out: Path | None = typer.Option(None, "--json", help="Also write the verdict and every gate as JSON."),
    explain: bool = typer.Option(False, "--explain", help="Print each gate's arithmetic."),
    junit: Path | None = typer.Option(
        None, "--junit", help="Also write JUnit XML (a test case per gate and subject) for CI test reports."
    ),
    baseline_model: str | None = typer.Option(
        None, "--baseline-model", help="Gate every other model against this one (NAME or NAME@ID-PREFIX)."
    ),
    init_policy: Path | None = typer.Option(
        None, "--init-policy", help="Write the commented default policy to this file (to edit) and exit."
    ),
) -> None:
    """Readiness gates from a policy: exit 0 ready, 1 not ready, 2 cannot decide (docs/policy.md).

    Example: benchbox check --store benchbox-results --explain --junit gates.xml"""
    from benchbox.reports.check import check_and_print

    if init_policy is not None:
        from benchbox.console import console
        from benchbox.reports.policy import write_default_policy

        console.print(f"wrote {printable(write_default_policy(init_policy))}", markup=False)
        return
    _check_json_target(json_out)
    _check_json_target(junit, "--junit", "gates.xml")
    raise typer.Exit(check_and_print(store, policy, json_out, explain, junit, baseline_model))


@app.command()
def compare(
    baseline: str = typer.Argument(..., help="The model the others are compared with (NAME or NAME@ID-PREFIX)."),
    store: Path = typer.Option(Path("benchbox-results"), help="Results store (read only)."),
    other_store: list[Path] | None = typer.Option(
        None, "--other-store", help="Another store to read beside --store, e.g. the other model's (repeatable)."
    ),
    policy: Path | None = typer.Option(None, help="TOML policy (default: the one shipped with benchbox)."),
    json_out: Path | None = typer.Option(None, "--json", help="Also write the verdict and every gate as JSON."),
    junit: Path | None = typer.Option(None, "--junit", help="Also write JUnit XML for CI test reports."),
    explain: bool = typer.Option(False, "--explain", help="Print each gate's arithmetic."),
) -> None:
    """Model against model: every other model in the store against BASELINE on the same sets, engine and
    precision, with the paired intervals and the policy's gates (exit 0 ready, 1 not ready, 2 cannot decide).

    Example: benchbox compare efficientnet_lite0 --store benchbox-results --explain"""
    for folder in other_store or ():
        if not (folder / "index.sqlite").is_file():
            raise UserError(f"--other-store {printable(folder)} is not a benchbox results store.")
    from benchbox.reports.check import check_and_print

    _check_json_target(json_out)
    _check_json_target(junit, "--junit", "gates.xml")
    raise typer.Exit(check_and_print(store, policy, json_out, explain, junit, baseline, tuple(other_store or ())))


store_app = typer.Typer(help="What the results store holds; forget what should no longer be judged.")
app.add_typer(store_app, name="store")


@store_app.command("list")
def store_list(
    store: Path = typer.Option(Path("benchbox-results"), help="Results store directory (read only)."),
    all_runs: bool = typer.Option(False, "--all", help="Also superseded and forgotten runs."),
) -> None:
    """The runs of a store: id, kind, cell, status, when (the latest of each identity unless --all).

    Example: benchbox store list --store benchbox-results --all"""
    from rich.markup import escape
    from rich.table import Table

    from benchbox.console import console
    from benchbox.store import ResultStore

    opened = ResultStore(store, read_only=True)
    runs = opened.runs() if all_runs else opened.latest_runs()
    table = Table(title=escape(f"runs in {printable(store)}"))
    for column in ("id", "kind", "model", "engine/precision", "device", "set", "batch", "status", "finished", "note"):
        table.add_column(column, overflow="fold")
    for run in runs:
        cell = "/".join(x for x in (run["engine"], run["precision"]) if x)
        where = "/".join(x for x in (run["testset"], run["variant"]) if x)
        forgotten = (run["info"] or {}).get("forgotten")
        note = "; ".join(
            x
            for x in (
                run["error"],
                f"forgotten {forgotten['at']}: {forgotten['why'] or 'no reason given'}" if forgotten else None,
            )
            if x
        )
        row = [
            run["id"],
            run["kind"],
            run["model"],
            cell,
            run["device"],
            where,
            run["batch_size"],
            run["status"],
            run["finished"],
            note,
        ]
        table.add_row(*(escape(str(x if x is not None else "")) for x in row))
    console.print(table)


@store_app.command("forget")
def store_forget(
    runs: list[int] | None = typer.Argument(None, help="Run ids (from benchbox store list)."),
    store: Path = typer.Option(Path("benchbox-results"), help="Results store directory."),
    failed: bool = typer.Option(False, "--failed", help="Every failed run that nothing has superseded."),
    why: str = typer.Option("", help="Why (kept with the runs)."),
) -> None:
    """Stop judging runs: they stay in the store, marked forgotten (when, why), and report/check skip them.

    Example: benchbox store forget --failed --store benchbox-results --why "rebuilt the engine"
    """
    from benchbox.console import console
    from benchbox.store import ResultStore

    if not runs and not failed:
        raise UserError("Name the runs to forget, or pass --failed.", "See the run ids with: benchbox store list")
    gone = ResultStore(store).forget(runs or [], failed=failed, why=why)
    for run in gone:
        console.print(
            f"forgot run {run['id']} ({run['kind']} {run['model']} {run['engine']}/{run['precision']} "
            f"{run['testset'] or ''} {run['status']})",
            markup=False,
        )
    console.print(f"{len(gone)} run(s) forgotten; `benchbox store list --all` still shows them.", markup=False)


@store_app.command("recover")
def store_recover(store: Path = typer.Option(Path("benchbox-results"), help="Results store directory.")) -> None:
    """Roll back what a stopped writer left half-done, so read-only commands can read the store.

    Example: benchbox store recover --store benchbox-results"""
    from benchbox.console import console
    from benchbox.store import ResultStore

    ResultStore(store).recover()
    console.print(f"recovered {printable(store)}: it holds its last committed state.", markup=False)


@app.command()
def run(
    plan: Path = typer.Argument(..., help="Plan file (see examples/plan.toml)."),
    ray: str | None = typer.Option(
        None, help="Run on a Ray cluster: auto, local, or the head's HOST:PORT (over the plan's [ray] address)."
    ),
    mlflow: str | None = typer.Option(None, help="Also log the results to this MLflow tracking URI."),
) -> None:
    """Run a whole comparison from a plan: export, eval, bench, report, check (resumable).

    Example: benchbox run examples/plan-sample.toml"""
    from benchbox.console import console, print_records, progress_bars
    from benchbox.plan import run_plan

    with progress_bars() as update:
        outcome = run_plan(plan, update, lambda text: console.print(text, markup=False), ray=ray, mlflow=mlflow)
    headline = ("top1", "top5", "real_top1", "aupr", "mce", "relative_mce", "mfr", "agreement_top1", "top1_delta")
    shown = [r for r in outcome.records if r.metric in headline and (r.cell.testset != "c" or not r.cell.variant)]
    print_records(shown, title="plan results")
    for failure in outcome.failures:
        console.print(f"failed: {failure}", markup=False)
    console.print(f"report: {printable(outcome.report.get('html', ''))}", markup=False)
    raise typer.Exit(outcome.verdict or 0)


@app.command()
def doctor() -> None:
    """What this machine can run (CUDA, GPU, driver, TensorRT, ONNX Runtime providers), with advice.

    Example: benchbox doctor"""
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
    """The whole pipeline on the bundled EfficientNet-Lite0, on CPU, with no downloads.

    Example: benchbox demo"""
    from benchbox.demo import run_demo

    if data_root is not None and not data_root.is_dir():
        raise UserError(f"Data root {printable(data_root)} does not exist.", "Pass a folder that holds val/.")
    raise typer.Exit(run_demo(data_root, out))


def _click_like(exc: BaseException, name: str) -> bool:
    """Is `exc` click's `name` exception — from click itself or from a copy a typer release vendors?"""
    for module in ("click.exceptions", "typer._click.exceptions"):
        try:
            cls = getattr(importlib.import_module(module), name, None)
        except ImportError:
            continue
        if cls is not None and isinstance(exc, cls):
            return True
    return any(base.__name__ == name and "click" in base.__module__ for base in type(exc).__mro__)


def _plugin_problems() -> None:
    """Plugins that could not be loaded: one line each, after the command (the other sets and engines worked)."""
    from benchbox.console import err_console
    from benchbox.registry import problems

    for line in problems():
        err_console.print(f"warning: {line}", markup=False)


def main(argv: list[str] | None = None) -> None:
    """Console entry point: user mistakes print one message and the fix, never a traceback (exit 2). `argv`: the
    arguments (default: the command line's), so tests run the real entry point in-process."""
    from benchbox.console import err_console

    def interrupted() -> None:
        err_console.print("interrupted: finished work is stored; run the same command again to resume.")
        sys.exit(130)

    try:
        code = app(args=argv, prog_name="benchbox", standalone_mode=False)
        _plugin_problems()
    except UserError as exc:
        _plugin_problems()
        from rich.markup import escape

        err_console.print(f"[bold red]error:[/bold red] {escape(exc.message)}")
        if exc.hint:
            err_console.print(exc.hint, markup=False)
        sys.exit(2)
    except KeyboardInterrupt:
        interrupted()
    except Exception as exc:
        if _click_like(exc, "Exit"):
            sys.exit(getattr(exc, "exit_code", 0))
        if _click_like(exc, "Abort"):  # click's wrapping of Ctrl-C
            interrupted()
        if _click_like(exc, "ClickException"):  # usage errors: click prints usage and one line
            exc.show()
            sys.exit(2 if _click_like(exc, "UsageError") else getattr(exc, "exit_code", 1))
        if isinstance(exc, OSError):  # a file the user pointed at cannot be read or written
            err_console.print(f"error: {exc.strerror or exc}: {printable(exc.filename or '')}", markup=False)
            sys.exit(2)
        raise
    if code == 130:  # typer >= 0.2x turns Ctrl-C into Exit(130) itself; no benchbox command returns 130
        interrupted()
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()

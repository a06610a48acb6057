"""`benchbox demo`: the whole pipeline on the bundled EfficientNet-Lite0, CPU only, no downloads."""

from __future__ import annotations

from pathlib import Path

from benchbox.console import Steps, console, print_notes, print_records, progress_bars, quiet_libraries

DEMO_MODEL = "efficientnet_lite0"
DEMO_WNIDS = ["n01440764", "n01530575", "n02085620", "n02123045", "n02504458", "n03417042", "n04037443", "n07747607"]
AGREEMENT_METRICS = ("agreement_top1", "top1_delta", "mcnemar_p", "nonfinite_outputs", "unreadable_files")
ACCURACY_METRICS = ("top1", "top5", "real_top1", "ece", "aupr", "mce", "relative_mce", "clean_top1", *AGREEMENT_METRICS)


def run_demo(data_root: Path | None, out: Path) -> int:
    """Export, build FP16/INT8, evaluate with ONNX Runtime and PyTorch, bench, report, check. Returns 0."""
    from benchbox.bench import run_bench
    from benchbox.build import build_artifacts
    from benchbox.datasets.catalog import C_CORRUPTIONS
    from benchbox.datasets.synthetic import write_image_folder
    from benchbox.evaluation.evaluator import EvalResult, Evaluator
    from benchbox.options import BenchOptions, EvalOptions, ExportOptions, parse_options
    from benchbox.reports.check import check_store, print_verdict
    from benchbox.reports.report import build_report
    from benchbox.store import ResultStore

    out.mkdir(parents=True, exist_ok=True)
    generated = out / "generated"
    if not (generated / "calib").is_dir():
        write_image_folder(generated / "calib", DEMO_WNIDS, per_class=4, seed=1)
    real_data = data_root is not None
    if not real_data:
        if not (generated / "val").is_dir():
            write_image_folder(generated / "val", DEMO_WNIDS, per_class=4, seed=2)
        data_root = generated
        console.print(
            "No --data-root: using 32 generated images. They show agreement between engines and "
            "precisions, [bold]not accuracy[/bold]."
        )
    console.rule(f"1. export {DEMO_MODEL}: FP32 ONNX, FP16, INT8 (TensorRT and CPU flavours)")
    console.print("INT8 is calibrated on 32 generated images (the demo has no calibration split of real data).")
    export = parse_options(
        ExportOptions,
        {
            "precisions": ["fp32", "fp16", "int8"],
            "calib_data": generated / "calib",
            "calib_size": 32,
            "calib_method": "minmax",
        },
        "the demo",
    )
    steps = Steps("  ")
    with quiet_libraries():
        note = "benchbox demo: generated images, not ImageNet"
        artifact = build_artifacts(DEMO_MODEL, out / "artifacts" / DEMO_MODEL, export, calib_note=note, on_step=steps)
    steps.done()
    for precision, entry in artifact.manifest["files"].items():
        parity = entry["parity"]
        console.print(
            f"  {precision:9s} max|Δlogit| {parity['max_abs_diff']:.3g}, top-1 agreement "
            f"{parity['top1_agreement']:.1f}% vs {parity['reference']} ({parity['source']})"
        )

    store = ResultStore(out / "store")
    sets = "all"
    if not real_data:
        from benchbox.datasets.synthesize import make_c

        console.rule("2. synthesized ImageNet-C on the generated images (15 corruptions, severities 1, 3, 5)")
        with progress_bars() as update:
            make_c(
                generated / "val",
                generated / "imagenet-c",
                corruptions=list(C_CORRUPTIONS),
                severities=[1, 3, 5],
                limit=16,
                workers=2,
                on_progress=update,
            )
        sets = "val,c"
    console.rule("3. evaluate: ONNX Runtime (fp32, fp16, int8) on every set present; PyTorch eager (fp32) on val")
    result = EvalResult()
    with progress_bars() as update:
        for engine, engine_sets in (("ort", sets), ("torch", "val")):
            values = {
                "engines": [engine],
                "precisions": ["fp32", "fp16", "int8"],
                "sets": engine_sets,
                "data_root": data_root,
                "batch_size": 16,
                "store": out / "store",
            }
            part = Evaluator(artifact, store, parse_options(EvalOptions, values, "the demo"), update).run()
            for name in ("records", "problems", "warnings", "failures"):
                getattr(result, name).extend(getattr(part, name))
            result.unreadable.update(part.unreadable)
            if engine == "ort":
                result.missing_sets = part.missing_sets
    shown = ACCURACY_METRICS if real_data else (*AGREEMENT_METRICS, "mce", "relative_mce")
    records = [r for r in result.records if r.metric in shown and (r.cell.testset != "c" or not r.cell.variant)]
    print_records(records, title=f"{DEMO_MODEL} on {data_root if real_data else 'generated images (agreement only)'}")
    expected = ("only measured on CUDA", "no int8 path")
    print_notes(
        result.problems,
        result.warnings,
        result.unreadable,
        result.missing_sets,
        [f for f in result.failures if not any(e in f for e in expected)],
    )
    if real_data:
        console.print(
            "INT8 here was calibrated on generated images, not on ImageNet: expect it to lose accuracy. "
            "For a fair INT8 figure, export with --calib-data pointing at real images kept out of the test."
        )
    else:
        console.print(
            "mCE above is on synthesized corruptions of generated images: it shows the pipeline, not the "
            "model's robustness."
        )

    console.rule("4. latency: ONNX Runtime, batch 1 and 8, 1 s per cell (synthetic input)")
    bench_options = parse_options(
        BenchOptions,
        {
            "engines": ["ort"],
            "precisions": ["fp32", "fp16", "int8"],
            "batch_sizes": [1, 8],
            "warmup": 0.5,
            "duration": 1.0,
        },
        "the demo",
    )
    with progress_bars() as update:
        bench = run_bench(artifact, store, bench_options, update)
    print_records(
        [r for r in bench.records if r.metric in ("latency_p50_ms", "latency_p99_ms", "throughput_ips")],
        title="latency (end to end, CPU)",
        extra_column="batch_size",
    )
    for warning in bench.warnings:
        console.print(warning, markup=False, style="yellow")

    console.rule("5. report and readiness check (default policy)")
    result = check_store(store.directory, None)
    paths = build_report(store.directory, out / "report", None, result)
    print_verdict(result)
    code = result.exit_code
    if not real_data:
        console.print(
            "(On generated images the accuracy gates are skipped and the agreement gates decide: the "
            "verdict exercises the gates, it does not judge the model.)"
        )
    console.print(f"report: {paths['html']}", markup=False)
    console.print(f"verdict: {['READY', 'NOT READY', 'CANNOT DECIDE'][code]} (exit code of `benchbox check`: {code})")
    return 0

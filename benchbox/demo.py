"""`benchbox demo`: the whole pipeline on the bundled EfficientNet-Lite0, CPU only, no downloads."""

from __future__ import annotations

from pathlib import Path

from benchbox.console import console, print_notes, print_records, progress_bars

DEMO_MODEL = "efficientnet_lite0"
DEMO_WNIDS = [
    "n01440764",
    "n01530575",
    "n02085620",
    "n02123045",
    "n02504458",
    "n03417042",
    "n04037443",
    "n07747607",
]


def run_demo(data_root: Path | None, out: Path) -> int:
    """Export, build FP16/INT8, evaluate with ONNX Runtime and PyTorch; print what it means. Returns an exit code."""
    from benchbox.build import build_artifacts
    from benchbox.datasets.synthetic import write_image_folder
    from benchbox.evaluate import EvalOptions, Evaluator
    from benchbox.store import ResultStore

    out.mkdir(parents=True, exist_ok=True)
    generated = out / "generated"
    if not (generated / "calib").is_dir():
        console.print("Generating calibration images (they are synthetic: INT8 is calibrated on them) …")
        write_image_folder(generated / "calib", DEMO_WNIDS, per_class=4, seed=1)
    real_data = data_root is not None
    if not real_data:
        if not (generated / "val").is_dir():
            console.print("No --data-root: generating a small image set (agreement only, not accuracy) …")
            write_image_folder(generated / "val", DEMO_WNIDS, per_class=4, seed=2)
        data_root = generated
    console.rule(f"1. export {DEMO_MODEL}: FP32 ONNX, FP16, INT8 (TensorRT and CPU flavours)")
    artifact = build_artifacts(
        DEMO_MODEL,
        out / "artifacts" / DEMO_MODEL,
        precisions=["fp32", "fp16", "int8"],
        calib_data=generated / "calib",
        calib_size=32,
        calib_method="minmax",
        calib_note="benchbox demo: generated images, not ImageNet",
    )
    for precision, entry in artifact.manifest["files"].items():
        parity = entry["parity"]
        console.print(
            f"  {precision:9s} max|Δlogit| {parity['max_abs_diff']:.3g}, top-1 agreement "
            f"{parity['top1_agreement']:.1f}% vs {parity['reference']}"
        )
    store = ResultStore(out / "store")
    console.rule("2. evaluate: ONNX Runtime (fp32, fp16, int8) and PyTorch eager (fp32), CPU")
    results = []
    with progress_bars() as update:
        for engine, precisions in (("ort", ["fp32", "fp16", "int8"]), ("torch", ["fp32"])):
            options = EvalOptions(
                engines=[engine], precisions=precisions, sets=["val"], data_root=data_root, batch_size=16
            )
            evaluator = Evaluator(artifact, store, options, update)
            results.append((evaluator, evaluator.run()))
    records = [r for _, res in results for r in res.records]
    print_records(
        records,
        title=f"{DEMO_MODEL} on {'real images: ' + str(data_root) if real_data else 'generated images'}",
    )
    for _, res in results:
        print_notes(res.problems, res.warnings, res.unreadable, res.missing_sets, res.failures)
    ort_fp32 = results[0][0].predictions[("ort", "fp32")].get("val")
    torch_fp32 = results[1][0].predictions[("torch", "fp32")].get("val")
    if ort_fp32 is not None and torch_fp32 is not None:
        same = float((ort_fp32.top1 == torch_fp32.top1).mean() * 100)
        console.print(f"ONNX Runtime FP32 vs PyTorch FP32: top-1 agreement {same:.2f}% on {len(ort_fp32.top1)} images.")
    if not real_data:
        console.print(
            "[bold]These images are generated: the top-1 figures above are NOT accuracy.[/bold] "
            "Agreement between engines and precisions is what they show. "
            "Run `benchbox demo --data-root DIR` on ImageNet-style data for real accuracy."
        )
    console.print(f"artifacts: {artifact.directory}   store: {store.directory}")
    return 0

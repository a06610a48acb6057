"""`benchbox demo`: the whole pipeline on the bundled EfficientNet-Lite0, CPU only, no downloads.

The demo is a plan (benchbox.plan.run_plan: one pipeline, one place that decides order, resume and failure
records) built here instead of read from a file: export FP32/FP16/INT8, evaluate with ONNX Runtime on every set
present and PyTorch eager on val, a short latency bench, the report and the verdict. Without data it makes its
own images (and a synthesized ImageNet-C of them), which show agreement between engines and precisions, not
accuracy. With `--data-root`, INT8 is calibrated on a held-out part of that data's val images, which are then not
scored (the report says so).
"""

from __future__ import annotations

import os
from pathlib import Path

from benchbox.console import console, progress_bars

DEMO_MODEL = "efficientnet_lite0"
DEMO_WNIDS = ["n01440764", "n01530575", "n02085620", "n02123045", "n02504458", "n03417042", "n04037443", "n07747607"]
CALIBRATION_IMAGES = 32
HEADLINE = ("top1", "top5", "real_top1", "aupr", "mce", "relative_mce", "clean_top1", "nonfinite_outputs")


def held_out_split(val: Path, out: Path, count: int = CALIBRATION_IMAGES) -> tuple[Path, Path, int]:
    """Symlink a class-balanced, seeded `count` of val's images into out/calib and the rest into out/val, so
    INT8 is calibrated on images that are never scored. Returns (calib folder, val folder, images scored)."""
    from benchbox.datasets.readers import read_image_folder
    from benchbox.exporters.calibration import select_calibration_files

    chosen = {os.path.realpath(p) for p in select_calibration_files(val, count)}
    scored = 0
    for sample in read_image_folder(val, "val").samples:
        source = Path(sample.path)
        wnid = source.parent.name
        kind = "calib" if os.path.realpath(source) in chosen else "val"
        target = out / kind / wnid / source.name
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            target.symlink_to(source.resolve())
        scored += kind == "val"
    return out / "calib", out / "val", scored


def demo_plan(data_root: Path | None, out: Path):
    """The demo as a Plan: what it evaluates and benches, and where its calibration images come from."""
    from benchbox.options import BenchOptions, EvalOptions, ExportOptions, ModelOptions, parse_options
    from benchbox.plan import Plan, check_inputs

    generated = out / "generated"
    where = "the demo"
    paths: dict[str, Path] = {}
    if data_root is None:
        calib, root, sets = generated / "calib", generated, "val,c"
        note = "benchbox demo: generated images, not ImageNet"
    else:
        val = next(
            (data_root / d for d in ("val", "imagenet/val", "ILSVRC2012_img_val") if (data_root / d).is_dir()), None
        )
        if val is None:
            from benchbox.errors import UserError

            raise UserError(f"No val/ folder under {data_root}.", "Pass a data root that holds val/<wnid>/<image>.")
        calib, held_val, scored = held_out_split(val, out / "data")
        root, sets, paths = data_root, "all", {"val": held_val}
        note = (
            f"INT8 calibrated on {CALIBRATION_IMAGES} images held out of {val} (not scored: {scored} val images remain)"
        )
    export = parse_options(
        ExportOptions,
        {
            "precisions": ["fp32", "fp16", "int8"],
            "calib_data": calib,
            "calib_size": CALIBRATION_IMAGES,
            "calib_method": "minmax",
        },
        where,
    )
    common = {"data_root": root, "batch_size": 16, "paths": paths}
    evals = (
        parse_options(
            EvalOptions, {"engines": ["ort"], "precisions": ["fp32", "fp16", "int8"], "sets": sets, **common}, where
        ),
        parse_options(EvalOptions, {"engines": ["torch"], "precisions": ["fp32"], "sets": "val", **common}, where),
    )
    bench = parse_options(
        BenchOptions,
        {
            "engines": ["ort"],
            "precisions": ["fp32", "fp16", "int8"],
            "batch_sizes": [1, 8],
            "warmup": 0.5,
            "duration": 1.0,
        },
        where,
    )
    plan = Plan(
        out / "demo plan",
        out,
        (parse_options(ModelOptions, {"name": DEMO_MODEL}, where),),
        export,
        evals,
        bench,
        None,
        calib_note=note,
    )
    if data_root is not None:
        check_inputs(plan)
    return plan


def _generated_data(out: Path) -> None:
    """32 generated val images, 32 for calibration, and a synthesized ImageNet-C of them (15 corruptions at
    severities 1, 3, 5)."""
    from benchbox.datasets.catalog import C_CORRUPTIONS
    from benchbox.datasets.synthesize import make_c
    from benchbox.datasets.synthetic import write_image_folder

    generated = out / "generated"
    if not (generated / "calib").is_dir():
        write_image_folder(generated / "calib", DEMO_WNIDS, per_class=4, seed=1)
    if not (generated / "val").is_dir():
        write_image_folder(generated / "val", DEMO_WNIDS, per_class=4, seed=2)
    if not (generated / "imagenet-c" / "SYNTHESIZED.json").is_file():
        console.rule("synthesized ImageNet-C on the generated images (15 corruptions, severities 1, 3, 5)")
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


def run_demo(data_root: Path | None, out: Path) -> int:
    """Run the demo plan; prints the headline figures, the cost table and the verdict. Returns 0 (the verdict is
    shown, not the exit code: `benchbox check` gives that)."""
    from benchbox.console import print_records
    from benchbox.plan import run_plan

    out.mkdir(parents=True, exist_ok=True)
    if data_root is None:
        console.print(
            "No --data-root: using 32 generated images. They show agreement between engines and precisions, "
            "[bold]not accuracy[/bold]."
        )
        _generated_data(out)
    plan = demo_plan(data_root, out)
    console.rule(f"{DEMO_MODEL}: export FP32/FP16/INT8, evaluate (ONNX Runtime, PyTorch on val), bench, report")
    console.print(plan.calib_note, markup=False)
    with progress_bars() as update:
        outcome = run_plan(plan, update, lambda text: console.print(text, markup=False))
    shown = [
        r for r in outcome.records if r.metric in HEADLINE and (r.cell.testset not in ("c", "p") or not r.cell.variant)
    ]
    if data_root is not None:
        print_records(shown, title=f"{DEMO_MODEL} on {data_root}")
    expected = ("only measured on CUDA", "no int8 path")
    for failure in outcome.failures:
        if not any(e in failure for e in expected):
            console.print(f"failed: {failure}", markup=False)
    if data_root is None:
        console.print(
            "(On generated images the accuracy gates are skipped and the agreement gates decide: the verdict "
            "exercises the gates, it does not judge the model. mCE here is on synthesized corruptions of generated "
            "images: it shows the pipeline, not the model's robustness.)"
        )
    console.print(f"report: {outcome.report.get('html', '')}", markup=False)
    words = ["READY", "NOT READY", "CANNOT DECIDE"][outcome.verdict]
    console.print(f"verdict: {words} (exit code of `benchbox check`: {outcome.verdict})")
    return 0

"""Lint every precision of the bundled models and two timm architectures against TensorRT 10 and 11.

    python scripts/lint_zoo.py [--models efficientnet_lite0,...] [--trt 10.16,11.5]

Artifacts are exported with INT8 calibrated on generated images (only the graphs matter here).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--models", default="efficientnet_lite0,efficientnet_lite1,efficientnet_lite2,test_resnet,test_convnext"
    )
    parser.add_argument("--trt", default="10.16,11.5")
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "benchbox-lint-zoo")
    args = parser.parse_args()
    from benchbox.build import build_artifacts
    from benchbox.datasets.synthetic import write_image_folder
    from benchbox.exporters.lint import lint_artifact
    from benchbox.options import ExportOptions, parse_options

    calib = args.work / "calib"
    if not calib.is_dir():
        write_image_folder(calib, ["n01440764", "n02085620", "n02123045", "n04037443"], per_class=16, seed=9)
    options = parse_options(
        ExportOptions,
        {"precisions": ["fp32", "fp16", "int8"], "calib_data": calib, "calib_size": 32, "calib_method": "minmax"},
        "lint zoo",
    )
    print(f"{'model':22} {'trt':6} {'file':6} errors warnings  rules")
    for name in args.models.split(","):
        artifact = build_artifacts(name, args.work / name, options)
        for version in args.trt.split(","):
            for precision, findings in lint_artifact(artifact, version, [1, 8, 32]).items():
                errors = [f for f in findings if f.severity == "error"]
                warnings = [f for f in findings if f.severity == "warning"]
                names = sorted({f.rule for f in findings})
                print(f"{name:22} {version:6} {precision:6} {len(errors):6} {len(warnings):8}  {', '.join(names)}")


if __name__ == "__main__":
    main()

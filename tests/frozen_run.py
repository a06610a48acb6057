"""Run the fixed command sequence whose records `tests/data/frozen_sample_records.json` froze (version 1).

`python tests/frozen_run.py OUT.json` writes the records of this code; `test_frozen_records.py` runs the same
steps and compares them with the frozen file. The steps use only the command line, which both versions share.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import sample_family  # noqa: E402

SETS = "val,real,v2,sketch,a,r,o,c"


def cli(*args) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "benchbox.cli", *map(str, args)],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
    )
    if proc.returncode != 0:
        raise RuntimeError(f"benchbox {' '.join(map(str, args))} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")


def run(sample_root: Path, work: Path) -> list[dict]:
    """Build the family, export with fixed calibration, evaluate; return every eval record."""
    from benchbox.datasets.synthetic import write_image_folder

    root = sample_family.build(sample_root, work / "data")
    write_image_folder(work / "calib", ["n01440764", "n02085620", "n02123045", "n04037443"], per_class=8, seed=7)
    art, store = work / "art", work / "store"
    cli(
        "export",
        "efficientnet_lite0",
        "--out",
        art,
        "--precisions",
        "fp32,fp16,int8",
        "--calib-data",
        work / "calib",
        "--calib-size",
        "32",
        "--calib-method",
        "minmax",
    )
    baseline = work / "p_baseline.json"
    baseline.write_text(
        json.dumps(
            {
                "flip_prob": {"gaussian_noise": 5.0, "translate": 10.0},
                "top5_dist": {"gaussian_noise": 1.0, "translate": 2.0},
            }
        )
    )
    records = []
    # version 1 crashed on P with several precisions (agreement on videos), so P runs at fp32 alone
    steps = (("ort", "fp32,fp16,int8", SETS), ("ort", "fp32", "p"), ("ort,torch", "fp32", "val"))
    for engines, precisions, sets in steps:
        out = work / f"{engines}-{precisions}-{sets}.json"
        cli(
            "eval",
            art,
            "--engine",
            engines,
            "--precisions",
            precisions,
            "--sets",
            sets,
            "--data-root",
            root,
            "--p-baseline",
            baseline,
            "--store",
            store,
            "--batch-size",
            "16",
            "--json",
            out,
        )
        data = json.loads(out.read_text())
        records += data["records"] + as_records(data.get("precision_cost", []))
    return records


def as_records(cost: list[dict]) -> list[dict]:
    """Version 2 wrote comparisons as eval records (agreement_top1, top1_delta, mcnemar_p against a reference);
    they are now the cost table's rows, computed from the store: the same figures under their old names."""
    out = []
    for row in cost:
        base = {
            "engine": row["engine"],
            "precision": row["precision"],
            "testset": row["set"],
            "variant": row["variant"],
            "reference": row["baseline"],
            "n": row["n"],
            "kind": row["kind"],
        }
        if row["metric"] == "agreement_top1":
            out.append({**base, "metric": "agreement_top1", "value": row["value"]})
        elif row["metric"] in ("top1",) and row["delta"] is not None and row["method"] == "paired-proportion":
            out.append({**base, "metric": "top1_delta", "value": row["delta"]})
            out.append({**base, "metric": "mcnemar_p", "value": row["p_value"]})
    return out


def main() -> None:
    from conftest import SAMPLE_ROOT

    with tempfile.TemporaryDirectory() as tmp:
        records = run(SAMPLE_ROOT, Path(tmp))
    Path(sys.argv[1]).write_text(json.dumps(records, indent=1, sort_keys=True))


if __name__ == "__main__":
    main()

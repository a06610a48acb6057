"""User mistakes exit non-zero with a message that names the fix, never a traceback."""

from __future__ import annotations

import subprocess
import sys

import pytest
from conftest import run_cli


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["export", "efficientnet_lite7", "--out", "{tmp}/x"], "Did you mean"),
        (["eval", "{tmp}/nothing"], "benchbox export MODEL"),
        (["eval", "{art}", "--sets", "imagenet-x"], "Known test sets"),
        (["eval", "{art}", "--data-root", "{tmp}/missing"], "does not exist"),
        (["eval", "{art}", "--sets", "a", "--data-root", "{tmp}"], "imagenet-a/<wnid>"),
        (["eval", "{art}", "--engine", "tvm"], "Known engines"),
        (["eval", "{art}", "--precisions", "int8"], "--calib-data"),
        (["eval", "{art}", "--engine", "trt"], "TensorRT is unavailable"),
        (["export", "test_resnet", "--out", "{tmp}/y", "--precisions", "fp32,int8"], "--calib-data DIR"),
        (["eval", "{art}", "--path", "a"], "SET=DIR"),
        (["datasets", "--data-root", "{tmp}/missing"], "does not exist"),
    ],
)
def test_user_errors(args, expected, tiny_artifact, tmp_path):
    filled = [a.format(tmp=tmp_path, art=tiny_artifact.directory) for a in args]
    proc = run_cli(*filled, cwd=tmp_path)
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert expected in output, output
    assert "Traceback" not in output


def test_wrong_layout_names_the_expected_one(tiny_artifact, tmp_path):
    (tmp_path / "val" / "not-a-class" / "deeper").mkdir(parents=True)
    proc = run_cli("eval", str(tiny_artifact.directory), "--data-root", str(tmp_path), cwd=tmp_path)
    assert proc.returncode != 0 and "Expected layout" in proc.stderr and "Traceback" not in proc.stderr


def test_help_starts_without_heavy_imports():
    code = "import sys, benchbox.cli; print(any(m in sys.modules for m in ('torch', 'onnxruntime', 'tensorrt')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "False"

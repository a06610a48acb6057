"""Shared fixtures: tiny generated models and images; the real sample data when present."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SAMPLE_ROOT = Path(os.environ.get("BENCHBOX_SAMPLE_ROOT", REPO.parent / "shared" / "data" / "imagenet-sample"))
TINY_MODEL = "test_efficientnet"


# Tests (and the CLIs they start) never read or fill the user's preprocessed-image cache.
os.environ["BENCHBOX_CACHE"] = tempfile.mkdtemp(prefix="benchbox-test-cache-")


@pytest.fixture(scope="session")
def sample_root() -> Path:
    if not (SAMPLE_ROOT / "val").is_dir():
        pytest.skip(f"real ImageNet sample not found at {SAMPLE_ROOT} (set BENCHBOX_SAMPLE_ROOT)")
    return SAMPLE_ROOT


@pytest.fixture(scope="session")
def tiny_images(tmp_path_factory) -> Path:
    """A generated val-layout folder: 4 classes x 3 images."""
    from benchbox.datasets.synthetic import write_image_folder

    root = tmp_path_factory.mktemp("tiny_images")
    write_image_folder(root / "val", ["n01440764", "n01443537", "n01484850", "n15075141"], per_class=3, seed=3)
    return root


@pytest.fixture(scope="session")
def labelled_images(tiny_images, tmp_path_factory):
    """The tiny images without the generated-images marker: scored as if their labels were real."""
    from benchbox.datasets.readers import GENERATED_MARKER

    root = tmp_path_factory.mktemp("labelled")
    shutil.copytree(tiny_images, root, dirs_exist_ok=True)
    (root / "val" / GENERATED_MARKER).unlink()
    return root


@pytest.fixture(scope="session")
def tiny_artifact(tmp_path_factory):
    """test_efficientnet (random weights, seeded) exported to FP32 ONNX."""
    from benchbox.exporters.onnx import OnnxFromTorch

    return OnnxFromTorch(TINY_MODEL, tmp_path_factory.mktemp("tiny_artifact") / "art")()


def export_options(**values):
    from benchbox.options import ExportOptions, parse_options

    return parse_options(ExportOptions, values, "a test")


def eval_options(**values):
    from benchbox.options import EvalOptions, parse_options

    return parse_options(EvalOptions, values, "a test")


@pytest.fixture(scope="session")
def tiny_full_artifact(tmp_path_factory, tiny_images):
    """test_efficientnet with fp16, int8 and int8-cpu, calibrated on generated images."""
    from benchbox.build import build_artifacts

    out = tmp_path_factory.mktemp("tiny_full") / "art"
    options = export_options(
        precisions=["fp32", "fp16", "int8"], calib_data=tiny_images / "val", calib_size=8, calib_method="minmax"
    )
    return build_artifacts(TINY_MODEL, out, options)


def evaluate(artifact, store_dir, on_progress=None, **values):
    """An eval through the library, with options parsed exactly as the CLI and plans parse them."""
    from benchbox.evaluation.evaluator import Evaluator
    from benchbox.store import ResultStore

    values.setdefault("store", store_dir)
    return Evaluator(artifact, ResultStore(store_dir), eval_options(**values), on_progress).run()


def free_port() -> int:
    """A TCP port nothing listens on now (for servers the tests start on localhost)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_cli(*args: str, cwd: Path | None = None, timeout: int = 300, env: dict | None = None):
    """`benchbox ARGS...` in a fresh interpreter, as a user would run it (wide terminal, text output)."""
    return subprocess.run(
        [sys.executable, "-m", "benchbox.cli", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
        env={**os.environ, "COLUMNS": "200", **(env or {})},
    )


def cost_rows(store_dir) -> dict:
    """The cost table of a store as report/check compute it: {(engine, precision, set, variant, metric): row}."""
    from benchbox.reports.comparison import Comparison
    from benchbox.store import ResultStore

    rows = Comparison(ResultStore(store_dir, read_only=True)).rows()
    return {(r.engine, r.precision, r.set, r.variant, r.metric): r for r in rows}


def unprivileged_dir() -> Path:
    """A fresh folder a user without privileges can traverse (pytest's tmp_path is private to root)."""
    folder = Path(tempfile.mkdtemp(prefix="benchbox-unprivileged-"))
    folder.chmod(0o755)
    return folder


def run_cli_unprivileged(*args: str, timeout: int = 300):
    """`benchbox ARGS...` as a user who cannot write what is read-only: as root (CI runs as root, and root writes
    through any permission) the command runs as `nobody`, with its privileges dropped by setpriv."""
    import shutil

    prefix: list[str] = []
    env = {**os.environ, "COLUMNS": "200", "BENCHBOX_CACHE": "off"}
    if os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("running as root without setpriv (util-linux) to drop privileges")
        prefix = [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups"]
        scratch = unprivileged_dir()
        scratch.chmod(0o777)
        env.update(HOME=str(scratch), MPLCONFIGDIR=str(scratch / "mpl"))
    return subprocess.run(
        [*prefix, sys.executable, "-m", "benchbox.cli", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


def run_inprocess(*args: str, cwd: Path | None = None):
    """`benchbox ARGS...` through the real entry point (benchbox.cli.main: its error handling, exit codes and
    messages) in this interpreter: what a user sees, without a new Python and its imports (3 s each)."""
    import contextlib
    import io

    from benchbox.cli import main

    out, err = io.StringIO(), io.StringIO()
    previous = Path.cwd()
    code = 0
    try:
        if cwd is not None:
            os.chdir(cwd)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                main([str(a) for a in args])
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        os.chdir(previous)
    return subprocess.CompletedProcess(["benchbox", *map(str, args)], code, out.getvalue(), err.getvalue())

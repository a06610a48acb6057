"""Every user mistake, bad file or store state exits with a message that names the fix, never a traceback.

The table drives the real CLI in a fresh interpreter, against the typer (and its click) that `pip install`
resolves: typer releases that vendor click raise their own exception classes, which v1 did not recognise.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time

import pytest
from conftest import run_cli, run_inprocess


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory, tiny_artifact, tiny_images):
    """Broken inputs a user can realistically hand over."""
    root = tmp_path_factory.mktemp("bad")
    (root / "file.txt").write_text("x")
    (root / "dir.json").mkdir()
    garbage = root / "garbage_store"
    garbage.mkdir()
    (garbage / "index.sqlite").write_bytes(b"this is not a database" * 100)
    truncated = root / "truncated_store"
    truncated.mkdir()
    proc = run_cli("eval", tiny_artifact.directory, "--data-root", tiny_images, "--store", truncated)
    assert proc.returncode == 0, proc.stderr
    db = truncated / "index.sqlite"
    db.write_bytes(db.read_bytes()[:300])
    old = root / "v1_store"
    old.mkdir()
    import sqlite3

    conn = sqlite3.connect(old / "index.sqlite")
    conn.execute("CREATE TABLE runs (id INTEGER PRIMARY KEY, cell_key TEXT)")
    conn.commit()
    conn.close()
    listed = root / "list_manifest"
    listed.mkdir()
    (listed / "manifest.json").write_text("[1, 2, 3]")
    (root / "p.json").write_text("{not json")
    (root / "policy.toml").write_text("[gate]\nmax_top1_drop = 1\n")
    (root / "plan.toml").write_text('[[models]]\nname = "x"\n[eval]\nlimt = 3\n')
    (root / "real.json").write_text("{}")
    v2 = root / "v2root" / "imagenetv2-matched-frequency-format-val"
    (v2 / "n01440764").mkdir(parents=True)
    return root


CASES = [
    # usage errors: click/typer parsing
    (["frobnicate"], "No such command"),
    (["eval", "{art}", "--frob"], "No such option"),
    (["eval"], "Missing argument"),
    (["eval", "{art}", "--batch-size", "abc"], "valid integer"),
    # values out of range, same checks as plans
    (["eval", "{art}", "--batch-size", "0"], "batch_size = 0"),
    (["eval", "{art}", "--limit", "0"], "limit = 0"),
    (["eval", "{art}", "--limit", "-5"], "at least 1"),
    (["eval", "{art}", "--workers", "-2"], "at least 1"),
    (["eval", "{art}", "--engine", ""], "empty item"),
    (["eval", "{art}", "--precisions", ","], "empty item"),
    (["eval", "{art}", "--precisions", "fp8"], "'fp8' is not one of"),
    (["eval", "{art}", "--engine", "tvm"], "not one of torch, ort, trt"),
    (["eval", "{art}", "--sets", "imagenet-x"], "Known test sets"),
    (["eval", "{art}", "--device", "gpu"], "expected one of cpu, cuda, tensorrt"),
    (["eval", "{art}", "--engine", "torch", "--device", "tensorrt"], "does not run on device"),
    (["bench", "{art}", "--threads", "-1"], "at least 1"),
    (["bench", "{art}", "--duration", "-3"], "greater than 0"),
    (["bench", "{art}", "--batch-sizes", "0,8"], "at least 1"),
    (
        [
            "export",
            "test_resnet",
            "--out",
            "{tmp}/y",
            "--calib-size",
            "0",
            "--precisions",
            "int8",
            "--calib-data",
            "{images}",
        ],
        "calib_size = 0",
    ),
    (["export", "test_resnet", "--out", "{tmp}/y", "--opset", "99"], "at most 23"),
    (["make-c", "{images}/val", "{tmp}/c", "--severities", "6"], "at most 5"),
    (["make-c", "{images}/val", "{tmp}/c", "--limit", "0"], "at least 1"),
    # names and files
    (["export", "efficientnet_lite7", "--out", "{tmp}/x"], "Did you mean"),
    (["export", "nosuchmod:x", "--out", "{tmp}/x"], "nosuchmod:x"),
    (["export", "test_resnet", "--out", "{bad}/file.txt"], "is an existing file"),
    (["export", "test_resnet", "--out", "{tmp}/y", "--precisions", "fp32,int8"], "--calib-data DIR"),
    (
        ["export", "test_resnet", "--out", "{tmp}/y", "--precisions", "int8", "--calib-data", "{tmp}/none"],
        "does not exist",
    ),
    (["eval", "{tmp}/nothing"], "benchbox export MODEL"),
    (["eval", "{bad}/list_manifest"], "holds a JSON list"),
    (["eval", "{art}", "--data-root", "{tmp}/missing"], "does not exist"),
    (["eval", "{art}", "--sets", "a", "--data-root", "{tmp}"], "imagenet-a/<wnid>"),
    (["eval", "{art}", "--precisions", "int8"], "--calib-data"),
    (["eval", "{art}", "--engine", "trt"], "TensorRT is unavailable"),
    (["eval", "{art}", "--path", "a"], "SET=DIR"),
    (["eval", "{art}", "--data-root", "{images}", "--json", "{bad}/dir.json"], "is a folder"),
    (["eval", "{art}", "--data-root", "{images}", "--store", "{bad}/file.txt"], "is a file, not a folder"),
    (
        ["eval", "{art}", "--data-root", "{images}", "--sets", "real", "--real-labels", "{bad}/real.json"],
        "not a list of label lists",
    ),
    (
        ["eval", "{art}", "--data-root", "{images}", "--sets", "p", "--p-baseline", "{bad}/p.json"],
        "is not valid JSON",  # the baseline is read before anything else
    ),
    (["eval", "{art}", "--data-root", "{images}", "--sets", "p"], "ImageNet-P not found"),
    (["eval", "{art}", "--sets", "v2", "--data-root", "{bad}/v2root"], "v2"),
    (["datasets", "--data-root", "{tmp}/missing"], "does not exist"),
    # store states
    (["report", "--store", "{bad}/garbage_store", "--out", "{tmp}/r"], "corrupt or not a benchbox store"),
    (["check", "--store", "{bad}/garbage_store"], "corrupt or not a benchbox store"),
    (["eval", "{art}", "--data-root", "{images}", "--store", "{bad}/garbage_store"], "Move the store aside"),
    (["report", "--store", "{bad}/truncated_store", "--out", "{tmp}/r"], "corrupt or not a benchbox store"),
    (["report", "--store", "{bad}/v1_store", "--out", "{tmp}/r"], "store schema 1"),
    (["report", "--store", "{tmp}/no_store"], "No results store"),
    # policies and plans
    (["check", "--store", "{bad}/garbage_store", "--policy", "{bad}/policy.toml"], "Did you mean 'gates'"),
    (["run", "{bad}/plan.toml"], "Did you mean 'limit'"),
    (["run", "{tmp}/no_plan.toml"], "not found"),
]


@pytest.mark.parametrize(("args", "expected"), CASES, ids=[" ".join(a[:3]) for a, _ in CASES])
def test_user_mistakes_exit_2_with_one_message(args, expected, tiny_artifact, tiny_images, bad_files, tmp_path):
    filled = [a.format(tmp=tmp_path, art=tiny_artifact.directory, images=tiny_images, bad=bad_files) for a in args]
    proc = run_inprocess(*filled, cwd=tmp_path)  # the real entry point, in-process (a few cases run as processes)
    output = proc.stdout + proc.stderr
    assert "Traceback" not in output, output
    assert proc.returncode == 2, (proc.returncode, output)
    assert expected in output, output


@pytest.mark.parametrize("args", [[], ["-h"], ["--help"], ["eval", "-h"]])
def test_help_is_shown_without_traceback(args):
    proc = run_cli(*args)
    assert "Traceback" not in proc.stdout + proc.stderr
    assert "Usage" in proc.stdout + proc.stderr and proc.returncode in (0, 2)


def test_rich_markup_never_mangles_names(tmp_path):
    proc = run_cli("export", "nosuchmod:x", "--out", tmp_path / "x")
    assert "nosuchmod:x" in proc.stderr and "❌" not in proc.stderr


def test_wrong_layout_names_the_expected_one(tiny_artifact, tmp_path):
    (tmp_path / "val" / "not-a-class" / "deeper").mkdir(parents=True)
    proc = run_cli("eval", str(tiny_artifact.directory), "--data-root", str(tmp_path), cwd=tmp_path)
    assert proc.returncode == 2 and "Expected layout" in proc.stderr and "Traceback" not in proc.stderr


def test_ctrl_c_keeps_its_interrupted_message(tiny_artifact, sample_root, tmp_path):
    """Ctrl-C mid-eval: a one-line message and exit 130 (v1 lost the message with vendored click)."""
    import os

    cache = tmp_path / "cache"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "benchbox.cli",
            "eval",
            str(tiny_artifact.directory),
            "--data-root",
            str(sample_root),
            "--store",
            str(tmp_path / "s"),
            "--batch-size",
            "4",
            "--workers",
            "1",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "BENCHBOX_CACHE": str(cache)},
    )
    deadline = time.time() + 120
    while time.time() < deadline and len(list(cache.rglob("*.rgb"))) < 20:  # decoding has started
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-2000:]
    assert "interrupted: finished work is stored" in err and "Traceback" not in err


def test_help_starts_without_heavy_imports():
    code = (
        "import sys, contextlib, io, benchbox.cli\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    try:\n        benchbox.cli.main(['--help'])\n    except SystemExit:\n        pass\n"
        "print(sorted(m for m in ('torch', 'onnxruntime', 'tensorrt', 'numpy') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr  # not even numpy: help starts in a blink


def test_disk_full_is_one_message_and_leaves_no_partial_file(tiny_artifact, tiny_images, tmp_path, monkeypatch):
    """np.savez failing with ENOSPC: a UserError naming the fix, no temporary file left behind."""
    import errno

    import numpy as np

    from benchbox.errors import UserError
    from benchbox.store import ResultStore

    store = ResultStore(tmp_path / "s")

    def full(path, **arrays):
        with open(path, "wb") as handle:
            handle.write(b"partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(np, "savez", full)
    with pytest.raises(UserError, match="No space left on device") as err:
        store.save_chunk("ab" * 8, 0, 4, {"x": np.zeros(2)})
    assert "Free some space" in str(err.value)
    assert not list((tmp_path / "s" / "predictions").rglob("*.tmp*"))


def test_copy_of_the_store_survives_a_copy_of_the_predictions(tiny_artifact, tiny_images, tmp_path):
    """An index deleted by hand is rebuilt by the next eval, reusing the predictions it finds by key."""
    store = tmp_path / "s"
    assert run_cli("eval", tiny_artifact.directory, "--data-root", tiny_images, "--store", store).returncode == 0
    shutil.move(str(store / "index.sqlite"), str(tmp_path / "old.sqlite"))
    again = run_cli("eval", tiny_artifact.directory, "--data-root", tiny_images, "--store", store)
    assert again.returncode == 0 and "top1" in again.stdout

"""eval end to end on generated images: records, corrupt files, resume after an interruption or a kill."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap

import pytest
from conftest import run_cli

from benchbox.evaluate import EvalOptions, Evaluator
from benchbox.store import ResultStore


def metrics(records):
    return {(r["engine"], r["precision"], r["testset"], r["variant"], r["metric"]): r["value"] for r in records}


def run_eval(artifact, store_dir, data_root, **kw):
    options = EvalOptions(
        engines=kw.pop("engines", ["ort"]),
        precisions=kw.pop("precisions", ["fp32"]),
        sets=["val"],
        data_root=data_root,
        batch_size=2,
        chunk_samples=2,
        **kw,
    )
    return Evaluator(artifact, ResultStore(store_dir), options).run()


def test_eval_counts_unreadable_files_and_goes_on(tiny_artifact, tiny_images, tmp_path):
    root = tmp_path / "data"
    shutil.copytree(tiny_images, root)
    (root / "val" / "n01440764" / "broken.JPEG").write_bytes(b"\xff\xd8\xff\xe0" + b"\0" * 20)
    (root / "val" / "n01443537" / "empty.jpg").write_bytes(b"")
    result = run_eval(tiny_artifact, tmp_path / "store", root)
    m = metrics(result.records)
    assert m[("ort", "fp32", "val", None, "unreadable_files")] == 2.0
    top1 = next(r for r in result.records if r["metric"] == "top1")
    assert top1["n"] == 12
    assert sorted(p.rsplit("/", 1)[1] for p, _ in result.unreadable["val"]) == ["broken.JPEG", "empty.jpg"]


def test_interrupted_eval_resumes_with_identical_records(tiny_artifact, tiny_images, tmp_path):
    reference = run_eval(tiny_artifact, tmp_path / "ref", tiny_images)
    store_dir = tmp_path / "interrupted"
    calls = {"n": 0}

    def stop_midway(label, done, total):
        calls["n"] += 1
        if done >= 6:
            raise KeyboardInterrupt

    options = EvalOptions(sets=["val"], data_root=tiny_images, batch_size=2, chunk_samples=2)
    with pytest.raises(KeyboardInterrupt):
        Evaluator(tiny_artifact, ResultStore(store_dir), options, stop_midway).run()
    store = ResultStore(store_dir)
    run = next(r for r in store.runs() if r["kind"] == "predict")
    position, chunks = store.load_chunks(run["id"])
    assert run["status"] == "running" and position == 6 and len(chunks) == 3
    seen = []
    resumed = Evaluator(tiny_artifact, store, options, lambda label, done, total: seen.append(done)).run()
    assert seen[0] == 6  # started where it stopped, not at 0
    assert metrics(resumed.records) == metrics(reference.records)


def test_killed_eval_resumes_with_identical_records(tiny_artifact, tiny_images, tmp_path):
    reference = run_eval(tiny_artifact, tmp_path / "ref", tiny_images)
    store_dir = tmp_path / "killed"
    script = textwrap.dedent(f"""
        import os, signal
        from pathlib import Path
        from benchbox.evaluate import EvalOptions, Evaluator
        from benchbox.exporters.manifest import Artifact
        from benchbox.store import ResultStore
        def progress(label, done, total):
            if done >= 8:
                os.kill(os.getpid(), signal.SIGKILL)
        options = EvalOptions(sets=["val"], data_root=Path({str(tiny_images)!r}), batch_size=2, chunk_samples=2)
        Evaluator(Artifact.load({str(tiny_artifact.directory)!r}), ResultStore({str(store_dir)!r}), options,
                  progress).run()
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=300)
    assert proc.returncode == -9, proc.stderr.decode()[-2000:]
    store = ResultStore(store_dir)
    assert store.load_chunks(next(r for r in store.runs() if r["kind"] == "predict")["id"])[0] == 8
    resumed = run_eval(tiny_artifact, store_dir, tiny_images)
    assert metrics(resumed.records) == metrics(reference.records)


def test_finished_cells_are_not_recomputed(tiny_artifact, tiny_images, tmp_path):
    first = run_eval(tiny_artifact, tmp_path / "s", tiny_images)
    seen = []
    options = EvalOptions(sets=["val"], data_root=tiny_images, batch_size=2, chunk_samples=2)
    again = Evaluator(
        tiny_artifact, ResultStore(tmp_path / "s"), options, lambda label, done, total: seen.append(done)
    ).run()
    assert seen == []  # loaded from the store
    assert metrics(again.records) == metrics(first.records)
    store = ResultStore(tmp_path / "s")
    assert {r["metric"] for r in store.records(testset="val")} >= {"top1", "top5", "ece", "nll"}


def test_engines_agree_and_records_have_the_schema(tiny_artifact, tiny_images, tmp_path):
    result = run_eval(tiny_artifact, tmp_path / "s", tiny_images, engines=["ort", "torch"])
    agreement = [r for r in result.records if r["metric"] == "agreement_top1"]
    assert agreement and agreement[0]["value"] == 100.0 and agreement[0]["reference"] == "ort/fp32"
    from benchbox.store import RECORD_FIELDS

    for record in result.records:
        assert set(RECORD_FIELDS) <= set(record)


def test_json_output_of_the_cli(tiny_artifact, tiny_images, tmp_path):
    out = tmp_path / "r.json"
    proc = run_cli(
        "eval",
        str(tiny_artifact.directory),
        "--data-root",
        str(tiny_images),
        "--store",
        str(tmp_path / "store"),
        "--json",
        str(out),
    )
    assert proc.returncode == 0, proc.stderr
    import json

    records = json.loads(out.read_text())["records"]
    assert any(r["metric"] == "top1" and r["n"] == 12 for r in records)

"""eval end to end on generated images: records, corrupt files, resume after an interruption or a kill, and
predictions bound to their cells."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap

import pytest
from conftest import cost_rows, eval_options, evaluate, run_cli

from benchbox.evaluation.evaluator import Evaluator
from benchbox.records import IDENTITY, Cell
from benchbox.store import ResultStore


def metrics(records):
    return {
        (r.cell.engine, r.cell.precision, r.cell.testset, r.cell.variant, r.metric, r.reference): r.value
        for r in records
    }


def run_eval(artifact, store_dir, data_root, **kw):
    return evaluate(artifact, store_dir, data_root=data_root, batch_size=2, chunk_samples=2, **kw)


def val_key(store_dir, engine="ort", precision="fp32"):
    store = ResultStore(store_dir)
    run = next(r for r in store.runs() if r["kind"] == "cell" and r["engine"] == engine and r["precision"] == precision)
    return store, run["cell_key"]


def test_eval_counts_unreadable_files_and_goes_on(tiny_artifact, tiny_images, tmp_path):
    root = tmp_path / "data"
    shutil.copytree(tiny_images, root)
    (root / "val" / "n01440764" / "broken.JPEG").write_bytes(b"\xff\xd8\xff\xe0" + b"\0" * 20)
    (root / "val" / "n01443537" / "empty.jpg").write_bytes(b"")
    result = run_eval(tiny_artifact, tmp_path / "store", root)
    m = metrics(result.records)
    assert m[("ort", "fp32", "val", None, "unreadable_files", None)] == 2.0
    top1 = next(r for r in result.records if r.metric == "top1")
    assert top1.n == 12
    assert sorted(p.rsplit("/", 1)[1] for p, _ in result.unreadable["val"]) == ["broken.JPEG", "empty.jpg"]


def test_interrupted_eval_resumes_with_identical_records(tiny_artifact, tiny_images, tmp_path):
    reference = run_eval(tiny_artifact, tmp_path / "ref", tiny_images)
    store_dir = tmp_path / "interrupted"

    def stop_midway(label, done, total):
        if done >= 6:
            raise KeyboardInterrupt

    options = eval_options(data_root=tiny_images, batch_size=2, chunk_samples=2, store=store_dir)
    with pytest.raises(KeyboardInterrupt):
        Evaluator(tiny_artifact, ResultStore(store_dir), options, stop_midway).run()
    store = ResultStore(store_dir)
    assert not store.runs() or all(r["status"] != "done" for r in store.runs() if r["kind"] == "cell")
    key = next(p.name for p in (store_dir / "predictions").glob("*/*"))
    position, chunks = store.chunk_files(key)
    assert position == 6 and len(chunks) == 3
    seen = []
    resumed = Evaluator(tiny_artifact, store, options, lambda label, done, total: seen.append(done)).run()
    assert seen[0] == 6  # started where it stopped, not at 0
    assert metrics(resumed.records) == metrics(reference.records)


def test_killed_eval_resumes_with_identical_records(tiny_artifact, tiny_images, tmp_path):
    reference = run_eval(tiny_artifact, tmp_path / "ref", tiny_images)
    store_dir = tmp_path / "killed"
    script = textwrap.dedent(f"""
        import os, signal, sys
        from pathlib import Path
        from benchbox.artifact import Artifact
        from benchbox.evaluation.evaluator import Evaluator
        from benchbox.options import EvalOptions, parse_options
        from benchbox.store import ResultStore
        def progress(label, done, total):
            if done >= 8:
                os.kill(os.getpid(), signal.SIGKILL)
        options = parse_options(EvalOptions, dict(data_root=Path({str(tiny_images)!r}), batch_size=2,
                                chunk_samples=2), "test")
        Evaluator(Artifact.load({str(tiny_artifact.directory)!r}), ResultStore({str(store_dir)!r}), options,
                  progress).run()
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=300)
    assert proc.returncode == -9, proc.stderr.decode()[-2000:]
    key = next(p.name for p in (store_dir / "predictions").glob("*/*"))
    assert ResultStore(store_dir).chunk_files(key)[0] == 8
    resumed = run_eval(tiny_artifact, store_dir, tiny_images)
    assert metrics(resumed.records) == metrics(reference.records)


def test_finished_cells_are_not_recomputed(tiny_artifact, tiny_images, tmp_path):
    first = run_eval(tiny_artifact, tmp_path / "s", tiny_images)
    seen = []
    again = evaluate(
        tiny_artifact,
        tmp_path / "s",
        lambda label, done, total: seen.append(done),
        data_root=tiny_images,
        batch_size=2,
        chunk_samples=2,
    )
    assert seen == []  # read from the store
    assert metrics(again.records) == metrics(first.records)
    recomputed = []
    evaluate(
        tiny_artifact,
        tmp_path / "s",
        lambda label, done, total: recomputed.append(done),
        data_root=tiny_images,
        batch_size=2,
        chunk_samples=2,
        recompute=True,
    )
    assert recomputed and recomputed[-1] == 12  # --recompute ignores the finished cell
    store = ResultStore(tmp_path / "s")
    assert {r.metric for r in store.records(testset="val")} >= {"top1", "top5", "ece", "nll"}


def test_engines_agree_and_records_have_the_schema(tiny_artifact, tiny_images, tmp_path):
    result = run_eval(tiny_artifact, tmp_path / "s", tiny_images, engines=["ort", "torch"])
    agreement = [r for r in cost_rows(tmp_path / "s").values() if r.metric == "agreement_top1"]
    assert agreement and agreement[0].value == 100.0 and agreement[0].baseline == "torch/fp32"
    assert agreement[0].kind == "engine" and agreement[0].engine == "ort"  # ONNX Runtime against the source model
    for record in result.records:
        data = record.to_json()
        assert set(IDENTITY) | {"metric", "value", "n", "ci95"} <= set(data)
        assert data["samples"] and "generated" in data["flags"]


def test_json_output_of_the_cli(tiny_artifact, tiny_images, tmp_path):
    out = tmp_path / "r.json"
    proc = run_cli(
        "eval", tiny_artifact.directory, "--data-root", tiny_images, "--store", tmp_path / "store", "--json", out
    )
    assert proc.returncode == 0, proc.stderr
    records = json.loads(out.read_text())["records"]
    assert any(r["metric"] == "top1" and r["n"] == 12 for r in records)


def test_predictions_are_bound_to_their_cell_not_to_a_run_number(tiny_artifact, tiny_images, tmp_path):
    """v1 bug: delete index.sqlite, keep predictions/, evaluate another model: it got the old model's numbers."""
    from benchbox.exporters.onnx import OnnxFromTorch

    store_dir = tmp_path / "s"
    first = run_eval(tiny_artifact, store_dir, tiny_images, keep_logits=True)
    (store_dir / "index.sqlite").unlink()
    other = OnnxFromTorch("test_resnet", tmp_path / "other")()
    second = run_eval(other, store_dir, tiny_images, keep_logits=True)
    store = ResultStore(store_dir)
    logits = store.cell_predictions(Cell("test_resnet", "ort", "cpu", "fp32", "val"))["logits"]
    import onnxruntime as ort
    from PIL import Image

    from benchbox.datasets.readers import read_image_folder
    from benchbox.datasets.transforms import EvalTransform
    from benchbox.evaluation.planning import visit_order

    samples = visit_order(read_image_folder(tiny_images / "val", "val"))  # logits are stored in visit order
    transform = EvalTransform(other.data_config)
    batch = transform.normalize_batch([transform.crop(Image.open(s.path).convert("RGB")) for s in samples.samples])
    session = ort.InferenceSession(str(other.file_for("fp32")), providers=["CPUExecutionProvider"])
    expected = session.run(None, {"input": batch})[0]
    assert abs(logits - expected).max() < 1e-4  # the second model's own outputs, not the first model's
    assert {r.cell.model for r in first.records} == {"test_efficientnet"}
    assert {r.cell.model for r in second.records} == {"test_resnet"}
    nll = [next(r.value for r in result.records if r.metric == "nll") for result in (first, second)]
    assert nll[0] != nll[1]  # two models, two sets of numbers
    # the first model's finished predictions are found again by content: nothing recomputed
    seen = []
    evaluate(
        tiny_artifact,
        store_dir,
        lambda *a: seen.append(a),
        data_root=tiny_images,
        batch_size=2,
        chunk_samples=2,
        keep_logits=True,
    )
    assert seen == []


def test_a_replaced_image_is_a_new_cell(tiny_artifact, tiny_images, tmp_path):
    """v1 bug: replacing a broken image by a good one returned the cached cell with the old unreadable file."""
    root = tmp_path / "data"
    shutil.copytree(tiny_images, root)
    broken = root / "val" / "n01440764" / "x.JPEG"
    broken.write_bytes(b"not an image")
    first = run_eval(tiny_artifact, tmp_path / "s", root)
    assert metrics(first.records)[("ort", "fp32", "val", None, "unreadable_files", None)] == 1.0
    shutil.copy(next((tiny_images / "val" / "n01440764").glob("*.JPEG")), broken)
    second = run_eval(tiny_artifact, tmp_path / "s", root)
    assert metrics(second.records)[("ort", "fp32", "val", None, "unreadable_files", None)] == 0.0
    assert next(r for r in second.records if r.metric == "top1").n == 13


def test_a_truncated_prediction_file_is_recomputed_not_misread(tiny_artifact, tiny_images, tmp_path):
    store_dir = tmp_path / "s"
    first = run_eval(tiny_artifact, store_dir, tiny_images)
    final = next((store_dir / "predictions").rglob("final.npz"))
    final.write_bytes(final.read_bytes()[:100])
    seen = []
    again = evaluate(
        tiny_artifact,
        store_dir,
        lambda label, done, total: seen.append(done),
        data_root=tiny_images,
        batch_size=2,
        chunk_samples=2,
    )
    assert seen and seen[-1] == 12
    assert metrics(again.records) == metrics(first.records)


def test_cell_keys_cover_every_identity_field(tiny_artifact, tiny_images, tmp_path):
    store = ResultStore(tmp_path / "s")
    run_eval(tiny_artifact, tmp_path / "s", tiny_images, limit=5)
    run_eval(tiny_artifact, tmp_path / "s", tiny_images)
    keys = {r["cell_key"] for r in store.runs() if r["kind"] == "cell"}
    assert len(keys) == 2  # --limit 5 is another sample set, so another cell


def test_file_names_that_are_not_utf8_end_to_end(tiny_artifact, tiny_images, tmp_path):
    """eval and make-c on a val folder holding a Latin-1 file name and an unreadable one: no crash, stored and
    printed as escapes."""
    import os

    root = tmp_path / "data"
    shutil.copytree(tiny_images, root)
    folder = root / "val" / "n01440764"
    good = next(folder.glob("*.JPEG"))
    with open(os.fsencode(folder) + b"/caf\xe9.JPEG", "wb") as handle:
        handle.write(good.read_bytes())
    with open(os.fsencode(folder) + b"/bad\xff.JPEG", "wb") as handle:
        handle.write(b"not an image")
    out = tmp_path / "r.json"
    proc = run_cli("eval", tiny_artifact.directory, "--data-root", root, "--store", tmp_path / "s", "--json", out)
    assert proc.returncode == 0, proc.stderr[-2000:]
    data = json.loads(out.read_text())
    assert any(r["metric"] == "top1" and r["n"] == 13 for r in data["records"])
    assert any("bad\\xff.JPEG" in path for path, _ in data["unreadable"]["val"])
    made = run_cli(
        "make-c", root / "val", tmp_path / "c", "--corruptions", "contrast", "--severities", "1", "--workers", "1"
    )
    assert made.returncode == 0 and "Traceback" not in made.stderr, made.stderr[-2000:]
    assert "bad\\xff.JPEG" in made.stdout

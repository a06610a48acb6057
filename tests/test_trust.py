"""The third trust pass (issue 23): each hostile-user case as a user meets it (CLI, exit code, message, number),
and the version-2 defect it found, now held."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from conftest import REPO, TINY_MODEL, run_cli, run_cli_unprivileged, unprivileged_dir

from benchbox.store import ResultStore


def cost(store_dir) -> dict:
    from benchbox.reports.comparison import Comparison

    return {
        (r.model_id, r.engine, r.precision, r.set, r.variant, r.metric): r
        for r in Comparison(ResultStore(store_dir, read_only=True)).rows()
    }


def test_a_rebuilt_file_is_compared_as_it_is_now_never_through_an_old_run(
    tiny_full_artifact, labelled_images, tmp_path
):
    """Evaluate fp32+fp16, rebuild fp16 (a broken build), evaluate fp16 alone: check used the old run's agreement."""
    art = tmp_path / "art"
    shutil.copytree(tiny_full_artifact.directory, art)
    store = tmp_path / "store"
    common = ["--data-root", labelled_images, "--store", store, "--batch-size", "4"]
    assert run_cli("eval", art, "--precisions", "fp32,fp16", *common).returncode == 0
    before = [r for r in cost(store).values() if r.metric == "agreement_top1" and r.precision == "fp16"]
    assert before[0].value == 100.0
    manifest = json.loads((art / "manifest.json").read_text())
    broken = np.random.default_rng(0)
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(art / "model.fp16.onnx"))
    for init in model.graph.initializer:  # a build that went wrong: weights scrambled
        values = numpy_helper.to_array(init)
        if values.dtype.kind == "f" and values.size > 100:
            init.CopyFrom(numpy_helper.from_array(broken.permutation(values.ravel()).reshape(values.shape), init.name))
    onnx.save(model, str(art / "model.fp16.onnx"))
    from benchbox.hashing import sha256_file

    manifest["files"]["fp16"]["sha256"] = sha256_file(art / "model.fp16.onnx")
    (art / "manifest.json").write_text(json.dumps(manifest))
    stale = run_cli("check", "--store", store)  # not re-evaluated yet: the old fp16 result is stale, not compared
    assert "stale" in stale.stdout and "rebuilt since it was scored" in stale.stdout
    assert run_cli("eval", art, "--precisions", "fp16", *common).returncode == 0
    after = [r for r in cost(store).values() if r.metric == "agreement_top1" and r.precision == "fp16"]
    assert len(after) == 1 and after[0].value < 100.0  # computed now, from the file that is there now


def test_two_onnx_files_with_one_name_are_two_models(tiny_full_artifact, tmp_path, labelled_images):
    """a/model.onnx FP32 was compared with an unrelated b/model.onnx FP16 ('drop 24.67, fail')."""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    import onnx
    from onnx import numpy_helper

    shutil.copy(tiny_full_artifact.file_for("fp32"), tmp_path / "a" / "model.onnx")
    other = onnx.load(str(tiny_full_artifact.file_for("fp32")))  # another model: the same graph, other weights
    for init in other.graph.initializer:
        values = numpy_helper.to_array(init)
        if values.dtype.kind == "f" and values.size > 100:
            init.CopyFrom(numpy_helper.from_array((values * 1.5).astype(values.dtype), init.name))
    onnx.save(other, str(tmp_path / "b" / "model.onnx"))
    store = tmp_path / "store"
    for name, precisions in (("a", "fp32"), ("b", "fp32,fp16")):
        proc = run_cli(
            "export",
            tmp_path / name / "model.onnx",
            "--config-from",
            TINY_MODEL,
            "--out",
            tmp_path / f"{name}-art",
            "--precisions",
            precisions,
        )
        assert proc.returncode == 0, proc.stderr
    assert run_cli("eval", tmp_path / "a-art", "--data-root", labelled_images, "--store", store).returncode == 0
    assert (
        run_cli(
            "eval", tmp_path / "b-art", "--precisions", "fp16", "--data-root", labelled_images, "--store", store
        ).returncode
        == 0
    )
    assert not [r for r in cost(store).values() if r.metric == "top1"]  # nothing pairs across the two models
    check = run_cli("check", "--store", store, "--json", tmp_path / "v.json")
    gates = json.loads((tmp_path / "v.json").read_text())["gates"]
    assert not [g for g in gates if g["gate"] == "max_top1_drop" and g["status"] in ("pass", "fail")], check.stdout
    ids = {g["model_id"] for g in gates if g.get("model_id")}
    assert len(ids) == 2


def test_the_same_images_typed_two_ways_pair(tiny_artifact, labelled_images, tmp_path):
    """fp32 with --data-root ../root and torch with the absolute path: 'scored on other samples'."""
    work = tmp_path / "work"
    work.mkdir()
    store = tmp_path / "store"
    relative = os.path.relpath(labelled_images, work)
    assert run_cli("eval", tiny_artifact.directory, "--data-root", relative, "--store", store, cwd=work).returncode == 0
    assert (
        run_cli(
            "eval", tiny_artifact.directory, "--engine", "torch", "--data-root", labelled_images, "--store", store
        ).returncode
        == 0
    )
    rows = [r for r in cost(store).values() if r.metric == "top1" and r.kind == "engine"]
    assert rows and all(r.paired for r in rows)


def _crash_mid_transaction(store, journal_mode: str) -> None:
    """A writer that dies after writing, uncommitted, rows that would make the verdict NOT READY."""
    code = f"""
import os, sqlite3
conn = sqlite3.connect({str(store / "index.sqlite")!r}, isolation_level=None)
conn.execute("PRAGMA journal_mode = {journal_mode}")
conn.execute("PRAGMA cache_size = 5")
conn.execute("BEGIN IMMEDIATE")
conn.execute("UPDATE records SET value = value - 76.33 WHERE metric = 'top1' AND precision = 'fp16'")
for i in range(3000):
    conn.execute("INSERT INTO records (run_id, metric, value, extra) VALUES (1, 'x', 0, ?)", (os.urandom(2000).hex(),))
os._exit(0)
"""
    subprocess.run([sys.executable, "-c", code], check=True)


def _ready_store(path):
    from stored import accurate, add_cell, cell, summary

    store = ResultStore(path)
    add_cell(store, cell("fp32", "val"), summary([3] * 2000, accurate(2000, 0)), [("top1", 100.0)])
    add_cell(store, cell("fp16", "val"), summary([3] * 2000, accurate(2000, 0)), [("top1", 100.0)])
    store.close()


def test_a_crashed_writer_is_never_read_half_done(tmp_path):
    """check opened the database immutable=1 and read the uncommitted rows (NOT READY; committed state READY)."""
    store = tmp_path / "wal"
    _ready_store(store)
    assert run_cli("check", "--store", store, "--policy", REPO / "tests" / "data" / "top1.toml").returncode == 0
    _crash_mid_transaction(store, "WAL")
    proc = run_cli("check", "--store", store, "--policy", REPO / "tests" / "data" / "top1.toml")
    assert proc.returncode == 0 and "READY" in proc.stdout, proc.stdout  # the committed state
    legacy = tmp_path / "legacy"  # a rollback-journal store (benchbox 0.2) left a hot journal
    _ready_store(legacy)
    sqlite = __import__("sqlite3").connect(legacy / "index.sqlite")
    sqlite.execute("PRAGMA journal_mode = DELETE")
    sqlite.close()
    _crash_mid_transaction(legacy, "DELETE")
    assert (legacy / "index.sqlite-journal").stat().st_size > 0
    place = unprivileged_dir()  # a user who cannot write the store: the journal cannot be rolled back by them
    shutil.copytree(legacy, place / "legacy")
    for path in [place / "legacy", *(place / "legacy").rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    refused = run_cli_unprivileged("check", "--store", place / "legacy")
    assert refused.returncode == 2, (refused.stdout[-1500:], refused.stderr[-1500:])
    assert "left mid-write" in refused.stderr and "store recover" in refused.stderr
    recovered = run_cli("store", "recover", "--store", legacy)
    assert recovered.returncode == 0, recovered.stderr
    after = run_cli("check", "--store", legacy, "--policy", REPO / "tests" / "data" / "top1.toml")
    assert after.returncode == 0 and "READY" in after.stdout
    shutil.rmtree(place, ignore_errors=True)


def test_a_model_factory_that_exits_is_a_failed_model_not_ready(tmp_path, tiny_images):
    plan = tmp_path / "plan.toml"
    plan.write_text(f'[[models]]\nname = "sys:exit"\n[eval]\nsets = "val"\ndata_root = "{tiny_images}"\n')
    proc = run_cli("run", plan, cwd=tmp_path)
    assert proc.returncode == 2, (proc.returncode, proc.stdout[-2000:], proc.stderr[-2000:])
    assert "SystemExit" in proc.stdout and "CANNOT DECIDE" in proc.stdout


def test_fp16_keeps_fp32_logits_fp32_and_lint_sees_casts(tmp_path):
    """Logits beyond 65,504: the node was kept FP32 but its output went through an FP16 cast (57 of 60 Inf)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weights = np.random.default_rng(0).normal(size=(1000, 3)).astype(np.float32) * 1e6
    graph = helper.make_graph(
        [
            helper.make_node("GlobalAveragePool", ["input"], ["gap"], name="gap"),
            helper.make_node("Flatten", ["gap"], ["flat"], name="flat"),
            helper.make_node("Gemm", ["flat", "W", "B"], ["logits"], name="gemm", transB=1),
        ],
        "big",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, 32, 32])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 1000])],
        [numpy_helper.from_array(weights, "W"), numpy_helper.from_array(np.zeros(1000, np.float32), "B")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(tmp_path / "big.onnx"))
    proc = run_cli(
        "export",
        tmp_path / "big.onnx",
        "--input-size",
        "3,32,32",
        "--mean",
        "0.5,0.5,0.5",
        "--std",
        "0.5,0.5,0.5",
        "--crop-pct",
        "1.0",
        "--interpolation",
        "bilinear",
        "--precisions",
        "fp32,fp16",
        "--out",
        tmp_path / "art",
    )
    assert proc.returncode == 0, proc.stderr
    import onnxruntime as ort

    batch = np.random.default_rng(1).normal(size=(60, 3, 32, 32)).astype(np.float32)
    logits = ort.InferenceSession(str(tmp_path / "art" / "model.fp16.onnx")).run(None, {"input": batch})[0]
    assert np.isfinite(logits).all()
    # the lint follows measured ranges through casts: an FP16 cast of a 1e6 tensor is an overflow
    from benchbox.exporters.lint import _check_fp16, _types

    fp16 = onnx.load(str(tmp_path / "art" / "model.fp16.onnx"))
    cast = helper.make_node("Cast", ["logits"], ["logits_half"], to=TensorProto.FLOAT16, name="cast_half")
    fp16.graph.node.append(cast)
    fp16.graph.output.append(helper.make_tensor_value_info("logits_half", TensorProto.FLOAT16, ["N", 1000]))
    findings = _check_fp16(fp16, _types(fp16), {"logits": 1.4e6})
    assert [f.where for f in findings if f.rule == "fp16-overflow"] == ["logits_half"]


def test_a_mistyped_batch_size_is_refused_and_failures_can_be_lifted(tiny_artifact, tmp_path):
    store = tmp_path / "store"
    proc = run_cli("bench", tiny_artifact.directory, "--batch-sizes", "1000000000", "--store", store)
    assert proc.returncode == 2 and "GiB for its input alone" in proc.stderr and "Traceback" not in proc.stderr
    from benchbox.records import Record, failure_record

    opened = ResultStore(store)
    cell = tiny_artifact.cell("ort", "cpu", "fp32")
    failure = Record(**{**failure_record(cell, "MemoryError").__dict__, "batch_size": 64})
    opened.fail_run(
        opened.start_run("failed-64", "latency", cell, batch_size=64, mode="end-to-end"), "MemoryError", [failure]
    )
    opened.close()
    assert "no_failed_cells" in run_cli("check", "--store", store).stdout
    listed = run_cli("store", "list", "--store", store)
    assert "failed" in listed.stdout and listed.returncode == 0
    forgot = run_cli("store", "forget", "--failed", "--why", "mistyped batch", "--store", store)
    assert forgot.returncode == 0 and "1 run(s) forgotten" in forgot.stdout
    assert "no_failed_cells" not in run_cli("check", "--store", store).stdout
    assert "mistyped batch" in run_cli("store", "list", "--all", "--store", store).stdout  # kept, with why


@pytest.mark.parametrize(
    ("where", "text", "expected"),
    [
        ("plan", "[eval]\nbatch_size = 1e400\n", "expected a finite number"),
        ("plan", "[bench]\nbatch_sizes = [inf]\n", "expected a finite number"),
        ("policy", "[gates]\nmax_trt_lint_errors = inf\n", "expected a finite number"),
        ("baseline", '{"flip_prob": {"translate": "ten"}}', "is not a number"),
        ("baseline", '{"flip_prob": {"translate": -87.5}}', "must be greater than 0"),
        ("baseline", '{"flip_prob": {"tranlsate": 3.0}}', "not an ImageNet-P perturbation"),
    ],
)
def test_bad_numbers_are_one_line_before_any_work(where, text, expected, tmp_path, tiny_artifact, tiny_images):
    if where == "plan":
        (tmp_path / "plan.toml").write_text('[[models]]\nname = "x"\n' + text)
        proc = run_cli("run", tmp_path / "plan.toml")
    elif where == "policy":
        (tmp_path / "p.toml").write_text(text)
        proc = run_cli("check", "--policy", tmp_path / "p.toml", "--store", tmp_path)
    else:
        (tmp_path / "b.json").write_text(text)
        proc = run_cli(
            "eval",
            tiny_artifact.directory,
            "--sets",
            "val,p",
            "--path",
            f"p={tmp_path}",
            "--data-root",
            tiny_images,
            "--p-baseline",
            tmp_path / "b.json",
            "--store",
            tmp_path / "s",
        )
    assert proc.returncode == 2, (proc.stdout[-1000:], proc.stderr[-1000:])
    assert expected in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "s").exists()  # refused before any work


def test_small_wrong_numbers(tiny_full_artifact, labelled_images, tmp_path):
    from PIL import Image

    # a ReaL file numbered 0 is not keyed to the last list
    val = tmp_path / "data" / "val" / "n01440764"
    val.mkdir(parents=True)
    source = next((labelled_images / "val").rglob("*.JPEG"))
    for number in (0, 2, 3):  # (val 1 has an empty ReaL list)
        shutil.copy(source, val / f"ILSVRC2012_val_{number:08d}.JPEG")
    proc = run_cli(
        "eval",
        tiny_full_artifact.directory,
        "--sets",
        "val,real",
        "--data-root",
        tmp_path / "data",
        "--store",
        tmp_path / "s",
        "--json",
        tmp_path / "r.json",
    )
    assert proc.returncode == 0, proc.stderr
    real = next(r for r in json.loads((tmp_path / "r.json").read_text())["records"] if r["metric"] == "real_top1")
    assert real["n"] == 2 and "1 val images are not named" in proc.stdout
    # export says how many calibration images it really used, and names the unreadable ones
    calib = tmp_path / "calib" / "n01440764"
    calib.mkdir(parents=True)
    for i, path in enumerate(sorted((labelled_images / "val").rglob("*.JPEG"))[:5]):
        shutil.copy(path, calib / f"good{i}.JPEG")
    for i in range(6):
        (calib / f"bad{i}.JPEG").write_bytes(b"not a jpeg")
    proc = run_cli(
        "export",
        TINY_MODEL,
        "--out",
        tmp_path / "art",
        "--precisions",
        "fp32,int8",
        "--calib-data",
        tmp_path / "calib",
        "--calib-size",
        "11",
        "--calib-method",
        "minmax",
    )
    assert proc.returncode == 0, proc.stderr
    assert "calibrated on 5 of 11 images (6 unreadable, skipped:" in proc.stderr and "bad" in proc.stderr
    # make-c into the val folder it reads would mark the real images as synthesized
    proc = run_cli("make-c", labelled_images / "val", labelled_images / "val")
    assert proc.returncode == 2 and "overlaps the val folder" in proc.stderr
    # a file larger than the per-image cap is a counted "too large" skip, not a whole read
    big = tmp_path / "big" / "val" / "n01440764"
    big.mkdir(parents=True)
    shutil.copy(source, big / "ok.JPEG")
    noise = np.random.default_rng(0).integers(0, 255, (400, 400, 3), dtype=np.uint8)
    Image.fromarray(noise).save(big / "huge.png")  # ~0.5 MB of noise: over a 0.1 MB cap
    proc = run_cli(
        "eval",
        tiny_full_artifact.directory,
        "--data-root",
        tmp_path / "big",
        "--max-image-mb",
        "0.1",
        "--store",
        tmp_path / "s2",
    )
    assert proc.returncode == 0 and "too large" in proc.stdout and "huge.png" in proc.stdout


def test_a_same_size_same_time_replacement_needs_rehash(tiny_artifact, labelled_images, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(labelled_images, data)
    store = tmp_path / "s"
    files = sorted((data / "val").rglob("*.JPEG"))
    run = ["eval", tiny_artifact.directory, "--data-root", data, "--store", store, "--json", tmp_path / "r.json"]
    assert run_cli(*run).returncode == 0
    first = json.loads((tmp_path / "r.json").read_text())["records"]
    stat = files[0].stat()
    other = Image_bytes_of_same_size(files[1], stat.st_size)
    files[0].write_bytes(other)
    os.utime(files[0], ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert run_cli(*run).returncode == 0
    assert json.loads((tmp_path / "r.json").read_text())["records"][0]["samples"] == first[0]["samples"]  # reused
    assert run_cli(*run, "--rehash").returncode == 0
    rehashed = json.loads((tmp_path / "r.json").read_text())["records"]
    assert rehashed[0]["samples"] != first[0]["samples"]  # keyed by content: the new image is scored


def Image_bytes_of_same_size(path, size: int) -> bytes:
    """Another image's bytes, padded or cut to `size` (JPEG decoders ignore bytes after the end marker)."""
    data = path.read_bytes()
    return data[:size] if len(data) >= size else data + b"\0" * (size - len(data))


def test_silent_ignores_are_reported(tiny_artifact, labelled_images, tmp_path):
    c = tmp_path / "imagenet-c"
    for folder in ("fog/1", "fog/6", "not_a_corruption/1"):
        target = c / folder / "n01440764"
        target.mkdir(parents=True)
        shutil.copy(next((labelled_images / "val").rglob("*.JPEG")), target / "a.JPEG")
    (tmp_path / "val").symlink_to(labelled_images / "val")
    proc = run_cli(
        "eval", tiny_artifact.directory, "--sets", "val,c", "--data-root", tmp_path, "--store", tmp_path / "s"
    )
    assert proc.returncode == 0, proc.stderr
    assert (
        "'not_a_corruption' is not an ImageNet-C corruption" in proc.stdout and "fog/6: not a severity" in proc.stdout
    )
    survey = run_cli("datasets", "--data-root", tmp_path)
    assert "not_a_corruption" in survey.stdout and "fog/6" in survey.stdout
    twice = run_cli(
        "eval", tiny_artifact.directory, "--path", f"val={labelled_images / 'val'}", "--path", f"val={tmp_path}"
    )
    assert twice.returncode == 2 and "given twice" in twice.stderr
    threads = run_cli(
        "eval", tiny_artifact.directory, "--data-root", labelled_images, "--threads", "512", "--store", tmp_path / "s3"
    )
    assert threads.returncode == 0 and "more than this machine's" in threads.stdout


def test_a_refused_onnx_file_leaves_nothing_and_pipes_stay_in_their_cell(tmp_path, tiny_artifact, labelled_images):
    import onnx

    model = onnx.load(str(tiny_artifact.file_for("fp32")))
    model.graph.input[0].type.tensor_type.shape.dim[0].dim_value = 4  # a fixed batch: refused
    onnx.save(model, str(tmp_path / "fixed.onnx"))
    proc = run_cli("export", tmp_path / "fixed.onnx", "--config-from", TINY_MODEL, "--out", tmp_path / "art")
    assert proc.returncode == 2
    assert not list((tmp_path / "art").glob("*.tmp")) if (tmp_path / "art").exists() else True
    # a model whose name has a pipe keeps report.md's tables whole
    art = tmp_path / "piped"
    shutil.copytree(tiny_artifact.directory, art)
    manifest = json.loads((art / "manifest.json").read_text())
    manifest["model"] = "net|v2"
    (art / "manifest.json").write_text(json.dumps(manifest))
    assert run_cli("eval", art, "--data-root", labelled_images, "--store", tmp_path / "s").returncode == 0
    assert run_cli("report", "--store", tmp_path / "s", "--out", tmp_path / "r").returncode == 0
    lines = [line for line in (tmp_path / "r" / "report.md").read_text().splitlines() if "net" in line and "|" in line]
    header_cells = None
    for line in (tmp_path / "r" / "report.md").read_text().splitlines():
        if line.startswith("| set | net"):
            header_cells = line.count(" | ")
    assert lines and all("net\\|v2" in line for line in lines)
    assert header_cells is None or header_cells > 0


def test_decoder_warnings_name_their_file(tiny_artifact, tmp_path):
    from PIL import Image

    folder = tmp_path / "val" / "n01440764"
    folder.mkdir(parents=True)
    Image.new("L", (9500, 9500), 128).save(folder / "bomb.png")  # over PIL's pixel limit: a warning, not an error
    proc = run_cli("eval", tiny_artifact.directory, "--data-root", tmp_path, "--store", tmp_path / "s", "--no-cache")
    assert proc.returncode == 0, proc.stderr
    assert "DecompressionBombWarning" not in proc.stderr  # not raw on stderr
    assert "bomb.png" in proc.stdout and "decoded with a warning" in proc.stdout

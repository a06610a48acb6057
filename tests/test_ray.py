"""The Ray executor: the sample plan on a local two-CPU cluster gives exactly the local records, also with a
worker killed mid-run, and a store resumes across local and cluster runs. Unit-level checks need no cluster."""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO, free_port, run_cli

from benchbox.store import ResultStore

EVAL_KINDS = ("cell", "set", "agreement", "artifact")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A Ray head on 127.0.0.1 with 2 CPUs and no dashboard, token-authenticated; yields (address, env)."""
    pytest.importorskip("ray", reason='Ray is not installed (pip install -e ".[ray]")')
    ray_cli = Path(sys.executable).with_name("ray")
    port = free_port()
    env = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(16), "RAY_USAGE_STATS_ENABLED": "0"}
    full = {**os.environ, **env}
    start = [
        str(ray_cli),
        "start",
        "--head",
        "--node-ip-address",
        "127.0.0.1",
        "--port",
        str(port),
        "--num-cpus",
        "2",
        "--include-dashboard",
        "false",
        "--disable-usage-stats",
        "--resources",
        '{"box": 2}',  # a custom resource, as a GPU type would be on a real cluster
    ]
    started = subprocess.run(start, env=full, capture_output=True, text=True, timeout=180)
    if started.returncode != 0:
        pytest.fail(f"ray start failed: {started.stdout}\n{started.stderr}")
    try:
        yield f"127.0.0.1:{port}", env
    finally:
        subprocess.run([str(ray_cli), "stop", "--force"], env=full, capture_output=True, timeout=120)


def _plan(folder: Path, sample_root: Path, shard_size: int = 64, ray: str = "", bench: bool = True) -> Path:
    """examples/plan-sample.toml as it ships, reading the sample from where the tests find it, judged by a
    top-1-only policy."""
    folder.mkdir(parents=True, exist_ok=True)
    text = (REPO / "examples" / "plan-sample.toml").read_text()
    if not bench:
        text = text[: text.index("[bench]")]
    text = text.replace('"../../shared/data/imagenet-sample"', repr(str(sample_root)).replace("'", '"'))
    assert str(sample_root) in text
    # These tests compare records, not speed: no latency limit, which the machine's load could break.
    (folder / "policy.toml").write_text("[gates]\nmax_top1_drop = 1.0\n")
    path = folder / "plan-sample.toml"
    path.write_text(text + f'\n[check]\npolicy = "policy.toml"\n\n[ray]\nshard_size = {shard_size}\n{ray}')
    return path


@pytest.fixture(scope="module")
def local_run(tmp_path_factory, sample_root):
    """The sample plan run by the local executor (the reference), and its output folder."""
    plan = _plan(tmp_path_factory.mktemp("local"), sample_root)
    result = run_cli("run", plan, cwd=plan.parent, timeout=900)
    assert result.returncode == 0, result.stdout + result.stderr
    return plan.parent / "benchbox-run-sample"


def eval_records(store_dir: Path, device: str = "cpu") -> dict:
    """Every eval-side record on `device`, keyed by identity, metric and reference (latency differs run to run);
    the device is left out of the record so records of two targets compare."""
    store = ResultStore(store_dir, read_only=True)
    kinds = {run["id"]: run["kind"] for run in store.runs()}
    out = {}
    for run_id, kind in kinds.items():
        if kind not in EVAL_KINDS:
            continue
        for record in store.records_for_run(run_id):
            data = record.to_json()
            if data.pop("device") != device and record.cell.engine != "export":
                continue
            out[
                (
                    tuple(getattr(record.cell, k) for k in ("engine", "precision", "testset", "variant")),
                    data["metric"],
                    record.reference,
                )
            ] = data
    return out


def _cluster_run(plan: Path, local_out: Path, cluster, kill: bool = False):
    """The same plan on the cluster, in a fresh output folder that reuses the local export (exports once)."""
    address, env = cluster
    out = plan.parent / "benchbox-run-sample"
    shutil.copytree(local_out / "artifacts", out / "artifacts")
    killed: list[int] = []
    stop = threading.Event()

    def kill_one_worker() -> None:
        while not stop.is_set() and not killed:
            for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
                try:
                    if cmdline.read_bytes().startswith(b"ray::run_unit"):
                        pid = int(cmdline.parent.name)
                        os.kill(pid, signal.SIGKILL)
                        killed.append(pid)
                        return
                except (OSError, ValueError):
                    continue
            time.sleep(0.05)

    killer = threading.Thread(target=kill_one_worker, daemon=True)
    if kill:
        killer.start()
    result = run_cli("run", plan, "--ray", address, cwd=plan.parent, timeout=900, env=env)
    stop.set()
    return result, out, killed


def test_cluster_run_gives_the_local_records_with_a_worker_killed_mid_run(tmp_path, sample_root, local_run, cluster):
    """One cluster run (a run costs a minute here): a worker SIGKILLed mid-unit is retried by Ray, and the records
    are still exactly the local executor's."""
    plan = _plan(tmp_path / "ray", sample_root)
    result, out, killed = _cluster_run(plan, local_run, cluster, kill=True)
    output = result.stdout + result.stderr
    assert killed, "no worker was running a unit to kill"
    assert result.returncode == 0, output
    assert "ray: 15/15 units" in output  # 3 cells x 300 images in shards of 64
    local, remote = eval_records(local_run / "store"), eval_records(out / "store")
    assert len(local) > 20 and remote == local
    store = ResultStore(out / "store", read_only=True)
    cells = [run for run in store.runs() if run["kind"] == "cell" and run["status"] == "done"]
    workers = [w for run in cells for w in run["info"]["ray"]["workers"]]
    assert workers and all(w["env_id"] and w["host"] and w["env"]["versions"] for w in workers)
    latency = [run for run in store.runs() if run["kind"] == "latency" and run["status"] == "done"]
    assert len(latency) == 6  # 2 precisions x 3 batch sizes, measured on a worker and merged by the driver


def test_a_local_store_resumes_on_the_cluster_without_redoing_units(tmp_path, sample_root, local_run, cluster):
    plan = _plan(tmp_path / "resume", sample_root)
    shutil.copytree(local_run, plan.parent / "benchbox-run-sample")
    before = eval_records(local_run / "store")
    address, env = cluster
    result = run_cli("run", plan, "--ray", address, cwd=plan.parent, timeout=900, env=env)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "cluster units" not in output and "ray: " not in output  # nothing was submitted
    assert eval_records(plan.parent / "benchbox-run-sample" / "store") == before


def test_a_named_target_runs_the_cells_as_their_own_device(tmp_path, sample_root, local_run, cluster):
    """[ray.targets.box] with a custom resource: the cells run where `box` is, recorded as device cpu@box."""
    target = '[ray.targets.box]\ndevice = "cpu"\nresources = { box = 1 }\n'
    plan = _plan(tmp_path / "target", sample_root, ray=target, bench=False)
    result, out, _ = _cluster_run(plan, local_run, cluster)
    assert result.returncode == 0, result.stdout + result.stderr
    assert eval_records(out / "store", "cpu@box") == eval_records(local_run / "store")
    assert all(key[0][0] == "export" for key in eval_records(out / "store", "cpu"))  # no plain-cpu cells


# -- without a cluster ---------------------------------------------------------------------------------
def test_targets_become_devices_and_resource_requests():
    from benchbox.distributed.settings import ray_settings

    table = {
        "targets": {
            "cuda": {"num_cpus": 4},
            "a100": {"device": "cuda", "resources": {"A100": 1}},
            "h100": {"device": "cuda", "num_gpus": 0.5, "resources": {"H100": 1}},
        }
    }
    settings = ray_settings(table, "plan.toml", "auto")
    assert settings.devices("cuda") == ["cuda@a100", "cuda@h100"] and settings.devices("cpu") == ["cpu"]
    assert settings.resources("cuda@a100") == {"num_cpus": 1.0, "num_gpus": 1, "resources": {"A100": 1}}
    assert settings.resources("cuda@h100") == {"num_cpus": 1.0, "num_gpus": 0.5, "resources": {"H100": 1}}
    assert settings.resources("cuda") == {"num_cpus": 4, "num_gpus": 1}
    assert settings.resources("cpu") == {"num_cpus": 1.0}
    assert ray_settings(table, "plan.toml") is None  # no address: the plan runs locally


def test_a_node_that_cannot_see_the_data_fails_its_unit_naming_path_and_node(tmp_path):
    from benchbox.datasets.readers import Sample, SampleSet
    from benchbox.distributed.ray import run_unit
    from benchbox.records import SetKey

    missing = tmp_path / "data" / "val" / "n01440764" / "a.JPEG"
    samples = SampleSet(SetKey("val"), tmp_path / "data" / "val", [Sample(str(missing), 0, "a.JPEG")], "wnid-folders")
    result = run_unit({"start": 0, "stop": 1}, samples, {})
    assert str(missing) in result["error"] and socket.gethostname() in result["error"]


class _FakeRay:
    """Enough of ray for the driver's merge: refs are the results themselves; one ref is a dead worker."""

    class exceptions:  # noqa: N801 - mirrors ray.exceptions
        class RayError(Exception):
            pass

    def __init__(self):
        self.cancelled = []

    def get(self, ref):
        if ref == "dead":
            raise self.exceptions.RayError("The worker died unexpectedly while executing this task.")
        return ref

    def cancel(self, ref, force=False):
        self.cancelled.append(ref)


def test_the_driver_merges_shards_in_order_and_fails_a_cell_whose_unit_keeps_dying(tmp_path):
    from benchbox.datasets.readers import Sample, SampleSet
    from benchbox.distributed.ray import RayExecutor, RaySettings, _Shard
    from benchbox.evaluation.predict import CellJob
    from benchbox.evaluation.summaries import empty, summarize
    from benchbox.records import Cell, SetKey

    samples = SampleSet(
        SetKey("val"), tmp_path, [Sample(str(tmp_path / f"{i}.png"), i % 3, f"{i}.png") for i in range(6)], "x"
    )
    logits = np.random.default_rng(0).normal(size=(6, 1000)).astype(np.float32)
    labels = np.array([s.label for s in samples.samples])

    def chunk(start, stop):
        index = np.arange(start, stop)
        return {
            "arrays": {
                "summary": summarize(logits[start:stop], index, labels[index], ()),
                "bad_index": np.zeros(0, np.int64),
                "bad_error": np.asarray("[]"),
            },
            "worker": {"host": "node-a", "env_id": "e1"},
            "seconds": 0.25,
        }

    executor = RayExecutor.__new__(RayExecutor)
    executor.ray, executor.settings, executor.on_progress = _FakeRay(), RaySettings("auto", max_retries=2), None
    executor.units_total, executor.units_done, executor.images = 4, 0, 0
    good = CellJob(Cell("m", "ort", "cpu", "fp32", "val"), "k" * 16, lambda: None)
    bad = CellJob(Cell("m", "ort", "cpu", "fp16", "val"), "j" * 16, lambda: None)
    executor._shards = {
        good.key: [_Shard(0, 4, chunk(0, 4)), _Shard(4, 6, chunk(4, 6))],
        bad.key: [_Shard(0, 4, "dead"), _Shard(4, 6, chunk(4, 6))],
    }
    store = ResultStore(tmp_path / "store")
    executor.collect(store, [good, bad], samples, None)
    assert good.error is None and good.info["ray"]["workers"] == [{"host": "node-a", "env_id": "e1"}]
    assert good.info["ray"]["unit_seconds"] == 0.5  # both units' worker time
    expected = summarize(logits, np.arange(6), labels, ())
    assert np.array_equal(good.result.summary, expected) and empty(()).dtype == expected.dtype
    assert "samples 0-4 failed on the cluster 3 times" in str(bad.error) and "worker died" in str(bad.error)
    assert bad.result is None and executor.ray.cancelled  # its other unit is not waited for


def test_ctrl_c_on_the_driver_leaves_a_store_the_next_run_finishes(tmp_path, sample_root, local_run, cluster):
    plan = _plan(tmp_path / "interrupted", sample_root)
    out = plan.parent / "benchbox-run-sample"
    shutil.copytree(local_run / "artifacts", out / "artifacts")
    address, env = cluster
    driver = subprocess.Popen(
        [sys.executable, "-m", "benchbox.cli", "run", str(plan), "--ray", address],
        cwd=plan.parent,
        env={**os.environ, "COLUMNS": "200", **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.monotonic() + 600
    while len(list(out.glob("store/predictions/*/*/chunk_*.npz"))) < 2 and time.monotonic() < deadline:
        assert driver.poll() is None, driver.stdout.read()
        time.sleep(0.05)
    driver.send_signal(signal.SIGINT)
    output = driver.communicate(timeout=300)[0]
    assert driver.returncode == 130, output
    assert "run the same command again to resume" in output and "Traceback" not in output
    again = run_cli("run", plan, "--ray", address, cwd=plan.parent, timeout=900, env=env)
    assert again.returncode == 0, again.stdout + again.stderr
    done = int(again.stdout.split("ray: ")[1].split("/")[0])
    assert done < 15  # the shards stored before the interrupt were not run again
    assert eval_records(out / "store") == eval_records(local_run / "store")


def test_an_address_where_no_cluster_listens_is_one_line_at_once(tmp_path):
    pytest.importorskip("ray", reason='Ray is not installed (pip install -e ".[ray]")')
    plan = tmp_path / "plan.toml"
    plan.write_text('[[models]]\nname = "test_efficientnet"\n[eval]\ndata_root = "data"\n')
    (tmp_path / "data").mkdir()
    for address, expected in ((f"127.0.0.1:{free_port()}", "No Ray cluster answers"), ("head", "not auto, local")):
        result = run_cli("run", plan, "--ray", address, cwd=tmp_path, timeout=120)
        output = result.stdout + result.stderr
        assert result.returncode == 2 and expected in output and "Traceback" not in output, output

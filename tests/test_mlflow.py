"""--mlflow against a real tracking server (`mlflow server`, SQLite backend, on a free local port): a small plan
logs one run per cell under the plan's run, with every metric, the verdict tag and the report as an artifact;
running the plan again adds no run and no metric point; an unreachable server is one line, not a traceback."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from conftest import free_port, run_inprocess

pytest.importorskip("mlflow")

PLAN = """
[output]
dir = "out"
[[models]]
name = "test_efficientnet"
[export]
precisions = ["fp32", "fp16"]
[eval]
engines = ["ort"]
precisions = ["fp32", "fp16"]
sets = "val"
data_root = "{data}"
[tracking]
mlflow = "{uri}"
"""


@pytest.fixture(scope="module")
def tracking_server(tmp_path_factory):
    folder = tmp_path_factory.mktemp("mlflow")
    port = free_port()
    mlflow = shutil.which("mlflow", path=str(Path(sys.executable).parent)) or "mlflow"
    server = subprocess.Popen(
        [mlflow, "server", "--backend-store-uri", f"sqlite:///{folder / 'db.sqlite'}", "--artifacts-destination",
         str(folder / "artifacts"), "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    uri = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{uri}/health", timeout=2) as answer:
                if answer.status == 200:
                    break
        except OSError:
            time.sleep(1)
    else:
        server.kill()
        pytest.fail("the MLflow server did not start within 180 s")
    yield uri
    server.terminate()
    server.wait(timeout=30)


def test_a_plan_logs_every_cell_once_with_metrics_verdict_and_report(tmp_path, tracking_server, labelled_images):
    from mlflow.tracking import MlflowClient

    plan = tmp_path / "plan.toml"
    plan.write_text(PLAN.format(data=labelled_images, uri=tracking_server))
    first = run_inprocess("run", plan, cwd=tmp_path)
    assert first.returncode in (0, 1, 2) and "mlflow: 2 run(s)" in first.stdout, first.stdout + first.stderr
    client = MlflowClient(tracking_server)
    experiment = client.get_experiment_by_name("benchbox")
    runs = client.search_runs([experiment.experiment_id])
    children = {r.data.params.get("precision"): r for r in runs if "mlflow.parentRunId" in r.data.tags}
    (parent,) = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    assert set(children) == {"fp32", "fp16"}
    verdict = parent.data.tags["benchbox.verdict"]
    assert verdict in ("ready", "not-ready", "cannot-decide")
    for precision, run in children.items():
        assert run.data.tags["mlflow.parentRunId"] == parent.info.run_id
        assert run.data.params["engine"] == "ort" and run.data.params["model"] == "test_efficientnet"
        assert len(run.data.params["model_id"]) >= 12 and "version.onnxruntime" in run.data.params
        for metric in ("val/top1", "val/top5", "val/ece", "val/nll", "val/nonfinite_outputs"):
            assert metric in run.data.metrics, (precision, sorted(run.data.metrics))
        assert run.data.tags["benchbox.verdict"] == verdict
    listed = {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert {"check.json", "report"} <= listed
    report = {a.path for a in client.list_artifacts(parent.info.run_id, "report")}
    assert "report/report.html" in report and "report/results.csv" in report
    # the same plan again: everything resumes from the store, MLflow gets no new run and no new metric point
    again = run_inprocess("run", plan, cwd=tmp_path)
    assert "0 new metric(s)" in again.stdout, again.stdout + again.stderr
    assert len(client.search_runs([experiment.experiment_id])) == len(runs)
    run = children["fp16"]
    assert len(client.get_metric_history(run.info.run_id, "val/top1")) == 1


def test_an_unreachable_server_is_one_line_and_quick(tmp_path):
    from benchbox.errors import UserError
    from benchbox.tracking import log_store

    started = time.monotonic()
    with pytest.raises(UserError, match="could not be reached"):
        log_store(f"http://127.0.0.1:{free_port()}", tmp_path / "store")
    assert time.monotonic() - started < 60

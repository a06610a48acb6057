"""MLflow tracking (`--mlflow URI`, plan `[tracking] mlflow = "URI"`; extra `[mlflow]`): what the store holds,
as MLflow runs a team's experiment tracker already shows.

One MLflow run per model x engine x device x precision (params: model, its source hash, engine, precision, device,
benchbox/ONNX Runtime/Python versions; metrics: every record with a number, named `SET[/VARIANT]/METRIC` as in
results.csv, bench figures with `:bsN`; tag `benchbox.verdict`), all under one parent run per store (a plan's
runs nested under the plan's run), with the report folder and the check JSON as the parent's artifacts.
Idempotent: each run is found again by its `benchbox.key` tag, and only metrics that are new or changed are
logged, so a resumed or repeated eval adds no run and no metric point.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path
from typing import Any

from benchbox.errors import UserError, printable

EXPERIMENT = "benchbox"
KEY_TAG = "benchbox.key"


def _client(uri: str):
    import os

    # a server that is down is said at once, not after MLflow's default minutes of retries
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "30")
    try:
        from mlflow.tracking import MlflowClient
    except ImportError as exc:
        raise UserError(
            "--mlflow needs the MLflow client library.", 'Install it with: pip install -e ".[mlflow]"'
        ) from exc
    return MlflowClient(tracking_uri=uri)


def _run(client, experiment_id: str, key: str, name: str, parent: str | None, tags: dict[str, str]):
    """The MLflow run tagged with `key`, created once."""
    found = client.search_runs([experiment_id], filter_string=f"tags.`{KEY_TAG}` = '{key}'", max_results=1)
    if found:
        return found[0]
    all_tags = {KEY_TAG: key, "mlflow.runName": name, **tags}
    if parent:
        all_tags["mlflow.parentRunId"] = parent
    return client.create_run(experiment_id, tags=all_tags, run_name=name)


def metric_name(record) -> str:
    """`SET[/VARIANT]/METRIC` (results.csv's set, variant and metric columns), `:bsN` for a batch size."""
    cell = record.cell
    name = "/".join(str(x) for x in (cell.testset, cell.variant, record.metric) if x)
    if record.batch_size:
        name += f":bs{record.batch_size}"
    if record.mode:
        name += f":{record.mode}"
    return name.replace("@", "_")


def _versions() -> dict[str, str]:
    import platform
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for package in ("benchbox", "onnxruntime", "onnx", "torch", "timm", "tensorrt"):
        try:
            out[f"version.{package}"] = version(package)
        except PackageNotFoundError:
            continue
    return out


def log_store(
    uri: str,
    store_dir: Path,
    policy: Path | None = None,
    report_dir: Path | None = None,
    parent_name: str | None = None,
) -> dict[str, Any]:
    """Log the store's current results to the tracking server at `uri`; returns what was logged (run ids, how
    many metrics were new) so a caller can say it."""
    from mlflow.entities import Metric, Param, RunTag

    from benchbox.reports.check import check_store
    from benchbox.reports.comparison import current_cells
    from benchbox.store import ResultStore

    client = _client(uri)
    try:
        experiment = client.get_experiment_by_name(EXPERIMENT)
        experiment_id = experiment.experiment_id if experiment else client.create_experiment(EXPERIMENT)
    except Exception as exc:  # the server is down, refuses, or the URI is wrong: one line, the results stay
        raise UserError(f"MLflow at {uri} could not be reached: {exc}".splitlines()[0]) from exc
    store = ResultStore(store_dir, read_only=True)
    records = store.records(exclude=current_cells(store).stale_runs)
    result = check_store(store_dir, policy)
    verdict = result.verdict.value
    where = str(Path(store_dir).resolve())
    parent = _run(
        client,
        experiment_id,
        f"store:{where}" + (f":{parent_name}" if parent_name else ""),
        parent_name or f"benchbox {printable(store_dir)}",
        None,
        {"benchbox.store": where},
    )
    client.set_tag(parent.info.run_id, "benchbox.verdict", verdict)
    groups: dict[tuple, list] = {}
    for record in records:
        scored = record.cell.testset is not None  # an eval figure; bench figures carry their batch size
        benched = record.batch_size is not None and not record.metric.startswith("lint")
        if record.value is None or record.cell.engine == "export" or not (scored or benched):
            continue  # export parity and lint describe files, not an engine's run
        cell = record.cell
        groups.setdefault((cell.model, cell.model_id, cell.engine, cell.device, cell.precision), []).append(record)
    logged: dict[str, Any] = {"parent": parent.info.run_id, "runs": {}, "new_metrics": 0}
    for (model, model_id, engine, device, precision), mine in sorted(groups.items(), key=lambda g: str(g[0])):
        key = f"{where}|{model}|{model_id}|{engine}|{device}|{precision}"
        run = _run(client, experiment_id, key, f"{model} {engine}/{precision}", parent.info.run_id, {})
        run_id = run.info.run_id
        have = dict(run.data.metrics)
        params = {"model": model, "model_id": str(model_id), "engine": engine, "device": device}
        params |= {"precision": precision, **_versions()}
        new_params = [Param(k, str(v)) for k, v in params.items() if k not in run.data.params]
        metrics = {}
        for record in mine:
            metrics[metric_name(record)] = float(record.value)
        now = int(time.time() * 1000)
        changed = [Metric(k, v, now, 0) for k, v in sorted(metrics.items()) if have.get(k) != v]
        tags = [RunTag("benchbox.verdict", verdict)] if run.data.tags.get("benchbox.verdict") != verdict else []
        for start in range(0, max(len(changed), 1), 900):  # MLflow caps one batch at 1000 entries
            client.log_batch(run_id, metrics=changed[start : start + 900], params=new_params if not start else [],
                             tags=tags if not start else [])  # fmt: skip
        logged["runs"][key] = run_id
        logged["new_metrics"] += len(changed)
    with tempfile.TemporaryDirectory() as scratch:
        check_json = Path(scratch) / "check.json"
        check_json.write_text(json.dumps(result.to_json(), indent=2))
        client.log_artifact(parent.info.run_id, str(check_json))
    if report_dir is not None and Path(report_dir).is_dir():
        client.log_artifacts(parent.info.run_id, str(report_dir), artifact_path="report")
    return logged

"""Registries through entry points: the built-ins load through `benchbox.testsets` / `benchbox.engines` like any
plugin; the skeleton engine of docs/plugins.md, installed as a plugin, evaluates as written; broken plugins are one
line each and the rest still works."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from conftest import REPO


def dist_info(site: Path, name: str, entry_points: str, modules: dict[str, str] | None = None) -> Path:
    """A distribution as pip leaves it on sys.path: a .dist-info with METADATA and entry_points.txt."""
    info = site / f"{name}-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(entry_points)
    for module, code in (modules or {}).items():
        (site / f"{module}.py").write_text(code)
    return site


def cli(*args, site: Path):
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")])),
        "COLUMNS": "200",
    }
    return subprocess.run(
        [sys.executable, "-m", "benchbox.cli", *map(str, args)], capture_output=True, text=True, env=env, timeout=600
    )


def test_the_builtins_are_entry_points():
    from importlib import metadata

    sets = {e.name: e.value for e in metadata.entry_points(group="benchbox.testsets")}
    engines = {e.name: e.value for e in metadata.entry_points(group="benchbox.engines")}
    assert set(sets) >= {"val", "real", "v2", "sketch", "a", "r", "o", "c", "p"}
    assert set(engines) >= {"torch", "ort", "trt"}
    from benchbox.datasets.catalog import TESTSETS
    from benchbox.runtime import ENGINES

    assert list(TESTSETS)[:9] == ["val", "real", "v2", "sketch", "a", "r", "o", "c", "p"]  # the family's order
    assert list(ENGINES)[:3] == ["torch", "ort", "trt"]


def test_the_documented_skeleton_engine_runs_as_a_plugin(tiny_full_artifact, tiny_images, tmp_path):
    guide = (REPO / "docs" / "plugins.md").read_text()
    code = next(
        block for block in re.findall(r"```python\n(.*?)```", guide, re.S) if "class SequentialOrtRunner" in block
    )
    site = dist_info(
        tmp_path / "site",
        "benchbox_ort_sequential",
        "[benchbox.engines]\nort-sequential = benchbox_ort_sequential:SequentialOrtRunner\n",
        {"benchbox_ort_sequential": code},
    )
    out = tmp_path / "r.json"
    proc = cli(
        "eval",
        tiny_full_artifact.directory,
        "--engine",
        "ort,ort-sequential",
        "--precisions",
        "fp32,fp16",
        "--data-root",
        tiny_images,
        "--store",
        tmp_path / "s",
        "--json",
        out,
        site=site,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    records = {(r["engine"], r["precision"], r["metric"]): r for r in json.loads(out.read_text())["records"]}
    for precision in ("fp32", "fp16"):
        assert records[("ort-sequential", precision, "nll")]["value"] == records[("ort", precision, "nll")]["value"]
    cost = json.loads(out.read_text())["precision_cost"]
    compared = [r for r in cost if r["engine"] == "ort-sequential" and r["kind"] == "engine"]
    assert compared and all(r["baseline"].startswith("ort/") for r in compared)
    unknown = cli("eval", tiny_full_artifact.directory, "--engine", "ort-sequentail", site=site)
    assert unknown.returncode == 2 and "ort-sequential" in unknown.stderr


def test_broken_plugins_are_one_line_and_the_rest_works(tiny_artifact, tiny_images, tmp_path):
    site = tmp_path / "site"
    dist_info(site, "broken_set", "[benchbox.testsets]\nbad = no_such_module:THING\n")
    dist_info(site, "wrong_engine", "[benchbox.engines]\nodd = wrong_engine:Thing\n", {"wrong_engine": "Thing = 3\n"})
    dist_info(
        site,
        "misnamed",
        "[benchbox.engines]\nfast = misnamed:Runner\n",
        {"misnamed": "from benchbox.runtime.onnxrt import OrtRunner as Runner\n"},
    )
    proc = cli("eval", tiny_artifact.directory, "--data-root", tiny_images, "--store", tmp_path / "s", site=site)
    assert proc.returncode == 0, proc.stderr
    warnings = [line for line in proc.stderr.splitlines() if line.startswith("warning: plugin")]
    assert len(warnings) == 3, proc.stderr
    assert any("'bad'" in w and "ModuleNotFoundError" in w for w in warnings)
    assert any("'odd'" in w and "not a subclass of benchbox.runtime.base.BaseRunner" in w for w in warnings)
    assert any("'fast'" in w and "names itself 'ort'" in w for w in warnings)
    assert "Traceback" not in proc.stderr

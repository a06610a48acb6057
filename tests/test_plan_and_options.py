"""One option schema for the CLI, plans and the demo: unknown keys, wrong types and nonsense values are errors
before any work starts, with did-you-mean."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchbox.errors import UserError
from benchbox.options import BenchOptions, EvalOptions, ExportOptions, parse_options
from benchbox.plan import load_plan

VALID = """
[output]
dir = "out"
[[models]]
name = "test_efficientnet"
[export]
precisions = ["fp32"]
[eval]
engines = ["ort"]
sets = "val"
data_root = "data"
limit = 10
[bench]
batch_sizes = [1, 8]
"""


def write(tmp_path, text):
    path = tmp_path / "plan.toml"
    path.write_text(text)
    return path


def test_a_valid_plan_is_typed_and_paths_resolve_against_the_plan(tmp_path):
    plan = load_plan(write(tmp_path, VALID))
    # inputs resolve against the plan's folder; the output against the current directory (a plan run from
    # elsewhere never writes into the folder it sits in)
    assert plan.out == Path.cwd() / "out" and plan.eval.data_root == tmp_path / "data"
    assert plan.eval.limit == 10 and plan.eval.sets.names == ("val",) and plan.bench.batch_sizes == [1, 8]
    assert plan.models[0].name == "test_efficientnet" and plan.export.precisions == ["fp32"]


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (("limit = 10", "limt = 10"), "Unknown option 'limt'.*Did you mean 'limit'"),
        (("[bench]", "[bnech]"), r"Unknown section \[bnech\].*Did you mean 'bench'"),
        (("batch_sizes = [1, 8]", "batch_sizes = [0]"), "must be at least 1"),
        (("batch_sizes = [1, 8]", "batch_sizes = []"), "the list is empty"),
        (("limit = 10", "limit = 0"), "must be at least 1"),
        (("limit = 10", "limit = -5"), "must be at least 1"),
        (("limit = 10", 'limit = "10"'), "expected an integer"),
        (("limit = 10", "limit = 2.5"), "expected an integer"),
        (('engines = ["ort"]', 'engines = ["onnxruntime"]'), "not one of torch, ort, trt"),
        (('engines = ["ort"]', 'engines = [""]'), "expected strings"),
        (('sets = "val"', 'sets = "imagenet-x"'), "Unknown test set"),
        (('precisions = ["fp32"]', 'precisions = ["fp8"]'), "'fp8' is not one of"),
        (("[export]", "[export]\ncalib_size = 0"), "must be at least 1"),
        (("[export]", '[export]\ntrt = "false"'), "expected true or false"),
        (("[bench]", "[bench]\nduration = -1"), "greater than 0"),
        (("[bench]", "[bench]\nthreads = -1"), "at least 1"),
        (("[bench]", "[bench]\nwarmup = -0.5"), "at least 0"),
        (('name = "test_efficientnet"', 'nam = "x"'), "has no name"),
        (("[[models]]", "[models]"), r"has no \[\[models\]\]"),
        (("[eval]", "[eval]\nworkers = -2"), "at least 1"),
        (("[eval]", "[eval]\ndevice = 'gpu'"), "expected one of cpu, cuda, tensorrt"),
        (("[eval]", "[eval]\nstore = 'x'"), "Unknown option 'store'"),
        (("[output]", "[output]\nfolder = 'x'"), "Unknown option 'folder'"),
        (("[bench]", "[ray]\nshard_sise = 64\n[bench]"), "Unknown option 'shard_sise'.*Did you mean 'shard_size'"),
        (("[bench]", "[ray]\nshard_size = 0\n[bench]"), "must be at least 1"),
        (("[bench]", "[ray]\naddress = 6379\n[bench]"), "expected a non-empty string"),
        (("[bench]", "[ray.targets.gpu]\nnum_gpus = 1\n[bench]"), "Target .gpu. .* names no device"),
        (("[bench]", "[ray.targets.cuda]\nresources = 'a100'\n[bench]"), "resources in .* must be a table"),
        (("[bench]", "[ray.targets.cuda]\nnum_gpu = 1\n[bench]"), "Unknown option 'num_gpu'.*'num_gpus'"),
        (("[bench]", "[ray.targets.cuda]\nnum_gpus = -1\n[bench]"), "expected a number of at least 0"),
    ],
)
def test_plan_mistakes_are_refused_before_any_work(tmp_path, change, expected):
    old, new = change
    assert old in VALID
    with pytest.raises(UserError, match=expected):
        load_plan(write(tmp_path, VALID.replace(old, new, 1)))


def test_a_broken_policy_named_by_a_plan_fails_at_load_time(tmp_path):
    (tmp_path / "policy.toml").write_text("[gate]\nmax_top1_drop = 1\n")
    with pytest.raises(UserError, match="Unknown key 'gate'"):
        load_plan(write(tmp_path, VALID + '[check]\npolicy = "policy.toml"\n'))


@pytest.mark.parametrize(
    ("cls", "values", "expected"),
    [
        (EvalOptions, {"engines": ""}, "empty item"),
        (EvalOptions, {"precisions": ","}, "empty item"),
        (EvalOptions, {"batch_size": 0}, "at least 1"),
        (EvalOptions, {"workers": -2}, "at least 1"),
        (ExportOptions, {"calib_size": -5}, "at least 1"),
        (ExportOptions, {"opset": 99}, "at most 23"),
        (BenchOptions, {"batch_sizes": "1,x"}, "expected an integer"),
        (BenchOptions, {"duration": "nan"}, "finite"),
        (EvalOptions, {"paths": ["a"]}, "SET=DIR"),
    ],
)
def test_command_line_values_go_through_the_same_checks(cls, values, expected):
    with pytest.raises(UserError, match=expected):
        parse_options(cls, values, "the command line")


def test_defaults_are_typed():
    options = EvalOptions()
    assert options.sets.names == ("val",) and options.engines == ["ort"] and options.batch_size == 32


def test_run_on_ray_without_ray_installed_names_the_extra(tmp_path):
    """A machine without Ray: one line naming the extra, exit 2, nothing written."""
    from conftest import run_cli

    blocker = tmp_path / "no-ray"
    blocker.mkdir()
    (blocker / "ray.py").write_text("raise ImportError(\"No module named 'ray'\")\n")
    plan = write(tmp_path, VALID)
    (tmp_path / "data").mkdir()
    result = run_cli("run", plan, "--ray", "auto", cwd=tmp_path, env={"PYTHONPATH": str(blocker)})
    output = result.stdout + result.stderr
    assert result.returncode == 2, output
    assert "needs Ray" in output and 'pip install -e ".[ray]"' in output
    assert "Traceback" not in output
    assert not (tmp_path / "out" / "store").exists()  # refused before any work


def test_a_plan_whose_data_root_is_missing_stops_before_any_export(tmp_path):
    """The data root, calibration folder and policy are looked up first, not after a minute of export."""
    from conftest import run_inprocess

    plan = write(tmp_path, VALID)
    result = run_inprocess("run", str(plan), cwd=tmp_path)
    code, output = result.returncode, result.stdout + result.stderr
    assert code == 2 and "data_root" in output and "which does not exist" in output, output
    assert "nothing has been exported" in output and not (tmp_path / "out" / "artifacts").exists()

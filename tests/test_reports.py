"""report, check and run: tables hold the stored values, each gate, exit codes, and the page in Chromium."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest
from conftest import evaluate, run_cli

from benchbox.bench import run_bench
from benchbox.options import BenchOptions, parse_options
from benchbox.records import Cell, Record
from benchbox.reports.check import load_policy
from benchbox.reports.plots import pareto_front
from benchbox.reports.report import build_report
from benchbox.reports.verdict import decide
from benchbox.store import ResultStore


@pytest.fixture(scope="module")
def filled_store(tiny_full_artifact, labelled_images, tmp_path_factory):
    """The store of an eval over three precisions plus a short bench."""
    store_dir = tmp_path_factory.mktemp("reports") / "store"
    evaluate(
        tiny_full_artifact, store_dir, precisions=["fp32", "fp16", "int8"], data_root=labelled_images, batch_size=4
    )
    options = parse_options(
        BenchOptions,
        {"precisions": ["fp32", "int8"], "batch_sizes": [1], "warmup": 0.05, "duration": 0.1, "min_iterations": 3},
        "a test",
    )
    run_bench(tiny_full_artifact, ResultStore(store_dir), options)
    return store_dir


def test_report_writes_four_files_with_stored_values(filled_store, tmp_path):
    paths = build_report(filled_store, tmp_path / "report")
    assert {p.name for p in paths.values()} == {"results.json", "results.csv", "report.md", "report.html"}
    records = ResultStore(filled_store).records()
    top1 = {r.cell.precision: r for r in records if r.metric == "top1"}
    page = paths["html"].read_text()
    markdown = paths["md"].read_text()
    for precision in ("fp32", "fp16", "int8"):
        shown = f"{top1[precision].value:.2f}"
        assert shown in page and shown in markdown
    stored = json.loads(paths["json"].read_text())
    delta = next(r for r in stored["precision_cost"] if r["metric"] == "top1" and r["precision"] == "int8")
    assert f"{delta['delta']:+.2f} [{delta['ci_low']:+.2f}, {delta['ci_high']:+.2f}]" in page
    assert page.index('id="verdict"') < page.index("What each precision costs") < page.index("<h2>Accuracy")
    assert stored["verdict"]["verdict"] in ("ready", "not-ready", "cannot-decide")
    assert markdown.startswith("# benchbox report\n\n## Verdict: **")
    p99 = next(r for r in records if r.metric == "latency_p99_ms")
    assert f"{p99.value:.2f}" in page
    assert "calibration overlap" in page  # the tiny artifact was calibrated on these very images
    import re

    assert "<svg" in page
    assert not re.search(r"(src|href)\s*=\s*[\"']?(https?:)?//|url\(\s*['\"]?https?:|@import", page)  # nothing remote
    assert page.count('<figure class="plot">') >= 3  # forest plot, accuracy vs latency, reliability diagram
    assert len(stored["records"]) == len(records)
    rows = paths["csv"].read_text().splitlines()
    assert sum(line.startswith("record,") for line in rows) == len(records)
    assert sum(line.startswith("precision_cost,") for line in rows) == len(stored["precision_cost"]) > 0


def test_check_exits_1_strict_0_lenient_2_without_baseline(filled_store, tmp_path):
    strict = tmp_path / "strict.toml"
    strict.write_text(
        "[gates]\nmin_agreement_top1 = 100.0\nmax_top1_drop = 0.0\n"
        "[gates.max_p99_latency_ms]\nbatch_size = 1\nvalue = 0.0001\n"
    )
    lenient = tmp_path / "lenient.toml"
    lenient.write_text(
        "[gates]\nmin_agreement_top1 = 0.0\nmax_top1_drop = 100.0\nno_nonfinite = true\nrequire_export_parity = true\n"
    )

    def cli(*args):
        return run_cli("check", *args)

    assert cli("--store", str(filled_store), "--policy", str(strict)).returncode == 1
    ok = cli("--store", str(filled_store), "--policy", str(lenient))
    assert ok.returncode == 0 and "READY" in ok.stdout
    assert cli("--store", str(tmp_path / "empty")).returncode == 2


def test_each_record_gate_on_a_hand_made_store(tmp_path):
    """Gates that read records (non-finite outputs, parity, latency, failed cells) beside the compared ones."""
    from stored import accurate, add_cell, cell, summary

    store = ResultStore(tmp_path / "s")
    labels = [3] * 400
    add_cell(store, cell("fp32", "val"), summary(labels, accurate(400, 0)))
    add_cell(store, cell("int8", "val"), summary(labels, accurate(400, 30)), [("nonfinite_outputs", 2.0)])
    extra = [
        Record(cell("fp32", None, engine="export"), "parity_top1_agreement", 100.0),
        Record(cell("fp32", None, engine="export"), "parity_max_abs_diff", 5e-6),
        Record(cell("fp32", None), "latency_p99_ms", 12.0, 50, batch_size=1),
    ]
    run_id = store.start_run("extra", "artifact", extra[0].cell)
    store.finish_run(run_id, extra)
    text = (
        "[gates]\nmax_top1_drop = 1.0\nmin_agreement_top1 = 97.0\nno_nonfinite = true\n"
        "require_export_parity = true\n[gates.max_p99_latency_ms]\nbatch_size = 1\nvalue = 10.0\n"
    )
    (tmp_path / "p.toml").write_text(text)
    result = decide(store, load_policy(tmp_path / "p.toml"))
    results = {(g.gate, g.subject): g for g in result.gates}
    assert results[("max_top1_drop", "m ort/int8 val")].status == "fail"  # 7.5 [4.9, 10.1] > 1.0
    assert results[("max_top1_drop", "m ort/int8 val")].value == pytest.approx(7.5)
    assert results[("min_agreement_top1", "m ort/int8 val")].status == "fail"  # 92.5 [89.5, 94.7] < 97
    assert results[("no_nonfinite", "m ort/int8/val")].status == "fail"
    assert results[("max_p99_latency_ms", "m ort/fp32 batch 1")].status == "fail"
    assert all(g.status == "pass" for g in result.gates if g.gate == "require_export_parity")
    assert result.exit_code == 1


def test_a_failed_cell_cannot_be_ready(tmp_path):
    from stored import accurate, add_cell, cell, summary

    store = ResultStore(tmp_path / "s")
    add_cell(store, cell("fp32", "val"), summary([3] * 300, accurate(300, 0)))
    add_cell(store, cell("fp16", "val"), summary([3] * 300, accurate(300, 0)))
    failed = Record(cell("int8", "val"), "failed", None, 0, error="boom")
    store.fail_run(store.start_run("f", "cell", failed.cell), "boom", [failed])
    (tmp_path / "p.toml").write_text("[gates]\nmax_top1_drop = 1.0\n")
    result = decide(store, load_policy(tmp_path / "p.toml"))
    assert result.exit_code == 2 and "no_failed_cells" in result.why


def test_a_policy_that_evaluates_no_gate_cannot_decide(tmp_path):
    from stored import accurate, add_cell, cell, summary

    store = ResultStore(tmp_path / "s")
    add_cell(store, cell("fp32", "val"), summary([3] * 30, accurate(30, 0)), [("top1", 100.0)])
    (tmp_path / "p.toml").write_text("[gates.max_p99_latency_ms]\nbatch_size = 1\nvalue = 5.0\n")
    result = decide(store, load_policy(tmp_path / "p.toml"))
    assert (result.exit_code, result.why) == (2, "no gate of the policy could be evaluated on these results")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[gates]\nmax_top5_drop = 1\n", "Unknown gate 'max_top5_drop'.*Did you mean 'max_top1_drop'"),
        ("[gate]\nmax_top1_drop = 1\n", "Unknown key 'gate'.*Did you mean 'gates'"),
        ("", "defines no gates"),
        ("baseline_precision = 'fp32'\n", "defines no gates"),
        ("[sets.val]\nmax_top5_drop = 1\n", "Unknown gate 'max_top5_drop' in \\[sets.val\\]"),
        ("[gates]\nno_nonfinite = 'false'\n", "expected true or false"),
        ("[gates]\nmax_top1_drop = 'one'\n", "expected a number"),
        ("[gates]\nmax_top1_drop = -1\n", "at least 0"),
        ("[gates.max_p99_latency_ms]\nbatch_size = 0\nvalue = 3\n", "at least 1"),
        ("[gates.max_p99_latency_ms]\nbatch = 1\nvalue = 3\n", "Unknown key 'batch'"),
        ("[gates]\nmax_p99_latency_ms = 5\n", "must be a table"),
        ("baseline_precision = 'fp64'\n[gates]\nno_nonfinite = true\n", "expected one of"),
        ("[gates\n", "not valid TOML"),
    ],
)
def test_policy_mistakes_are_errors_before_any_check(tmp_path, text, expected):
    from benchbox.errors import UserError

    bad = tmp_path / "p.toml"
    bad.write_text(text)
    with pytest.raises(UserError, match=expected):
        load_policy(bad)
    assert "max_top1_drop" in load_policy(None).gates


def test_check_on_a_read_only_store(filled_store):
    """report and check on a store nobody may write (read-only media, another user's store)."""
    import stat

    from conftest import run_cli_unprivileged, unprivileged_dir

    place = unprivileged_dir()
    copy = place / "ro"
    shutil.copytree(filled_store, copy)
    out = place / "report"
    out.mkdir()
    out.chmod(0o777)
    for path in [copy, *copy.rglob("*")]:
        path.chmod((path.stat().st_mode | stat.S_IROTH | (stat.S_IXOTH if path.is_dir() else 0)) & ~0o222)
    before = {p: (p.stat().st_size, p.stat().st_mtime_ns) for p in copy.rglob("*")}
    try:
        report = run_cli_unprivileged("report", "--store", copy, "--out", out)
        assert report.returncode == 0, report.stderr
        assert (out / "report.html").is_file()
        assert run_cli_unprivileged("check", "--store", copy).returncode in (0, 1)
        assert {p: (p.stat().st_size, p.stat().st_mtime_ns) for p in copy.rglob("*")} == before  # nothing written
    finally:
        for path in [copy, *copy.rglob("*")]:
            path.chmod(path.stat().st_mode | stat.S_IWUSR)
        shutil.rmtree(place, ignore_errors=True)


def test_pareto_front():
    points = [(1.0, 70.0), (2.0, 75.0), (3.0, 74.0), (0.5, 60.0), (4.0, 80.0)]
    assert pareto_front(points) == [3, 0, 1, 4]


def test_report_page_renders_in_chromium(filled_store, tmp_path):
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("Chromium not installed (.ci/run installs Debian's chromium package)")
    paths = build_report(filled_store, tmp_path / "report")
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--enable-logging=stderr",
        "--v=0",
    ]
    url = paths["html"].resolve().as_uri()
    dom = subprocess.run(
        [browser, *flags, "--virtual-time-budget=3000", "--dump-dom", url], capture_output=True, text=True, timeout=120
    )
    assert dom.returncode == 0, dom.stderr[-2000:]
    body = dom.stdout
    assert 'data-errors="0"' in body, "the page raised JavaScript errors"
    plots = int(body.split('data-plots="')[1].split('"')[0])
    drawn = int(body.split('data-plots-drawn="')[1].split('"')[0])
    assert plots >= 2 and drawn == plots, (plots, drawn)
    console_errors = [line for line in dom.stderr.splitlines() if "CONSOLE" in line and "rror" in line]
    assert not console_errors, console_errors
    shot = tmp_path / "page.png"
    subprocess.run(
        [browser, *flags, "--window-size=1300,2400", f"--screenshot={shot}", url], capture_output=True, timeout=120
    )
    import numpy as np
    from PIL import Image

    pixels = np.asarray(Image.open(shot).convert("L"))
    assert (pixels < 200).mean() > 0.005  # text, tables and plots drew something


def test_run_plan_end_to_end_and_resume(tiny_images, tmp_path):
    plan = tmp_path / "plan.toml"
    plan.write_text(f"""
[output]
dir = "out"
[[models]]
name = "test_efficientnet"
[[models]]
name = "no_such_model_xyz"
[export]
precisions = ["fp32", "int8"]
calib_data = "{tiny_images / "val"}"
calib_size = 4
calib_method = "minmax"
[eval]
engines = ["ort"]
precisions = ["fp32", "int8"]
sets = "val"
data_root = "{tiny_images}"
batch_size = 4
[bench]
precisions = ["fp32"]
batch_sizes = [1]
warmup = 0.05
duration = 0.1
[check]
policy = "lenient.toml"
""")
    (tmp_path / "lenient.toml").write_text("[gates]\nmax_top1_drop = 100.0\n")
    from benchbox.plan import run_plan

    first = run_plan(plan, echo=lambda *a: None)
    assert any("no_such_model_xyz" in f for f in first.failures)  # the broken model is recorded, the rest ran
    assert first.verdict == 2 and first.report["html"].is_file()  # the failed export: cannot decide
    store = ResultStore(tmp_path / "out" / "store")
    n_runs = len(store.runs())
    seen = []
    second = run_plan(plan, on_progress=lambda label, done, total: seen.append(label), echo=lambda *a: None)
    assert not [s for s in seen if not s.startswith("bench")] and not seen  # nothing recomputed
    assert len(ResultStore(tmp_path / "out" / "store").runs()) == n_runs and second.verdict == 2


def test_warnings_name_unsupported_cells_and_plots_carry_no_metadata(filled_store, tmp_path):
    from benchbox.reports.tables import warnings_list

    records = [
        Record(Cell("m", "torch", "cpu", "int8", "val"), "unsupported", None, 0, error="no int8 path"),
        Record(Cell("m", "ort", "cpu", "fp16", "val"), "failed", None, 0, error="boom"),
    ]
    notes = warnings_list(records, [])
    assert "unsupported: m torch/int8 val: no int8 path" in notes and "failed cell: m ort/fp16 val: boom" in notes
    page = build_report(filled_store, tmp_path / "r")["html"].read_text()
    assert "<metadata>" not in page and "purl.org" not in page


def test_read_only_store_never_writes(filled_store, tmp_path):
    """report/check open the index read-only: no journal, no schema change, writes refused."""
    import sqlite3

    copy = tmp_path / "s"
    shutil.copytree(filled_store, copy)
    # (a reader of a write-ahead-log database updates its read marks in -shm, SQLite's shared-memory index)
    before = {p: p.stat().st_mtime_ns for p in copy.rglob("*") if not p.name.endswith("-shm")}
    store = ResultStore(copy, read_only=True)
    assert store.records() and store.latest_runs()
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        store._conn.execute("DELETE FROM records")
    build_report(copy, tmp_path / "report")
    after = {p: p.stat().st_mtime_ns for p in copy.rglob("*") if not p.name.endswith("-shm")}
    assert before == after

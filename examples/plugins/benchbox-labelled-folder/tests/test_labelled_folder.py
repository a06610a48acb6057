"""The plugin as a user gets it: installed with pip, listed by `benchbox datasets`, evaluated with --sets labelled,
and a labelled folder built from ImageNet val images scores exactly as the official val layout."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

PLUGIN = Path(__file__).resolve().parents[1]
REPO = PLUGIN.parents[2]
SAMPLE = Path(os.environ.get("BENCHBOX_SAMPLE_ROOT", REPO.parent / "shared" / "data" / "imagenet-sample"))


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """`pip install` of the plugin (no network: no dependencies, no build isolation) into its own folder."""
    target = tmp_path_factory.mktemp("site")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "--target",
            str(target),
            str(PLUGIN),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert list(target.glob("benchbox_labelled_folder-*.dist-info/entry_points.txt"))
    return target


def benchbox(*args, site: Path, cwd: Path | None = None):
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(site), *filter(None, [os.environ.get("PYTHONPATH")])]),
        "COLUMNS": "200",
    }
    return subprocess.run(
        [sys.executable, "-m", "benchbox.cli", *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=600,
    )


def labelled_copy(val: Path, target: Path, label_kind: str = "wnid") -> Path:
    """The val images as a labelled folder: flat files and labels.csv (WNIDs or class indices)."""
    from benchbox.datasets.catalog import wnid_to_index

    index = wnid_to_index()
    (target / "images").mkdir(parents=True)
    rows = []
    for path in sorted(val.glob("*/*")):
        name = f"images/{path.parent.name}_{path.name}"
        os.symlink(path.resolve(), target / name)
        rows.append((name, path.parent.name if label_kind == "wnid" else index[path.parent.name]))
    with (target / "labels.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["file", "label"])
        writer.writerows(rows)
    return target


def test_the_reader_counts_what_is_wrong(tmp_path):
    sys.path.insert(0, str(PLUGIN))
    try:
        from benchbox_labelled_folder import read_labelled_folder
    finally:
        sys.path.remove(str(PLUGIN))
    (tmp_path / "a.jpg").write_bytes(b"x")
    (tmp_path / "labels.csv").write_text(
        "file,label\na.jpg,n01440764\nb.jpg,3\na.jpg,n01440764\nc.jpg,not-a-class\nd.jpg,1000\n"
    )
    samples = read_labelled_folder(tmp_path)
    assert [(Path(s.path).name, s.label) for s in samples.samples] == [("a.jpg", 0)]
    text = " ".join(samples.problems)
    assert "1 files in labels.csv do not exist" in text and "2 rows have no ImageNet label" in text
    assert "listed twice" in text


def test_installed_plugin_is_listed_and_scores_like_official_val(installed, tmp_path):
    if not (SAMPLE / "val").is_dir():
        pytest.skip(f"the ImageNet sample is not at {SAMPLE} (set BENCHBOX_SAMPLE_ROOT)")
    data = tmp_path / "data"
    (data).mkdir()
    os.symlink((SAMPLE / "val").resolve(), data / "val")
    labelled_copy(SAMPLE / "val", data / "labelled", "index")
    listing = benchbox("datasets", "--data-root", data, site=installed)
    assert listing.returncode == 0, listing.stderr
    assert "labelled" in listing.stdout and "300" in listing.stdout
    from_sample = tmp_path / "art"
    proc = benchbox("export", "test_efficientnet", "--out", from_sample, site=installed)
    assert proc.returncode == 0, proc.stderr
    out = tmp_path / "r.json"
    proc = benchbox(
        "eval",
        from_sample,
        "--sets",
        "val,labelled",
        "--data-root",
        data,
        "--store",
        tmp_path / "s",
        "--json",
        out,
        "--batch-size",
        "50",
        site=installed,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    records = {(r["testset"], r["metric"]): r for r in json.loads(out.read_text())["records"]}
    for metric in ("top1", "top5", "ece", "nll", "nonfinite_outputs"):
        assert records[("labelled", metric)]["value"] == records[("val", metric)]["value"], metric
    assert records[("labelled", "top1")]["samples"] == records[("val", "top1")]["samples"]  # the same images
    shutil.rmtree(tmp_path / "art")


def test_unknown_set_names_list_the_plugin_and_a_broken_plugin_is_one_line(installed, tmp_path):
    proc = benchbox("eval", tmp_path, "--sets", "labeled", site=installed)
    assert proc.returncode == 2 and "Did you mean 'labelled'" in proc.stderr
    broken = tmp_path / "broken"
    shutil.copytree(installed, broken)
    info = next(broken.glob("benchbox_labelled_folder-*.dist-info"))
    (info / "entry_points.txt").write_text("[benchbox.testsets]\nlabelled = benchbox_labelled_folder:NOPE\n")
    listing = benchbox("datasets", site=broken)
    assert listing.returncode == 0
    assert "plugin 'labelled'" in listing.stderr and "could not be loaded" in listing.stderr
    assert "val" in listing.stdout  # the others still work

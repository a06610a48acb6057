"""Test sets read where users have them: the official archives unextracted, WebDataset shards, Hugging Face
parquet. Each is built here from the same images as a folder family (with the real tarfile, zipfile, gzip,
webdataset and pyarrow libraries) and must give the folder's records to the last digit."""

from __future__ import annotations

import io
import json
import shutil
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
from conftest import evaluate

from benchbox.datasets.catalog import VAL, A, imagenet_wnids, subset_indices, wnid_to_index
from benchbox.datasets.readers import read_image_folder
from benchbox.datasets.sources import open_source
from benchbox.datasets.sources.parquet import ParquetSource
from benchbox.datasets.sources.shards import ShardSource
from benchbox.datasets.sources.tree import TreePath
from benchbox.datasets.synthetic import write_image_folder
from benchbox.errors import UserError
from benchbox.records import SetKey

WNIDS = imagenet_wnids()
VOLATILE = ("env", "runner", "run_id", "time", "started", "duration_s")


@pytest.fixture(autouse=True)
def archive_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("BENCHBOX_ARCHIVE_CACHE", str(tmp_path_factory.getbasetemp() / "archive-cache"))


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """A family as folders: val (official names), V2, Sketch, A, R, O, C (two corruptions), P (two)."""
    from PIL import Image

    from benchbox.datasets.synthesize import make_c, make_p

    root = tmp_path_factory.mktemp("folders")
    a, o, r = subset_indices("a"), subset_indices("o"), subset_indices("r")
    val_classes = sorted({WNIDS[i] for i in (a[0], a[1], o[0], r[0], 500)})
    write_image_folder(root / "val", val_classes, per_class=2, seed=21)
    (root / "val" / "BENCHBOX_GENERATED").unlink()
    number = 1
    for path in sorted((root / "val").rglob("*.JPEG")):
        path.rename(path.with_name(f"ILSVRC2012_val_{number * 3:08d}.JPEG"))
        number += 1
    write_image_folder(root / "imagenet-a", [WNIDS[a[0]], WNIDS[a[3]]], per_class=2, seed=22)
    write_image_folder(root / "imagenet-r", [WNIDS[r[0]]], per_class=2, seed=23)
    write_image_folder(root / "imagenet-o", [WNIDS[o[0]], WNIDS[o[2]]], per_class=2, seed=24)
    write_image_folder(root / "sketch", [WNIDS[3]], per_class=2, seed=25)
    for label in (0, 10, 999):
        folder = root / "imagenetv2-matched-frequency-format-val" / str(label)
        folder.mkdir(parents=True)
        Image.new("RGB", (64, 48), (label % 255, 90, 20)).save(folder / f"{label}.jpeg")
    make_c(root / "val", root / "imagenet-c", ["gaussian_noise", "contrast", "fog"], [1, 2], workers=1)
    make_p(root / "val", root / "imagenet-p", ["gaussian_noise", "rotate"], limit=2, workers=1)
    for marker in root.rglob("BENCHBOX_GENERATED"):
        marker.unlink()
    return root


def _tar(path: Path, members: dict[str, Path], gz: bool = False) -> None:
    """A tar of `arcname -> source file or folder` (gzip-compressed with `gz`)."""
    with tarfile.open(path, "w:gz" if gz else "w") as archive:
        for arcname, source in members.items():
            archive.add(source, arcname=arcname)


def _devkit(path: Path, val: Path) -> None:
    """ILSVRC2012_devkit_t12.tar.gz: ground truth in devkit IDs (not class indices) and meta.mat mapping them."""
    from scipy.io import savemat

    order = list(reversed(WNIDS))  # devkit IDs in an order unlike the sorted WNIDs, as the real devkit's
    ids = {w: i + 1 for i, w in enumerate(order)}
    by_number = {int(p.stem.rpartition("_")[2]): ids[p.parent.name] for p in val.rglob("*.JPEG")}
    # line k is val file k (the real list has all 50,000; numbers without a file here get some other class)
    truth = "\n".join(str(by_number.get(k, 1)) for k in range(1, max(by_number) + 1)) + "\n"
    synsets = np.array(
        [(ids[w], w, 0) for w in order], dtype=[("ILSVRC2012_ID", "O"), ("WNID", "O"), ("num_children", "O")]
    )
    scratch = path.parent / "devkit-src" / "ILSVRC2012_devkit_t12" / "data"
    scratch.mkdir(parents=True)
    (scratch / "ILSVRC2012_validation_ground_truth.txt").write_text(truth)
    savemat(scratch / "meta.mat", {"synsets": synsets})
    _tar(path, {"ILSVRC2012_devkit_t12": scratch.parent}, gz=True)
    shutil.rmtree(path.parent / "devkit-src")


@pytest.fixture(scope="module")
def archives(folders, tmp_path_factory):
    """The same family as its publishers ship it: the val tar (flat) with the devkit, V2's .tar.gz, Sketch's zip,
    A/R/O tars, C as group tars (one rooted at corruptions, one at a category, one corruption left extracted), P
    as tars."""
    root = tmp_path_factory.mktemp("archives")
    flat = {p.name: p for p in sorted((folders / "val").rglob("*.JPEG"))}
    _tar(root / "ILSVRC2012_img_val.tar", flat)
    _devkit(root / "ILSVRC2012_devkit_t12.tar.gz", folders / "val")
    v2 = "imagenetv2-matched-frequency-format-val"
    _tar(root / "imagenetv2-matched-frequency.tar.gz", {v2: folders / v2}, gz=True)
    with zipfile.ZipFile(root / "ImageNet-Sketch.zip", "w") as archive:
        for path in sorted((folders / "sketch").rglob("*.JPEG")):
            archive.write(path, f"sketch/{path.parent.name}/{path.name}")
    for name in ("imagenet-a", "imagenet-r", "imagenet-o"):
        _tar(root / f"{name}.tar", {name: folders / name})
    c = root / "imagenet-c"
    c.mkdir()
    _tar(c / "noise.tar", {"gaussian_noise": folders / "imagenet-c" / "gaussian_noise"})
    _tar(c / "digital.tar", {"digital/contrast": folders / "imagenet-c" / "contrast"})
    shutil.copytree(folders / "imagenet-c" / "fog", c / "fog")
    shutil.copy(folders / "imagenet-c" / "SYNTHESIZED.json", c / "SYNTHESIZED.json")
    p = root / "imagenet-p"
    p.mkdir()
    _tar(p / "noise.tar", {"gaussian_noise": folders / "imagenet-p" / "gaussian_noise"})
    _tar(p / "digital.tar", {"rotate": folders / "imagenet-p" / "rotate"})
    shutil.copy(folders / "imagenet-p" / "SYNTHESIZED.json", p / "SYNTHESIZED.json")
    return root


def comparable(records) -> dict:
    """Every record's figures, keyed by what it is (not where its files were)."""
    out = {}
    for record in records:
        data = record.to_json()
        for key in (*VOLATILE, "model_id"):
            data.pop(key, None)
        out[(record.cell.engine, record.cell.testset, record.cell.variant, record.metric, record.reference)] = data
    return out


@pytest.fixture(scope="module")
def folder_records(folders, tiny_artifact, tmp_path_factory):
    result = evaluate(tiny_artifact, tmp_path_factory.mktemp("folder-store"), sets="all", data_root=folders)
    return comparable(result.records)


def test_the_official_archives_read_unextracted_give_the_folders_records(
    archives, folder_records, tiny_artifact, tmp_path
):
    result = evaluate(tiny_artifact, tmp_path / "store", sets="all", data_root=archives)
    got = comparable(result.records)
    assert set(got) == set(folder_records)
    differ = {k: (got[k], folder_records[k]) for k in got if got[k] != folder_records[k]}
    assert not differ, [(k, {f: (a[f], b.get(f)) for f in a if a[f] != b.get(f)}) for k, (a, b) in differ.items()][:3]
    assert any(k[1] == "c" and k[2] == "contrast/2" for k in got)  # the category-rooted tar was read
    assert any(k[1] == "p" and k[2] == "rotate" for k in got)


def test_shards_and_parquet_give_the_folders_records(folders, folder_records, tiny_artifact, tmp_path):
    """val and V2 as timm-style shards (written with webdataset's TarWriter), A as clip-benchmark shards (indices
    into its own 200 classes, classnames.txt beside them), R and Sketch as Hugging Face parquet."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    import webdataset as wds

    def shards(folder: Path, out: Path, per_shard: int, label_of) -> None:
        out.mkdir(parents=True)
        files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in (".jpeg", ".jpg"))
        for start in range(0, len(files), per_shard):
            with wds.TarWriter(str(out / f"{start // per_shard}.tar")) as writer:
                for path in files[start : start + per_shard]:
                    writer.write(
                        {"__key__": f"s{len(files)}_{path.stem}", "jpg": path.read_bytes(), "cls": label_of(path)}
                    )

    index = wnid_to_index()
    a200 = list(subset_indices("a"))
    shards(folders / "val", tmp_path / "val-wds", 3, lambda p: index[p.parent.name])
    shards(folders / "imagenetv2-matched-frequency-format-val", tmp_path / "v2-wds", 2, lambda p: int(p.parent.name))
    shards(folders / "imagenet-a", tmp_path / "a-wds" / "test", 2, lambda p: a200.index(index[p.parent.name]))
    (tmp_path / "a-wds" / "classnames.txt").write_text("\n".join(f"class {i}" for i in range(200)) + "\n")
    for name, folder in (("r", "imagenet-r"), ("sketch", "sketch")):
        files = sorted((folders / folder).rglob("*.JPEG"))
        table = pa.table(
            {
                "image": [{"bytes": p.read_bytes(), "path": p.name} for p in files],
                "label": [index[p.parent.name] for p in files],
            }
        )
        (tmp_path / f"{name}-hf" / "data").mkdir(parents=True)
        pq.write_table(table, tmp_path / f"{name}-hf" / "data" / "test-00000-of-00001.parquet", row_group_size=1)
    paths = [
        f"val={tmp_path / 'val-wds'}",
        f"v2={tmp_path / 'v2-wds' / '{0..1}.tar'}",
        f"a={tmp_path / 'a-wds' / 'test'}",
        f"r={tmp_path / 'r-hf'}",
        f"sketch={tmp_path / 'sketch-hf' / 'data' / '*.parquet'}",
    ]
    result = evaluate(tiny_artifact, tmp_path / "store", sets="val,real,v2,a,r,sketch", data_root=folders, paths=paths)
    got = comparable(result.records)
    wanted = {k: v for k, v in folder_records.items() if k[1] in ("val", "v2", "a", "r", "sketch", "real")}
    assert set(got) == set(wanted)
    assert {k for k in got if got[k] != wanted[k]} == set()


def test_shards_are_read_in_webdatasets_order_with_its_keys_and_bytes(folders, tmp_path):
    import webdataset as wds

    out = tmp_path / "shards"
    out.mkdir()
    files = sorted((folders / "val").rglob("*.JPEG"))
    index = wnid_to_index()
    for k in range(2):
        with wds.TarWriter(str(out / f"part-{k:02d}.tar")) as writer:
            for path in files[k::2]:
                meta = {"label": index[path.parent.name], "filename": f"val/{path.name}"}
                writer.write({"__key__": path.stem, "JPEG": path.read_bytes(), "json": meta})
    pattern = str(out / "part-{00..01}.tar")
    ours = open_source(pattern).read(VAL, SetKey("val"))
    theirs = list(wds.WebDataset(pattern, shardshuffle=False))
    assert [s.key for s in ours.samples] == [json.loads(t["json"])["filename"].rpartition("/")[2] for t in theirs]
    from benchbox.datasets.loader import read_sample_bytes

    assert [read_sample_bytes(s.path) for s in ours.samples] == [t["jpeg"] for t in theirs]
    assert [s.label for s in ours.samples] == [json.loads(t["json"])["label"] for t in theirs]


def test_clip_benchmark_subset_indices_map_through_the_sets_synsets(folders, tmp_path):
    """Index i of clip-benchmark's ImageNet-A is the i-th of A's 200 WNIDs in sorted order."""
    import webdataset as wds

    a_wnids = sorted(WNIDS[i] for i in subset_indices("a"))
    assert [wnid_to_index()[w] for w in a_wnids] == list(subset_indices("a"))
    image = next((folders / "imagenet-a").rglob("*.JPEG")).read_bytes()
    out = tmp_path / "wds_imagenet-a"
    (out / "test").mkdir(parents=True)
    with wds.TarWriter(str(out / "test" / "0.tar")) as writer:
        for i in (0, 1, 57, 199):
            writer.write({"__key__": f"s{i:04d}", "webp": image, "cls": i})
    (out / "classnames.txt").write_text("\n".join(f"name {i}" for i in range(200)))
    samples = open_source(out / "test").read(A, SetKey("a")).samples
    assert [s.label for s in samples] == [wnid_to_index()[a_wnids[i]] for i in (0, 1, 57, 199)]
    (out / "classnames.txt").write_text("one\ntwo\n")
    with pytest.raises(UserError, match="lists 2 classes"):
        open_source(out / "test").read(A, SetKey("a"))
    (out / "classnames.txt").unlink()  # no class list: indices below 200 that are not A classes are A's own
    source = open_source(out / "test").read(A, SetKey("a"))
    assert [s.label for s in source.samples] == [wnid_to_index()[a_wnids[i]] for i in (0, 1, 57, 199)]
    assert any("indices into ImageNet-A's 200 classes" in p for p in source.problems)


def test_what_a_source_is_decided_by_what_the_path_is(archives, folders, tmp_path):
    assert isinstance(open_source(archives / "imagenet-a.tar"), TreePath)
    assert str(open_source(archives / "imagenet-a.tar")).endswith("imagenet-a.tar/imagenet-a")  # entered
    assert isinstance(open_source(archives / "imagenet-c"), TreePath)  # a folder with group tars
    assert open_source(folders / "val") == folders / "val"  # a plain folder stays a Path
    tree = open_source(archives / "ILSVRC2012_img_val.tar")
    assert read_image_folder(tree, "val").layout == "flat+ILSVRC2012_validation_ground_truth.txt"
    (tmp_path / "list.txt").write_text("a.tar\n# a comment\n/abs/b.tar\n")
    listed = open_source(tmp_path / "list.txt")
    assert isinstance(listed, ShardSource) and listed.shards == [tmp_path / "a.tar", Path("/abs/b.tar")]
    with pytest.raises(UserError, match="do not exist"):
        listed.read(VAL, SetKey("val"))
    (tmp_path / "x.parquet").write_bytes(b"not parquet")
    assert isinstance(open_source(tmp_path / "x.parquet"), ParquetSource)
    with pytest.raises(UserError, match="not a readable parquet"):
        open_source(tmp_path / "x.parquet").read(VAL, SetKey("val"))


def test_a_set_read_from_a_tar_pairs_with_the_same_images_read_from_folders(
    folders, archives, tiny_full_artifact, tmp_path
):
    """fp32 scored from the folder, fp16 from the tar: the same images by content, so the cost table pairs them."""
    from conftest import cost_rows

    store = tmp_path / "store"
    evaluate(tiny_full_artifact, store, sets="a", data_root=folders, precisions=["fp32"])
    evaluate(tiny_full_artifact, store, sets="a", data_root=archives, precisions=["fp16"])
    rows = cost_rows(store)
    row = rows[("ort", "fp16", "a", None, "top1")]
    assert row.paired and row.delta is not None and row.ci_low is not None, row.reason


def test_broken_archives_are_one_clear_line(archives, tmp_path):
    truncated = tmp_path / "imagenet-a.tar"
    data = (archives / "imagenet-a.tar").read_bytes()
    truncated.write_bytes(data[: len(data) // 3 + 100])
    with pytest.raises(UserError, match="not a readable tar archive|truncated"):
        open_source(truncated)
    bad_gz = tmp_path / "imagenetv2-matched-frequency.tar.gz"
    bad_gz.write_bytes(b"this is not gzip data")
    with pytest.raises(UserError, match="cannot be decompressed"):
        open_source(bad_gz)
    with pytest.raises(UserError, match="not a readable zip"):
        (tmp_path / "ImageNet-Sketch.zip").write_bytes(b"PK\x03\x04 nothing")
        open_source(tmp_path / "ImageNet-Sketch.zip")


def test_a_replaced_archive_is_indexed_again_and_changes_the_cells_key(archives, tmp_path):
    from benchbox.evaluation.planning import samples_digest

    copy = tmp_path / "imagenet-a.tar"
    shutil.copy(archives / "imagenet-a.tar", copy)
    before = read_image_folder(open_source(copy), "a")
    digest = samples_digest(before)
    from benchbox.datasets.loader import read_sample_bytes

    kept = [(s, read_sample_bytes(s.path)) for s in before.samples[1:]]
    with tarfile.open(copy, "w") as archive:  # one image fewer, same name
        for sample, data in kept:
            info = tarfile.TarInfo(f"imagenet-a/{WNIDS[sample.label]}/{sample.key}")
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    after = read_image_folder(open_source(copy), "a")
    assert len(after.samples) == len(before.samples) - 1
    assert samples_digest(after) != digest


class _Server:
    """A local HTTP server of files, with range requests (and, on request, a dropped or a damaged transfer)."""

    def __init__(self, root: Path) -> None:
        import http.server
        import threading

        self.root, self.ranges, self.drop_next, self.corrupt = root, [], False, False
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def do_GET(self):
                path = server.root / self.path.lstrip("/")
                if not path.is_file():
                    self.send_error(404)
                    return
                data = path.read_bytes()
                if server.corrupt:
                    data = data[:100] + bytes([data[100] ^ 1]) + data[101:]
                start = 0
                if self.headers.get("Range"):
                    start = int(self.headers["Range"].split("=")[1].rstrip("-"))
                    server.ranges.append(start)
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                else:
                    self.send_response(200)
                self.send_header("Content-Length", str(len(data) - start))
                self.end_headers()
                body = data[start:]
                if server.drop_next:
                    server.drop_next = False
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    self.connection.shutdown(2)  # the connection drops mid-transfer
                    return
                self.wfile.write(body)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()


@pytest.fixture
def published(archives, tmp_path, monkeypatch):
    """imagenet-a.tar served on localhost and catalogued with its real size and checksums."""
    import hashlib

    from benchbox.datasets import downloads

    site = tmp_path / "site"
    (site / "mirror").mkdir(parents=True)
    shutil.copy(archives / "imagenet-a.tar", site / "imagenet-a.tar")
    shutil.copy(archives / "imagenet-a.tar", site / "mirror" / "imagenet-a.tar")
    data = (site / "imagenet-a.tar").read_bytes()
    server = _Server(site)
    entry = downloads.Download(
        f"{server.url}/imagenet-a.tar",
        "imagenet-a.tar",
        len(data),
        hashlib.sha256(data).hexdigest(),
        hashlib.md5(data).hexdigest(),
        "the test",
    )
    monkeypatch.setitem(downloads.DOWNLOADS, "a", (entry,))
    yield server, entry
    server.httpd.shutdown()


def _fetch(*args):
    from conftest import run_inprocess

    result = run_inprocess("datasets", "fetch", *map(str, args))
    return result.returncode, result.stdout + result.stderr


def test_fetch_verifies_then_places_and_the_set_is_read_from_there(published, tmp_path, folders):
    code, output = _fetch("a", "--to", tmp_path / "data")
    assert code == 0, output
    assert (tmp_path / "data" / "imagenet-a.tar").is_file() and not list((tmp_path / "data").glob("*.part"))
    read = read_image_folder(open_source(tmp_path / "data" / "imagenet-a.tar"), "a")
    assert sorted(s.key for s in read.samples) == sorted(p.name for p in (folders / "imagenet-a").rglob("*.JPEG"))
    again_code, again = _fetch("a", "--to", tmp_path / "data")
    assert again_code == 0 and "already in place" in again


def test_an_interrupted_transfer_resumes_with_a_range_request(published, tmp_path):
    server, entry = published
    server.drop_next = True
    code, output = _fetch("a", "--to", tmp_path / "data")
    assert code == 0, output
    assert server.ranges and 0 < server.ranges[0] < entry.size  # resumed where the dropped transfer stopped
    assert "resuming" in output
    assert (tmp_path / "data" / "imagenet-a.tar").stat().st_size == entry.size


def test_a_damaged_download_is_one_line_with_both_hashes_and_nothing_is_placed(published, tmp_path):
    server, entry = published
    server.corrupt = True
    code, output = _fetch("a", "--to", tmp_path / "data")
    assert code == 2 and "Traceback" not in output, output
    line = next(line for line in output.splitlines() if "imagenet-a.tar: sha256 is" in line)
    assert entry.sha256 in line
    assert not (tmp_path / "data" / "imagenet-a.tar").exists()
    assert not list((tmp_path / "data").glob("*.part"))


def test_a_mirror_serves_the_same_names_and_is_verified_too(published, tmp_path):
    server, _ = published
    code, output = _fetch("a", "--to", tmp_path / "data", "--mirror", f"{server.url}/mirror/")
    assert code == 0, output
    (server.root / "mirror" / "imagenet-a.tar").write_bytes(b"a different file")
    code, output = _fetch("a", "--to", tmp_path / "other", "--mirror", f"{server.url}/mirror")
    assert code == 2 and "sha256 is" in output
    code, output = _fetch("a", "--to", tmp_path / "third", "--mirror", f"{server.url}/nowhere")
    assert code == 2 and "HTTP 404" in output and "Traceback" not in output


def test_what_cannot_be_fetched_or_verified_says_so(published, tmp_path, monkeypatch, archives):
    from benchbox.datasets import downloads

    code, output = _fetch("val", "--to", tmp_path / "data")
    assert code == 2 and "ImageNet account" in output and "--from" in output
    server, entry = published
    unverifiable = downloads.Download(entry.url, "imagenet-a.tar", checksum_source="none published")
    monkeypatch.setitem(downloads.DOWNLOADS, "a", (unverifiable,))
    code, output = _fetch("a", "--to", tmp_path / "data")
    assert code == 2 and "No published checksum" in output and "--no-verify" in output
    code, output = _fetch("a", "--to", tmp_path / "data", "--no-verify")
    assert code == 0 and (tmp_path / "data" / "imagenet-a.tar").is_file()
    monkeypatch.setitem(downloads.DOWNLOADS, "a", (entry,))
    code, output = _fetch("a", "--to", tmp_path / "given", "--from", archives / "imagenet-a.tar")
    assert code == 0 and (tmp_path / "given" / "imagenet-a.tar").is_file()  # a manual download, verified
    code, output = _fetch("a", "--to", tmp_path / "given", "--from", archives / "imagenet-r.tar")
    assert code == 2 and "not one of a's archives" in output


def test_hf_names_a_dataset_in_the_local_hub_cache_and_never_downloads(folders, tmp_path):
    """hf:ORG/NAME:SPLIT resolved offline from a hub cache laid out as the hub lays it out (refs/main ->
    snapshots/<commit>/data/<split>-*.parquet); a dataset that is not cached is one line naming the fetch."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from conftest import run_cli

    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "hub" / "datasets--acme--tiny-imagenet"
    data = repo / "snapshots" / commit / "data"
    data.mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    files = sorted((folders / "val").rglob("*.JPEG"))
    index = wnid_to_index()
    for split, chosen in (("validation", files), ("train", files[:2])):
        table = pa.table(
            {
                "image": [{"bytes": p.read_bytes(), "path": p.name} for p in chosen],
                "label": [index[p.parent.name] for p in chosen],
            }
        )
        pq.write_table(table, data / f"{split}-00000-of-00001.parquet")
    env = {"HF_HUB_CACHE": str(tmp_path / "hub"), "HF_HUB_OFFLINE": "1"}
    listed = run_cli("datasets", "--path", "val=hf:acme/tiny-imagenet", "--json", tmp_path / "s.json", env=env)
    assert listed.returncode == 0, listed.stderr
    row = next(r for r in json.loads((tmp_path / "s.json").read_text())["sets"] if r["set"] == "val")
    assert row["format"].startswith("parquet") and row["count"] == len(files)  # val picks the validation split
    train = run_cli("datasets", "--path", "val=hf:acme/tiny-imagenet:train", "--json", tmp_path / "t.json", env=env)
    row = next(r for r in json.loads((tmp_path / "t.json").read_text())["sets"] if r["set"] == "val")
    assert train.returncode == 0 and row["count"] == 2
    missing = run_cli("datasets", "--path", "val=hf:acme/not-cached", env=env)
    assert missing.returncode == 2 and "not in the local cache" in missing.stderr and "fetch" in missing.stderr
    assert "Traceback" not in missing.stderr

"""Reading a set from shards, parquet or its tar against reading the extracted folder, in one command.

Builds the 1,800-image val of eval_vs_timm.py (the sample six times over, each copy re-encoded at another JPEG
quality so no two files are alike), writes it as the val tar (wnid folders inside), as WebDataset shards (with
webdataset's TarWriter, 64 shards) and as Hugging Face parquet (row groups of 100), then measures, alternating
the sources, medians of the rounds:

- the data path alone: benchbox's loader (read, decode, exact preprocessing; no cache) in images/s;
- `benchbox eval` end to end with EfficientNet-Lite0 `int8-cpu` (cache off), images/s.

With `--c DIR` (an ImageNet-C tree, e.g. from `benchbox make-c`), also ImageNet-C from its five group tars
against the folder (data path alone; C images are not resized).

    python benchmarks/sources_speed.py --sample ../../shared/data/imagenet-sample [--c DIR] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

from _common import lite0_artifact

GROUPS = {
    "noise": ("gaussian_noise", "shot_noise", "impulse_noise"),
    "blur": ("defocus_blur", "glass_blur", "motion_blur", "zoom_blur"),
    "weather": ("snow", "frost", "fog", "brightness"),
    "digital": ("contrast", "elastic_transform", "pixelate", "jpeg_compression"),
    "extra": ("speckle_noise", "spatter", "gaussian_blur", "saturate"),
}


def build_val(sample: Path, work: Path) -> Path:
    from PIL import Image

    val = work / "folder" / "val"
    if val.is_dir():
        return val
    for copy, quality in enumerate((95, 90, 85, 80, 75, 70)):
        for path in sorted((sample / "val").glob("*/*")):
            target = val / path.parent.name / f"{path.stem}_q{copy}.JPEG"
            target.parent.mkdir(parents=True, exist_ok=True)
            with Image.open(path) as image:
                image.convert("RGB").save(target, quality=quality)
    return val


def build_sources(val: Path, work: Path) -> dict[str, str]:
    import pyarrow as pa
    import pyarrow.parquet as pq
    import webdataset as wds

    from benchbox.datasets.catalog import wnid_to_index

    files = sorted(val.rglob("*.JPEG"))
    index = wnid_to_index()
    tar = work / "val.tar"
    if not tar.is_file():
        with tarfile.open(tar, "w") as archive:
            archive.add(val, arcname="val")
    shards = work / "shards"
    if not shards.is_dir():
        shards.mkdir()
        per = -(-len(files) // 64)
        for k in range(64):
            with wds.TarWriter(str(shards / f"val-{k:04d}.tar")) as writer:
                for path in files[k * per : (k + 1) * per]:
                    writer.write({"__key__": path.stem, "jpg": path.read_bytes(), "cls": index[path.parent.name]})
    parquet = work / "hf" / "data" / "validation-00000-of-00001.parquet"
    if not parquet.is_file():
        parquet.parent.mkdir(parents=True)
        table = pa.table(
            {
                "image": [{"bytes": p.read_bytes(), "path": p.name} for p in files],
                "label": [index[p.parent.name] for p in files],
            }
        )
        pq.write_table(table, parquet, row_group_size=100)
    return {
        "folder": str(val),
        "tar": str(tar),
        "shards": str(shards / "val-{0000..0063}.tar"),
        "parquet": str(work / "hf"),
    }


def build_c_tars(c_root: Path, work: Path) -> Path:
    out = work / "c-tars"
    if out.is_dir():
        return out
    out.mkdir()
    for group, names in GROUPS.items():
        present = [n for n in names if (c_root / n).is_dir()]
        if present:
            with tarfile.open(out / f"{group}.tar", "w") as archive:
                for name in present:
                    archive.add(c_root / name, arcname=name)
    return out


def loader_rate(source: str, testset: str, artifact) -> float:
    """Images/s of the data path alone over every variant of a set read from `source`."""
    from benchbox.datasets.catalog import TESTSETS
    from benchbox.datasets.loader import iterate_batches
    from benchbox.datasets.transforms import EvalTransform
    from benchbox.datasets.variants import locate, set_variants

    spec = TESTSETS[testset]
    located = locate(None, {testset: Path(source)})
    variants = set_variants(spec, located, None, {testset: Path(source)})
    transform = EvalTransform(artifact.data_config, resize=spec.resize)
    count, start = 0, time.perf_counter()
    for variant in variants:
        paths = variant.read().paths
        for batch in iterate_batches(paths, transform, batch_size=32, workers=2):
            count += len(batch.indices)
    return count / (time.perf_counter() - start)


def eval_rate(source: str, artifact, store: Path, images: int) -> float:
    command = [sys.executable, "-m", "benchbox.cli", "eval", str(artifact.directory), "--precisions", "int8"]
    command += ["--path", f"val={source}", "--store", str(store), "--no-cache", "--workers", "2", "--recompute"]
    start = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    return images / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sample", type=Path, required=True, help="holds val/<wnid>/<image>")
    parser.add_argument("--c", type=Path, help="an ImageNet-C tree to compare with its group tars")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "benchbox-sources-speed")
    args = parser.parse_args()
    os.environ.setdefault("BENCHBOX_ARCHIVE_CACHE", str(args.work / "archive-cache"))
    os.environ["BENCHBOX_CACHE"] = "off"
    args.work.mkdir(parents=True, exist_ok=True)
    artifact = lite0_artifact(["fp32", "int8"], args.work)
    val = build_val(args.sample, args.work)
    sources = build_sources(val, args.work)
    images = len(list(val.rglob("*.JPEG")))
    for source in sources.values():  # index once (built and cached on first use; not part of the timing)
        loader_rate(source, "val", artifact)
    data: dict[str, list[float]] = {name: [] for name in sources}
    full: dict[str, list[float]] = {name: [] for name in sources}
    for _ in range(args.rounds):
        for name, source in sources.items():
            data[name].append(loader_rate(source, "val", artifact))
            full[name].append(eval_rate(source, artifact, args.work / f"store-{name}", images))
    print(f"val, {images} images, 2 decode workers, medians of {args.rounds}:")
    base_data, base_full = statistics.median(data["folder"]), statistics.median(full["folder"])
    for name in sources:
        d, f = statistics.median(data[name]), statistics.median(full[name])
        print(
            f"  {name:8s} data path {d:7.1f} img/s ({d / base_data:.2f}x the folder)   "
            f"eval int8-cpu {f:6.1f} img/s ({f / base_full:.2f}x)"
        )
    if args.c is not None:
        tars = build_c_tars(args.c, args.work)
        loader_rate(str(tars), "c", artifact)
        rates: dict[str, list[float]] = {"folder": [], "group tars": []}
        for _ in range(args.rounds):
            rates["folder"].append(loader_rate(str(args.c), "c", artifact))
            rates["group tars"].append(loader_rate(str(tars), "c", artifact))
        folder, packed = statistics.median(rates["folder"]), statistics.median(rates["group tars"])
        print(
            f"ImageNet-C data path: folder {folder:.1f} img/s, group tars {packed:.1f} img/s ({packed / folder:.2f}x)"
        )


if __name__ == "__main__":
    main()

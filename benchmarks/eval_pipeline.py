"""End-to-end eval throughput: benchbox (threaded decode + exact timm transform + ORT) vs a timm
validate.py-style loop (timm ImageDataset + timm transform + torch DataLoader workers + PyTorch eager)."""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from _common import lite0_artifact


def benchbox_eval(artifact, data_root: Path, batch: int) -> tuple[float, int]:
    from benchbox.evaluation.evaluator import Evaluator
    from benchbox.options import EvalOptions, parse_options
    from benchbox.store import ResultStore

    store = ResultStore(Path(tempfile.mkdtemp()) / "store")
    options = parse_options(EvalOptions, {"data_root": data_root, "batch_size": batch, "no_cache": True}, "bench")
    start = time.perf_counter()
    result = Evaluator(artifact, store, options).run()
    elapsed = time.perf_counter() - start
    n = next(r.n for r in result.records if r.metric == "top1")
    return n / elapsed, n


def timm_validate_loop(data_root: Path, batch: int, workers: int) -> tuple[float, int]:
    import torch
    from timm.data import ImageDataset, create_loader, resolve_data_config

    from benchbox.models import resolve_model

    model = resolve_model("efficientnet_lite0").module.eval()
    config = resolve_data_config({}, model=model)
    dataset = ImageDataset(str(data_root / "val"))
    loader = create_loader(
        dataset,
        input_size=config["input_size"],
        batch_size=batch,
        use_prefetcher=False,
        interpolation=config["interpolation"],
        mean=config["mean"],
        std=config["std"],
        num_workers=workers,
        crop_pct=config["crop_pct"],
    )
    start, n = time.perf_counter(), 0
    with torch.no_grad():
        for images, _ in loader:
            model(images)
            n += images.shape[0]
    return n / (time.perf_counter() - start), n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data-root", type=Path, default=None, help="ImageNet-style root with val/")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    data_root = args.data_root
    if data_root is None:
        from benchbox.datasets.synthetic import write_image_folder

        data_root = Path(tempfile.mkdtemp())
        write_image_folder(data_root / "val", ["n01440764", "n02085620", "n02123045", "n04037443"], 40, seed=3)
    artifact = lite0_artifact(["fp32"])
    ours, n = benchbox_eval(artifact, data_root, args.batch)
    theirs, m = timm_validate_loop(data_root, args.batch, args.workers)
    print(f"benchbox eval (ORT FP32, {n} images)        : {ours:7.1f} images/s")
    print(f"timm validate.py-style loop ({m} images)    : {theirs:7.1f} images/s")
    print(f"ratio benchbox / timm-style                 : {ours / theirs:7.2f}x")


if __name__ == "__main__":
    main()

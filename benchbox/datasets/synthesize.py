"""`benchbox make-c` / `make-p`: synthesized ImageNet-C trees and ImageNet-P videos from any val folder.

C: Resize(256) -> CenterCrop(224) -> corruption -> JPEG quality 85, written as the official tree
`<corruption>/<severity>/<wnid>/<name>`. P: Resize(256) -> perturbation frames -> H.264 MP4 (PyAV's bundled
libx264 with the official settings: crf 20 veryslow; noise tuned for grain at crf 23), as
`<perturbation>/<wnid>/<name>.mp4`. Seeds derive from the image index, so a re-run writes the same files.
A SYNTHESIZED.json marker labels the results.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from benchbox.datasets.catalog import C_CORRUPTIONS, C_EXTRA_CORRUPTIONS, P_EXTRA_PERTURBATIONS, P_PERTURBATIONS
from benchbox.datasets.readers import GENERATOR_VERSIONS, SYNTHESIZED_MARKER
from benchbox.errors import UserError, printable, unknown_name

MARKER = SYNTHESIZED_MARKER

ProgressFn = Callable[[str, int, int], None]


def _resized_256(path: str):
    import io

    from PIL import Image

    from benchbox.datasets.loader import read_sample_bytes
    from benchbox.datasets.transforms import load_rgb, shorter_side_size

    img = load_rgb(io.BytesIO(read_sample_bytes(path, 1 << 30)))  # a file, or a member of a val tar
    return img.resize(shorter_side_size(img.width, img.height, 256), Image.BILINEAR)


def _seed(*parts) -> int:
    # surrogateescape: file names that are not UTF-8 still give a stable seed (and the same one as before)
    return zlib.crc32("/".join(map(str, parts)).encode("utf-8", "surrogateescape"))


def _c_job(args):
    path, wnid, out, corruptions, severities, seed = args
    from PIL import Image

    from benchbox.datasets.corruptions import corrupt
    from benchbox.datasets.transforms import UnreadableImage, center_crop

    try:
        base = np.asarray(center_crop(_resized_256(path), 224, 224))
    except UnreadableImage as exc:
        return f"{printable(path)}: {exc}"
    name = Path(path).name
    for corruption in corruptions:
        for severity in severities:
            target = Path(out) / corruption / str(severity) / wnid / name
            if target.is_file():
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            image = corrupt(base, corruption, severity, _seed(seed, name, corruption, severity))
            tmp = target.with_suffix(".tmp")
            Image.fromarray(image).save(tmp, format="JPEG", quality=85, optimize=True)
            tmp.replace(target)
    return None


def _p_job(args):
    path, wnid, out, perturbations, seed = args
    from benchbox.datasets.perturbations import NOISE, perturb
    from benchbox.datasets.transforms import UnreadableImage

    try:
        base = np.asarray(_resized_256(path))
    except UnreadableImage as exc:
        return f"{printable(path)}: {exc}"
    for name in perturbations:
        target = Path(out) / name / wnid / (Path(path).stem + ".mp4")
        if target.is_file():
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        frames = perturb(base, name, _seed(seed, Path(path).name, name))
        write_mp4(target, frames, grain=name in NOISE)
    return None


# The official ImageNet-P encoder settings: noise sequences with libx264's grain tuning at its default quality
# (crf 23), the others at crf 20; both with the veryslow preset.
ENCODER = {"crf": "20", "preset": "veryslow", "threads": "1"}
ENCODER_GRAIN = {"tune": "grain", "preset": "veryslow", "threads": "1"}


def write_mp4(path: Path, frames: list[np.ndarray], grain: bool = False, options: dict | None = None) -> None:
    """H.264 MP4, one frame per second, yuv444p so colour survives (what ffmpeg picks for RGB frames, as the
    official sequences were made); `options` replaces the libx264 settings (the fidelity harness passes the
    official command's)."""
    import av

    tmp = path.with_suffix(".tmp.mp4")
    with av.open(str(tmp), mode="w") as container:
        stream = container.add_stream("libx264", rate=1)
        stream.width, stream.height = frames[0].shape[1], frames[0].shape[0]
        stream.pix_fmt = "yuv444p"
        stream.options = options if options is not None else (ENCODER_GRAIN if grain else ENCODER)
        # Every frame is converted to YUV before the first is encoded: converting while encoding made libx264's
        # output vary from one call to the next for the same frames (measured; the cause lies inside the libraries).
        planes = [av.VideoFrame.from_ndarray(f, format="rgb24").reformat(format="yuv444p").to_ndarray() for f in frames]
        for yuv in planes:
            for packet in stream.encode(av.VideoFrame.from_ndarray(yuv, format="yuv444p")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    tmp.replace(path)


def decode_mp4(path) -> list[np.ndarray]:
    """All frames of a video (a path or a file object) as RGB uint8 arrays (PyAV: a wheel-installed decoder, no
    system ffmpeg)."""
    import av

    try:
        with av.open(path if hasattr(path, "read") else str(path)) as container:
            return [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]
    except Exception as exc:
        from benchbox.datasets.transforms import UnreadableImage

        raise UnreadableImage(f"{type(exc).__name__}: {exc}") from exc


def _val_images(val_dir: Path, limit: int | None) -> list[tuple[str, str]]:
    from benchbox.datasets.catalog import VAL
    from benchbox.datasets.readers import read_image_folder
    from benchbox.datasets.sources import open_source
    from benchbox.records import SetKey

    source = open_source(val_dir)  # a folder, the val tar, shards or parquet
    samples = source.read(VAL, SetKey("val")) if hasattr(source, "read") else read_image_folder(source, "val")
    from benchbox.datasets.catalog import imagenet_wnids

    wnids = imagenet_wnids()
    items = [(s.path, wnids[s.label]) for s in samples.samples]
    if limit:
        picks = np.linspace(0, len(items) - 1, num=min(limit, len(items))).round().astype(int)
        items = [items[i] for i in sorted(set(picks))]
    return items


def _names(requested: list[str] | None, known: tuple[str, ...], kind: str) -> list[str]:
    if not requested:
        return list(known)
    for name in requested:
        if name not in known:
            raise unknown_name(kind, name, known)
    return list(requested)


def _check_out(out: Path, val_dir: Path | None = None) -> None:
    if out.exists() and not out.is_dir():
        raise UserError(f"{printable(out)} is a file, not a folder.", "Pass a folder to write the set into.")
    if val_dir is not None:
        source, target = Path(val_dir).resolve(), Path(out).resolve()
        if source == target or source in target.parents or target in source.parents:
            raise UserError(
                f"{printable(out)} overlaps the val folder it would be made from ({printable(val_dir)}): writing "
                "there would mix synthesized images into (and mark as synthesized) the real ones.",
                "Pass an output folder outside the val folder, e.g. DATA_ROOT/imagenet-c.",
            )


def make_c(
    val_dir: Path,
    out: Path,
    corruptions: list[str] | None = None,
    severities: list[int] | None = None,
    limit: int | None = None,
    seed: int = 0,
    workers: int = 2,
    on_progress: ProgressFn | None = None,
) -> dict:
    """Write a synthesized ImageNet-C tree; returns a summary (also stored in OUT/SYNTHESIZED.json)."""
    names = _names(corruptions, (*C_CORRUPTIONS, *C_EXTRA_CORRUPTIONS), "corruption")
    severities = severities or [1, 2, 3, 4, 5]
    if any(s not in (1, 2, 3, 4, 5) for s in severities):
        raise UserError(f"Severities must be 1..5, got {severities}.")
    _check_out(out, val_dir)
    items = _val_images(val_dir, limit)
    jobs = [(p, w, str(out), names, severities, seed) for p, w in items]
    errors = _run(_c_job, jobs, workers, "make-c", on_progress)
    summary = {"corruptions": names, "severities": severities, "images": len(items), "seed": seed, "unreadable": errors}
    return _mark(out, "c", summary, val_dir)


def make_p(
    val_dir: Path,
    out: Path,
    perturbations: list[str] | None = None,
    limit: int | None = None,
    seed: int = 0,
    workers: int = 2,
    on_progress: ProgressFn | None = None,
) -> dict:
    """Write synthesized ImageNet-P videos; returns a summary (also stored in OUT/SYNTHESIZED.json)."""
    names = _names(perturbations, (*P_PERTURBATIONS, *P_EXTRA_PERTURBATIONS), "perturbation")
    _check_out(out, val_dir)
    items = _val_images(val_dir, limit)
    errors = _run(_p_job, [(p, w, str(out), names, seed) for p, w in items], workers, "make-p", on_progress)
    summary = {"perturbations": names, "images": len(items), "seed": seed, "unreadable": errors}
    return _mark(out, "p", summary, val_dir)


def _run(job, jobs: list, workers: int, label: str, on_progress: ProgressFn | None) -> list[str]:
    """Run the per-image jobs (in processes when workers > 1), reporting images done."""
    results = []
    if on_progress:
        on_progress(label, 0, len(jobs))
    if workers <= 1 or len(jobs) <= 1:
        for j in jobs:
            results.append(job(j))
            if on_progress:
                on_progress(label, len(results), len(jobs))
    else:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            for result in pool.map(job, jobs, chunksize=1):
                results.append(result)
                if on_progress:
                    on_progress(label, len(results), len(jobs))
    return [r for r in results if r]


def _mark(out: Path, kind: str, summary: dict, source: Path) -> dict:
    from benchbox import __version__
    from benchbox.datasets.readers import GENERATED_MARKER

    out.mkdir(parents=True, exist_ok=True)
    summary = {
        "kind": kind,
        "generator": f"benchbox {__version__}",
        "generator_version": GENERATOR_VERSIONS[kind],
        **summary,
    }
    (out / MARKER).write_text(json.dumps(summary, indent=2))
    if (Path(source) / GENERATED_MARKER).is_file():  # corrupted generated images are still generated images
        (out / GENERATED_MARKER).write_text("synthesized from generated images: labels are arbitrary\n")
    return summary

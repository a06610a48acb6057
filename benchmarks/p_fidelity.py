"""Side by side: `benchbox make-p`'s sequences against the official ImageNet-P generator on the same images.

The official generator is hendrycks/robustness `ImageNet-P/create_p/make_imagenet_p.py`, supplied by the user
(never committed). It is a script: one loop over the val folders whose body holds a block per perturbation,
most of them commented out, each writing PNG frames and calling ffmpeg. This harness lifts each block out of the
loop, uncomments it, points its output at a scratch tree, applies the patches current libraries need (torchvision's
`resample=` is now `interpolation=`, np.fromstring, multichannel=), and replaces the ffmpeg call with the same
libx264 options through PyAV (the encoder benchbox uses), so both trees differ only by their frames' generator.
Both trees are then scored with `benchbox eval --sets p` (EfficientNet-Lite0, ONNX Runtime FP32), whose flip
probability and top-5 distance follow the official test.py; the table shows both per perturbation.

    python benchmarks/p_fidelity.py --official PATH/make_imagenet_p.py --images VAL_DIR [--limit 50]
        [--perturbations gaussian_noise,tilt,...] [--work DIR]
"""

from __future__ import annotations

import argparse
import json
import re
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

PATCHES = (
    ("np.float_", "np.float64"),
    ("multichannel=True", "channel_axis=-1"),
    ("np.fromstring(", "np.frombuffer("),
    ("resample=PILImage.BILINEAR", "interpolation=trn.InterpolationMode.BILINEAR"),
)
HEADER = re.compile(r"^\s*#?\s*#?\s*/{15} (?P<title>[A-Za-z ]+) Code /{15}\s*$")
SAVE_DIR = re.compile(r"save_dir = '[^']*ImageNet-P/(?P<name>\w+)/' \+ folder \+ '/'")


def _uncomment(line: str) -> str:
    """One comment level off an 8-space-indented line of the loop body (a '# #' line stays a comment)."""
    body = line[8:] if line.startswith(" " * 8) else line.lstrip()
    if body.startswith("# "):
        return body[2:]
    return "" if body.strip() == "#" else body


def official_blocks(path: Path) -> tuple[str, dict[str, str]]:
    """The script's preamble (imports and helpers, before the loop) and each perturbation's block as code."""
    lines = path.read_text().splitlines()
    loop = next(i for i, line in enumerate(lines) if line.startswith("for index, folder in"))
    preamble = "\n".join(lines[:loop])
    blocks: dict[str, str] = {}
    for start, line in enumerate(lines):
        match = HEADER.match(line)
        if not match or match["title"].startswith("End"):
            continue
        title = match["title"]
        end = next(i for i in range(start + 1, len(lines)) if f"End {title} Code" in lines[i])
        commented = line.strip().startswith("# #")
        body = [(_uncomment(x) if commented else x[8:]) for x in lines[start + 1 : end]]
        code = "\n".join(body)
        code = SAVE_DIR.sub(lambda m: f"save_dir = os.path.join(OUT, '{m['name']}', folder) + '/'", code)
        blocks[title.lower().replace(" ", "_")] = code.replace("os.system(", "encode_like_ffmpeg(")
    for old, new in PATCHES:
        preamble = preamble.replace(old, new)
        blocks = {k: v.replace(old, new) for k, v in blocks.items()}
    return preamble, blocks


def encode_like_ffmpeg(command: str) -> int:
    """Encode the PNG frames an official ffmpeg command names with its libx264 options, through PyAV."""
    from PIL import Image

    from benchbox.datasets.synthesize import write_mp4

    words = shlex.split(command)
    pattern = words[words.index("-i") + 1]
    options = {}
    for flag in ("-crf", "-tune", "-preset"):
        if flag in words:
            options[flag[1:]] = words[words.index(flag) + 1]
    options["threads"] = "1"  # as make-p: libx264's automatic thread count changes the bitstream per machine
    frames, i = [], 0
    while Path(pattern % i).is_file():
        frames.append(np.asarray(Image.open(pattern % i).convert("RGB")))
        i += 1
    target = Path(words[-1])
    target.parent.mkdir(parents=True, exist_ok=True)
    write_mp4(target, frames, options=options)
    return 0


def score(artifact_dir: Path, tree: Path, store: Path) -> dict[str, dict]:
    """flip_prob and top5_dist per perturbation from `benchbox eval --sets p` on one tree, and each video's flip
    rate (video index -> share of flipped frame pairs) for the paired comparison."""
    from benchbox.evaluation.summaries import videos
    from benchbox.metrics.robustness import flip_probability
    from benchbox.records import Cell
    from benchbox.store import ResultStore

    out = store / "records.json"
    command = [sys.executable, "-m", "benchbox.cli", "eval", str(artifact_dir), "--engine", "ort"]
    command += ["--sets", "p", "--path", f"p={tree}", "--store", str(store), "--json", str(out), "--no-cache"]
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    table: dict[str, dict] = {}
    model = ""
    for record in json.loads(out.read_text())["records"]:
        if record["metric"] in ("flip_prob", "top5_dist") and record.get("variant"):
            table.setdefault(record["variant"], {})[record["metric"]] = record["value"]
            model = record["model"]
    opened = ResultStore(store, read_only=True)
    for name, row in table.items():
        frames = opened.cell_predictions(Cell(model, "ort", "cpu", "fp32", "p", name))["summary"]
        index = np.unique(frames["video"])
        rates = [100.0 * flip_probability([v[:, 0]], "noise" in name) for v in videos(frames)]
        row["per_video"] = dict(zip(index.tolist(), rates))
    return table


def paired_difference(theirs: dict[int, float], ours: dict[int, float]) -> tuple[float, float]:
    """Mean per-video flip-rate difference (benchbox - official) over the videos both have, and the half-width
    of its 95 % interval (normal approximation over videos): the test of "within noise"."""
    shared = sorted(theirs.keys() & ours.keys())
    diff = np.array([ours[k] - theirs[k] for k in shared])
    if diff.size < 2:
        return float("nan"), float("nan")
    return float(diff.mean()), float(1.96 * diff.std(ddof=1) / np.sqrt(diff.size))


def frame_difference(official_tree: Path, benchbox_tree: Path, name: str) -> float:
    """Mean |official - benchbox| over the decoded frames of one perturbation's videos (0: identical frames, so
    only the deterministic perturbations can reach it)."""
    from benchbox.datasets.synthesize import decode_mp4

    diffs = []
    for theirs in sorted((official_tree / name).rglob("*.mp4")):
        ours = benchbox_tree / theirs.relative_to(official_tree)
        if ours.is_file():
            a, b = decode_mp4(theirs), decode_mp4(ours)
            diffs += [np.abs(x.astype(int) - y).mean() for x, y in zip(a, b)]
    return float(np.mean(diffs)) if diffs else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--official", type=Path, required=True, help="path to make_imagenet_p.py")
    parser.add_argument("--images", type=Path, required=True, help="ImageNet val folder (wnid sub-folders)")
    parser.add_argument("--limit", type=int, default=50)
    parser.add_argument("--perturbations", default="", help="comma-separated (default: every block found)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work", type=Path, help="scratch folder (default: a temporary one)")
    args = parser.parse_args()

    import torch
    from _common import lite0_artifact

    from benchbox.datasets.perturbations import NOISE, perturb
    from benchbox.datasets.synthesize import _resized_256, _seed, _val_images, write_mp4

    preamble, blocks = official_blocks(args.official)
    names = [n for n in args.perturbations.split(",") if n] or sorted(blocks)
    missing = [n for n in names if n not in blocks]
    if missing:
        sys.exit(f"No block for {missing} in {args.official}; it has {sorted(blocks)}.")
    work = args.work or Path(tempfile.mkdtemp(prefix="p-fidelity-"))
    official_tree, benchbox_tree = work / "official", work / "benchbox"
    namespace: dict = {"__name__": "official_make_imagenet_p", "encode_like_ffmpeg": encode_like_ffmpeg}
    exec(compile(preamble, str(args.official), "exec"), namespace)  # the user's own copy of the reference
    namespace["OUT"] = str(official_tree)
    items = _val_images(args.images, args.limit)
    for n, (path, wnid) in enumerate(items):
        img = _resized_256(path)
        namespace.update(img=img, folder=wnid, img_loc=Path(path).name)
        for name in names:
            seed = _seed(args.seed, Path(path).name, name)
            np.random.seed(seed % 2**32)
            torch.manual_seed(seed)
            exec(compile(blocks[name], f"{args.official}:{name}", "exec"), namespace)
            target = benchbox_tree / name / wnid / (Path(path).stem + ".mp4")
            target.parent.mkdir(parents=True, exist_ok=True)
            write_mp4(target, perturb(np.asarray(img), name, seed), grain=name in NOISE)
        print(f"{n + 1}/{len(items)} images", end="\r", flush=True)
    for tree in (official_tree, benchbox_tree):
        (tree / "SYNTHESIZED.json").write_text(json.dumps({"kind": "p", "generator_version": 999}))
    artifact = lite0_artifact(["fp32"])
    theirs = score(artifact.directory, official_tree, work / "store-official")
    ours = score(artifact.directory, benchbox_tree, work / "store-benchbox")
    print(f"\n{len(items)} images; flip probability (%, as benchbox records it) and top-5 distance")
    print("perturbation        FP(off)  FP(bb)  paired diff [95% CI]   T5D(off) T5D(bb)  frame MAD")
    for name in names:
        a, b = theirs.get(name, {}), ours.get(name, {})
        mean, half = paired_difference(a.get("per_video", {}), b.get("per_video", {}))
        verdict = "within noise" if abs(mean) <= half else "DIFFERS"
        print(
            f"{name:<18} {a.get('flip_prob', np.nan):>7.2f} {b.get('flip_prob', np.nan):>7.2f}  "
            f"{mean:+6.2f} [{mean - half:+6.2f}, {mean + half:+6.2f}] {a.get('top5_dist', np.nan):>8.3f} "
            f"{b.get('top5_dist', np.nan):>7.3f}  {frame_difference(official_tree, benchbox_tree, name):>8.2f}  "
            f"{verdict}"
        )


if __name__ == "__main__":
    main()

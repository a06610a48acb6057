"""One TestSet spec per member of the ImageNet test-set family, and the class lists they use.

Class index = position of the WNID in the sorted 1000 ILSVRC-2012 WNIDs (timm's `imagenet_synsets.txt`).
The A/R 200-class lists come from timm's package data; ImageNet-O's from `_info/` (hendrycks' list).
"""

from __future__ import annotations

import functools
import json
import pkgutil
from dataclasses import dataclass, field
from pathlib import Path

from benchbox.errors import unknown_name

C_CORRUPTIONS = (
    "gaussian_noise", "shot_noise", "impulse_noise",
    "defocus_blur", "glass_blur", "motion_blur", "zoom_blur",
    "snow", "frost", "fog", "brightness",
    "contrast", "elastic_transform", "pixelate", "jpeg_compression",
)  # fmt: skip
C_EXTRA_CORRUPTIONS = ("speckle_noise", "gaussian_blur", "spatter", "saturate")
C_CATEGORIES = ("noise", "blur", "weather", "digital", "extra")
P_PERTURBATIONS = (
    "gaussian_noise", "shot_noise", "motion_blur", "zoom_blur", "snow",
    "brightness", "translate", "rotate", "tilt", "scale",
)  # fmt: skip
P_EXTRA_PERTURBATIONS = ("speckle_noise", "gaussian_blur", "spatter", "shear")
V2_VARIANTS = {
    "matched-frequency": ("imagenetv2-matched-frequency-format-val",),
    "threshold0.7": ("imagenetv2-threshold0.7-format-val", "imagenetv2-threshold-0.7-format-val"),
    "top-images": ("imagenetv2-top-images-format-val",),
}


@dataclass(frozen=True)
class TestSet:
    """What a test set is called, where it lives under a data root, how big it is and what it measures."""

    name: str
    title: str
    dirs: tuple[str, ...]
    official_count: int | None
    metrics: tuple[str, ...]
    aliases: tuple[str, ...] = ()
    class_subset: str | None = None
    needs: tuple[str, ...] = field(default=())

    __test__ = False  # not a pytest class


TESTSETS: dict[str, TestSet] = {
    t.name: t
    for t in (
        TestSet("val", "ImageNet-1k val", ("val", "imagenet/val", "ILSVRC2012_img_val"), 50000,
                ("top1", "top5", "ece", "rms_calib", "nll"), ("imagenet", "imagenet-val")),
        TestSet("real", "ImageNet ReaL", (), 46837, ("real_top1",), ("imagenet-real",), needs=("val",)),
        TestSet("v2", "ImageNetV2", tuple(d for ds in V2_VARIANTS.values() for d in ds), 10000,
                ("top1", "top5", "ece", "rms_calib", "nll"), ("imagenetv2", "imagenet-v2")),
        TestSet("sketch", "ImageNet-Sketch", ("sketch", "imagenet-sketch", "ImageNet-Sketch/sketch"), 50000,
                ("top1", "top5", "ece", "rms_calib", "nll"), ("imagenet-sketch",)),
        TestSet("a", "ImageNet-A", ("imagenet-a",), 7500, ("top1", "ece", "rms_calib", "nll"),
                ("imagenet-a",), class_subset="a"),
        TestSet("r", "ImageNet-R", ("imagenet-r",), 30000, ("top1", "ece", "rms_calib", "nll"),
                ("imagenet-r",), class_subset="r"),
        TestSet("o", "ImageNet-O", ("imagenet-o",), 2000, ("aupr", "auroc", "fpr95"), ("imagenet-o",),
                class_subset="o", needs=("val",)),
        TestSet("c", "ImageNet-C", ("imagenet-c",), 50000 * 95, ("ce", "mce", "relative_mce"), ("imagenet-c",)),
        TestSet("p", "ImageNet-P", ("imagenet-p",), None, ("mfr", "mt5d"), ("imagenet-p",)),
    )
}  # fmt: skip


def resolve_testset(name: str) -> TestSet:
    """Spec for a set name or alias; unknown names list the family."""
    key = name.strip().lower()
    for spec in TESTSETS.values():
        if key == spec.name or key in spec.aliases:
            return spec
    raise unknown_name(
        "test set",
        name,
        [*TESTSETS, *(a for t in TESTSETS.values() for a in t.aliases)],
        shown=list(TESTSETS),
    )


def parse_sets(spec: str) -> list[str]:
    """`val,real,a` or `all` -> canonical names in family order."""
    if spec.strip().lower() == "all":
        return list(TESTSETS)
    names = [resolve_testset(part).name for part in spec.split(",") if part.strip()]
    return [n for n in TESTSETS if n in names]


def _timm_info(name: str) -> str:
    data = pkgutil.get_data("timm", f"data/_info/{name}")
    if data is None:
        raise FileNotFoundError(name)
    return data.decode()


def _own_info(name: str) -> str:
    return (Path(__file__).parent / "_info" / name).read_text()


@functools.cache
def imagenet_wnids() -> tuple[str, ...]:
    """The 1000 ILSVRC-2012 WNIDs, sorted: position = class index."""
    wnids = tuple(_timm_info("imagenet_synsets.txt").split())
    if len(wnids) != 1000 or list(wnids) != sorted(wnids):
        raise RuntimeError("timm's imagenet_synsets.txt is not the sorted 1000 WNIDs")
    return wnids


@functools.cache
def wnid_to_index() -> dict[str, int]:
    return {w: i for i, w in enumerate(imagenet_wnids())}


@functools.cache
def subset_indices(subset: str) -> tuple[int, ...]:
    """Sorted 1k class indices of the A, R or O 200-class subsets."""
    if subset in ("a", "r"):
        wnids = _timm_info(f"imagenet_{subset}_synsets.txt").split()
    elif subset == "o":
        wnids = _own_info("imagenet_o_synsets.txt").split()
    else:
        raise KeyError(subset)
    index = wnid_to_index()
    return tuple(sorted(index[w] for w in wnids))


@functools.cache
def timm_real_labels() -> tuple[tuple[int, ...], ...]:
    """The ReaL label lists timm ships (byte-identical to google-research's real.json)."""
    return tuple(tuple(labels) for labels in json.loads(_timm_info("imagenet_real_labels.json")))

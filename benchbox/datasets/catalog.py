"""One TestSet spec per member of the ImageNet test-set family, and the class lists they use.

Class index = position of the WNID in the sorted 1000 ILSVRC-2012 WNIDs (timm's `imagenet_synsets.txt`).
The 1000-class, A and R lists are timm's package data (copies in `_info/`); ImageNet-O's from `_info/` (hendrycks'
list); the default ReaL labels are timm's copy of real.json.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchbox.errors import UserError, unknown_name
from benchbox.registry import Registry
from benchbox.vocabulary import Layout

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
    """One test set: where it lives, how it is read, its label space, what it needs, how it is scored and shown.

    A built-in and a plugin are the same thing: an instance of this class registered under the entry-point group
    `benchbox.testsets` (docs/plugins.md).

    - `layout` picks the built-in reader (benchbox.vocabulary.Layout); a plugin gives `locate` instead: a function
      (folder) -> list of VariantSource, each reading a SampleSet of 1000-class labels.
    - `dirs`: where it is found under a data root (`--path NAME=DIR` always works).
    - `class_subset`: the label space when it is not the 1000 classes (A/R/O: 200 WNIDs, logits masked to them).
    - `scorer`: the scoring module (a name under benchbox.evaluation.scoring, or a dotted module path) with
      `variant_records`, optionally `set_records`, and `estimates`/`comparable` for paired comparisons.
    - `needs`: sets whose predictions its scores read (for the same cell); `summary`: the per-sample figures beyond
      top-5/confidence/label log-prob that its scorer reads; `resize`: False when images come at the crop size.
    - `headline`: the metric that sums the set up (accuracy tables, plots); `report`: the cost table's rows.
    """

    name: str
    title: str
    dirs: tuple[str, ...]
    official_count: int | None
    metrics: tuple[str, ...]
    layout: str
    scorer: str
    aliases: tuple[str, ...] = ()
    class_subset: str | None = None
    needs: tuple[str, ...] = field(default=())
    summary: tuple[str, ...] = field(default=())
    resize: bool = True  # False: images already come at the crop size (ImageNet-C/P)
    headline: str = "top1"
    report: tuple[str, ...] = ("top1", "top5")
    locate: Callable[..., Any] | None = field(default=None, compare=False)
    description: str = ""
    short: str = ""  # the name tables show (e.g. "A" for ImageNet-A); the set's name when empty

    @property
    def label(self) -> str:
        return self.short or self.name

    __test__ = False  # not a pytest class

    @property
    def videos(self) -> bool:
        """Samples are videos scored frame by frame (ImageNet-P)."""
        return self.layout == Layout.P

    @property
    def scored_from_needed(self) -> bool:
        """Scored from another set's predictions alone (ReaL from val's): it has no images of its own."""
        return self.layout == Layout.VAL_LABELS

    @property
    def scorer_module(self) -> str:
        return self.scorer if "." in self.scorer else f"benchbox.evaluation.scoring.{self.scorer}"


CLASSIFICATION = ("top1", "top5", "ece", "rms_calib", "nll")
VAL = TestSet(
    "val",
    "ImageNet-1k val",
    ("val", "imagenet/val", "ILSVRC2012_img_val"),
    50000,
    CLASSIFICATION,
    Layout.IMAGES,
    "classification",
    ("imagenet", "imagenet-val"),
    summary=("top1:a", "top1:r", "ood:o"),
    report=("top1", "top5", "ece", "nll"),
    short="val",
)
REAL = TestSet(
    "real",
    "ImageNet ReaL",
    (),
    46837,
    ("real_top1",),
    Layout.VAL_LABELS,
    "real",
    ("imagenet-real",),
    needs=("val",),
    headline="real_top1",
    report=("real_top1",),
    short="ReaL",
)
V2 = TestSet(
    "v2",
    "ImageNetV2",
    tuple(d for ds in V2_VARIANTS.values() for d in ds),
    10000,
    CLASSIFICATION,
    Layout.V2,
    "classification",
    ("imagenetv2", "imagenet-v2"),
    short="V2",
)
SKETCH = TestSet(
    "sketch",
    "ImageNet-Sketch",
    ("sketch", "imagenet-sketch", "ImageNet-Sketch/sketch"),
    50000,
    CLASSIFICATION,
    Layout.IMAGES,
    "classification",
    ("imagenet-sketch",),
    short="Sketch",
)
A = TestSet(
    "a",
    "ImageNet-A",
    ("imagenet-a",),
    7500,
    ("top1", "clean_top1", "ece", "rms_calib", "nll"),
    Layout.IMAGES,
    "subset",
    ("imagenet-a",),
    class_subset="a",
    needs=("val",),
    summary=("masked:a",),
    report=("top1",),
    short="A",
)
R = TestSet(
    "r",
    "ImageNet-R",
    ("imagenet-r",),
    30000,
    ("top1", "clean_top1", "ece", "rms_calib", "nll"),
    Layout.IMAGES,
    "subset",
    ("imagenet-r",),
    class_subset="r",
    needs=("val",),
    summary=("masked:r",),
    report=("top1",),
    short="R",
)
O_ = TestSet(
    "o",
    "ImageNet-O",
    ("imagenet-o",),
    2000,
    ("aupr", "auroc", "fpr95", "aupr_sigmoid"),
    Layout.IMAGES,
    "ood",
    ("imagenet-o",),
    class_subset="o",
    needs=("val",),
    summary=("ood:o",),
    headline="aupr",
    report=("aupr", "auroc", "fpr95"),
    short="O",
)
C = TestSet(
    "c",
    "ImageNet-C",
    ("imagenet-c",),
    50000 * 95,
    ("error", "ce", "mce", "relative_mce"),
    Layout.C,
    "corruption",
    ("imagenet-c",),
    needs=("val",),
    resize=False,
    headline="mce",
    report=("mce", "relative_mce"),
    short="C",
)
P = TestSet(
    "p",
    "ImageNet-P",
    ("imagenet-p",),
    None,
    ("flip_prob", "top5_dist", "mfr", "mt5d"),
    Layout.P,
    "perturbation",
    ("imagenet-p",),
    resize=False,
    headline="mfr",
    report=("mfr", "mt5d"),
    short="P",
)
BUILTIN_SETS = (VAL, REAL, V2, SKETCH, A, R, O_, C, P)  # the family's order


def _check_testset(obj: Any) -> None:
    if not isinstance(obj, TestSet):
        raise TypeError(f"it is a {type(obj).__name__}, not a benchbox TestSet")


# name -> TestSet: the built-ins, then installed plugins
TESTSETS = Registry("benchbox.testsets", lambda: BUILTIN_SETS, lambda testset: testset.name, _check_testset)


def set_rank(name: str | None) -> int:
    """Display order: the family first, then plugins (in the registry's order)."""
    names = list(TESTSETS)
    return names.index(name) if name in names else len(names)


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


@dataclass(frozen=True)
class SetSelection:
    """Requested test sets in family order; `everything` when the user said `all` (missing sets are skipped)."""

    names: tuple[str, ...]
    everything: bool = False


def parse_sets(spec: str) -> SetSelection:
    """`val,real,a` or `all` -> a SetSelection of canonical names in family order."""
    if spec.strip().lower() == "all":
        return SetSelection(tuple(TESTSETS), everything=True)
    names = [resolve_testset(part).name for part in spec.split(",") if part.strip()]
    if not names:
        raise UserError(f"No test set named in {spec!r}.", f"Known test sets: {', '.join(TESTSETS)}, or all")
    return SetSelection(tuple(n for n in TESTSETS if n in names))


def with_needs(names: tuple[str, ...] | list[str]) -> list[str]:
    """The requested sets plus what they need, needed sets first (family order otherwise)."""
    wanted = set(names)
    for name in names:
        wanted.update(TESTSETS[name].needs)
    return [n for n in TESTSETS if n in wanted]


def _timm_info(name: str) -> str:
    """A file of timm's `data/_info`, read without importing timm (which would import torch). The class lists
    eval needs are also in benchbox's own `_info/` (copied from timm, byte for byte), so scoring an ONNX file
    needs neither timm nor torch."""
    import importlib.util

    own = Path(__file__).parent / "_info" / name
    if own.is_file():
        return own.read_text()
    spec = importlib.util.find_spec("timm")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("timm is not installed")
    return (Path(next(iter(spec.submodule_search_locations))) / "data" / "_info" / name).read_text()


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

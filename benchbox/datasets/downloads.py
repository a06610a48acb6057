"""Where each test set's archives are published, with the checksum that proves a download, and its source.

`benchbox datasets fetch` downloads only what is listed here, and verifies every file against the listed
checksum before it is moved into place. The SHA-256 and sizes of A, R and V2 are TensorFlow Datasets' own
(`tensorflow_datasets/datasets/<name>/checksums.tsv`); the MD5s of A, R, O, C and P are the ones kkirchheim/
pytorch-ood checks its downloads against (`src/pytorch_ood/dataset/img/imagenet.py`; for C they are the Zenodo
record's). ImageNet val and ImageNet-Sketch cannot be fetched (val needs an ImageNet account; Sketch is on Google
Drive, which does not serve large files to scripts): `fetch --from FILE` verifies and places the file you
downloaded. The `place` of a file is where it goes under `--to DIR`, which is where `--data-root DIR` looks.
"""

from __future__ import annotations

from dataclasses import dataclass

TFDS = "TensorFlow Datasets checksums.tsv"
PYTORCH_OOD = "pytorch-ood (md5)"
P_SOURCE = "pytorch-ood (md5, from its commented-out ImageNet-P loader: unconfirmed)"


@dataclass(frozen=True)
class Download:
    url: str
    place: str  # relative path under --to (its file name is the published one)
    size: int | None = None
    sha256: str | None = None
    md5: str | None = None
    checksum_source: str = ""
    manual: bool = False  # cannot be downloaded by a script: fetch prints where, and takes --from FILE

    @property
    def filename(self) -> str:
        return self.place.rpartition("/")[2]

    @property
    def verifiable(self) -> bool:
        return bool(self.sha256 or self.md5)


HENDRYCKS = "https://people.eecs.berkeley.edu/~hendrycks"
V2_BASE = "https://huggingface.co/datasets/vaishaal/ImageNetV2/resolve/main"
C_BASE = "https://zenodo.org/record/2235448/files"
P_BASE = "https://zenodo.org/record/3565846/files"

DOWNLOADS: dict[str, tuple[Download, ...]] = {
    "val": (
        Download(
            "https://image-net.org/download-images.php",
            "ILSVRC2012_img_val.tar",
            md5="29b22e2961454d5413ddabcf34fc5622",
            checksum_source="torchvision (md5)",
            manual=True,
        ),
        Download(
            "https://image-net.org/download-images.php",
            "ILSVRC2012_devkit_t12.tar.gz",
            md5="fa75699e90414af021442c21a62c3abf",
            checksum_source="torchvision (md5)",
            manual=True,
        ),
    ),
    "v2": tuple(
        Download(f"{V2_BASE}/imagenetv2-{name}.tar.gz", f"imagenetv2-{name}.tar.gz", size, sha, None, TFDS)
        for name, size, sha in (
            ("matched-frequency", 1264079360, "f0c37fdf925916b19ea1323cd9a2208cdb6959ba2c32eef2a7fc393835c9ca7c"),
            ("threshold0.7", 1249906176, "32142bfe998f9cfa4141be691f6a80eeb1e27b24bd532a668eb08c26d98897a2"),
            ("top-images", 1245927936, "85e4ace30f3f0d660152062254b8759dda66267b27f7ec0fd8d5768f1073a04b"),
        )
    ),
    "sketch": (
        Download(
            "https://drive.google.com/u/0/uc?id=1Mj0i5HBthqH1p_yeXzsg22gZduvgoNeA&export=download",
            "ImageNet-Sketch.zip",
            7593573012,
            "4d3ce6b82a7c48aabf14aeac105eb533e75707f152cc858f55bfc022031a72ed",
            checksum_source=TFDS,
            manual=True,
        ),
    ),
    "a": (
        Download(
            f"{HENDRYCKS}/imagenet-a.tar",
            "imagenet-a.tar",
            687552512,
            "3bb3632277e6ba6392ea64c02ddbf4dd2266c9caffd6bc09c9656d28f012589e",
            "c3e55429088dc681f30d81f4726b6595",
            f"{TFDS}; {PYTORCH_OOD}",
        ),
    ),
    "r": (
        Download(
            f"{HENDRYCKS}/imagenet-r.tar",
            "imagenet-r.tar",
            2191079936,
            "18c6bf493b39a0d975d48e587437f562caab9c52ae6327dcfa9dd8eb54aa1b52",
            "a61312130a589d0ca1a8fca1f2bd3337",
            f"{TFDS}; {PYTORCH_OOD}",
        ),
    ),
    "o": (
        Download(
            f"{HENDRYCKS}/imagenet-o.tar",
            "imagenet-o.tar",
            md5="86bd7a50c1c4074fb18fc5f219d6d50b",
            checksum_source=PYTORCH_OOD,
        ),
    ),
    "c": tuple(
        Download(f"{C_BASE}/{group}.tar", f"imagenet-c/{group}.tar", md5=md5, checksum_source=PYTORCH_OOD)
        for group, md5 in (
            ("blur", "2d8e81fdd8e07fef67b9334fa635e45c"),
            ("digital", "89157860d7b10d5797849337ca2e5c03"),
            ("extra", "d492dfba5fc162d8ec2c3cd8ee672984"),
            ("noise", "e80562d7f6c3f8834afb1ecf27252745"),
            ("weather", "33ffea4db4d93fe4a428c40a6ce0c25d"),
        )
    ),
    "p": tuple(
        Download(f"{P_BASE}/{group}.tar", f"imagenet-p/{group}.tar", md5=md5, checksum_source=P_SOURCE)
        for group, md5 in (
            ("blur", "869b2d2fb1604d1baa4316b5ecc9fdea"),
            ("digital", "8c1f73e4912812788e2fdb637cd55372"),
            ("noise", "619b37b5139ce764f77ce3bed3aee837"),
            ("weather", "a597ff6db8c6fb0dbcd6eb12ed620002"),
        )
    ),
}

MANUAL_HELP = {
    "val": (
        "ImageNet val needs an ImageNet account: sign in at https://image-net.org, download ILSVRC2012_img_val.tar "
        "(6.3 GB) and ILSVRC2012_devkit_t12.tar.gz from the ILSVRC2012 page, then run\n"
        "  benchbox datasets fetch val --to DIR --from ILSVRC2012_img_val.tar --from ILSVRC2012_devkit_t12.tar.gz\n"
        "(verified against their MD5s and placed where --data-root DIR finds them; both are read unextracted). "
        "A Hugging Face copy works too: --path val=hf:ILSVRC/imagenet-1k (gated: accept its terms first)."
    ),
    "sketch": (
        "ImageNet-Sketch is published on Google Drive (https://github.com/HaohanWang/ImageNet-Sketch), which does "
        "not serve a 7.6 GB file to scripts: download ImageNet-Sketch.zip in a browser, then run\n"
        "  benchbox datasets fetch sketch --to DIR --from ImageNet-Sketch.zip\n"
        "(verified against TensorFlow Datasets' SHA-256; the zip is read unextracted), or use a Hugging Face copy "
        "with --path sketch=hf:ORG/NAME."
    ),
}

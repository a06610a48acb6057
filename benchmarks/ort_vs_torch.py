"""ONNX Runtime FP32 (benchbox's runner) vs a timm-style PyTorch eager loop on EfficientNet-Lite0, same batch."""

from __future__ import annotations

import numpy as np
from _common import interleaved, lite0_artifact, throughput_args


def main() -> None:
    args = throughput_args(__doc__)

    import torch

    from benchbox.models import resolve_model
    from benchbox.runtime import create_runner

    artifact = lite0_artifact(["fp32"])
    batch = np.random.default_rng(0).standard_normal((args.batch, 3, 224, 224), dtype=np.float32)
    ort_runner = create_runner("ort", artifact, "fp32").activate()
    model = resolve_model("efficientnet_lite0").module.eval()
    x = torch.from_numpy(batch)

    def torch_step() -> None:  # what timm's validate.py does per batch
        with torch.no_grad():
            model(x)

    ort_ips, torch_ips, ratio = interleaved(
        lambda: ort_runner.infer(batch), torch_step, args.batch, args.rounds, args.seconds
    )
    print(f"threads: torch {torch.get_num_threads()}, onnxruntime default")
    print(f"ONNX Runtime FP32   : {ort_ips:8.1f} images/s")
    print(f"PyTorch eager FP32  : {torch_ips:8.1f} images/s")
    print(f"ratio ORT / PyTorch : {ratio:8.2f}x   (batch {args.batch}, median of {args.rounds} interleaved rounds)")


if __name__ == "__main__":
    main()

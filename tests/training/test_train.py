"""Training: the loss falls, runs checkpoint and resume, previews appear, bad inputs are named."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from agecast.cli import app
from agecast.errors import FacesetError, TrainError
from agecast.nets.df import AgeNet, ModelConfig, SwapNet
from agecast.training.train import TrainOptions, load_checkpoint, train

from .conftest import SIZE, jittered_faceset

TINY = {"resolution": SIZE, "encoder_dims": 8, "decoder_dims": 8, "batch": 4, "device": "cpu"}


def test_a_tiny_run_lowers_the_loss(facesets: tuple[Path, Path], tmp_path: Path) -> None:
    src, dst = facesets
    seen: list[float] = []
    options = TrainOptions(steps=60, lr=1e-3, preview_every=30, save_every=30, **TINY)  # type: ignore[arg-type]
    record = train(
        src, dst, tmp_path / "run", options, on_progress=lambda p: seen.append(p.losses["total"])
    )
    assert record.step == 60 and record.paired and record.age_range == [38.0, 75.0]
    first, last = np.mean(seen[:5]), np.mean(seen[-5:])
    assert last < 0.7 * first, f"loss {first:.3f} → {last:.3f}"
    previews = sorted((tmp_path / "run" / "previews").glob("*.png"))
    assert [p.name for p in previews] == ["step_000030.png", "step_000060.png"]
    grid = np.asarray(Image.open(previews[-1]))
    # a row per held-out face (1 of 12: every 10th) — footage | youngest | middle | oldest —
    # and a row of identity faces | their reconstruction
    assert grid.shape[1] == 4 * SIZE and grid.shape[0] == 2 * SIZE


def test_resume_continues_the_same_run(facesets: tuple[Path, Path], tmp_path: Path) -> None:
    src, dst = facesets
    run = tmp_path / "run"
    options = TrainOptions(steps=6, save_every=3, preview_every=100, **TINY)  # type: ignore[arg-type]
    train(src, dst, run, options)
    before, _ = load_checkpoint(run)
    with pytest.raises(TrainError, match="already holds a run: pass --resume"):
        train(src, dst, run, options)
    record = train(src, dst, run, TrainOptions(steps=10, **TINY), resume=True)  # type: ignore[arg-type]
    assert record.step == 10
    after, state = load_checkpoint(run)
    assert state["step"] == 10
    changed = [
        k for k, v in before.state_dict().items() if not torch.equal(v, after.state_dict()[k])
    ]
    assert changed, "resuming trained nothing"
    assert json.loads((run / "run.json").read_text())["options"]["batch"] == TINY["batch"]
    with pytest.raises(TrainError, match="resume with the same facesets"):
        train(dst, dst, run, TrainOptions(steps=12, **TINY), resume=True)  # type: ignore[arg-type]


def test_stopping_early_keeps_what_was_learnt(facesets: tuple[Path, Path], tmp_path: Path) -> None:
    src, dst = facesets
    steps: list[int] = []

    def stop() -> bool:
        return len(steps) >= 4

    record = train(
        src, dst, tmp_path / "run", TrainOptions(steps=100, **TINY),  # type: ignore[arg-type]
        on_progress=lambda p: steps.append(p.step), should_stop=stop,
    )  # fmt: skip
    assert record.step == 4
    assert load_checkpoint(tmp_path / "run")[1]["step"] == 4


def test_bad_facesets_are_named(facesets: tuple[Path, Path], tmp_path: Path) -> None:
    src, dst = facesets
    options = TrainOptions(steps=2, **TINY)  # type: ignore[arg-type]
    (tmp_path / "empty").mkdir()
    with pytest.raises(FacesetError, match="empty"):
        train(src, tmp_path / "empty", tmp_path / "r1", options)
    with pytest.raises(TrainError, match="smaller than --resolution 128"):
        train(src, dst, tmp_path / "r2", TrainOptions(steps=2, resolution=128, device="cpu"))
    other = jittered_faceset(tmp_path / "arc", n=3)
    index = json.loads((other.path / "faceset.json").read_text())
    index["template"] = "arcface_128"
    (other.path / "faceset.json").write_text(json.dumps(index))
    with pytest.raises(TrainError, match="aligned differently"):
        train(src, other.path, tmp_path / "r3", options)
    with pytest.raises(TrainError, match="no CUDA device"):
        train(src, dst, tmp_path / "r4", TrainOptions(steps=2, device="cuda"))


def test_cli_trains_and_reports(facesets: tuple[Path, Path], tmp_path: Path) -> None:
    src, dst = facesets
    args = ["train", "--src", str(src), "--dst", str(dst), "--out", str(tmp_path / "run"),
            "--resolution", str(SIZE), "--encoder-dims", "8", "--decoder-dims", "8",
            "--steps", "3", "--batch", "2", "--device", "cpu"]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "trained" in result.output and "step 3" in result.output
    again = CliRunner().invoke(app, args)
    assert again.exit_code == 2 and "--resume" in again.output
    bad = CliRunner().invoke(app, [*args[:5], "--out", str(tmp_path / "r2"), "--resolution", "56"])
    assert bad.exit_code == 2 and "multiple of 16" in bad.output


def test_model_shapes_and_age_effect() -> None:
    net = AgeNet(ModelConfig(resolution=64, encoder_dims=8, decoder_dims=8))
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        face, mask = SwapNet(net)(x, torch.zeros(2, 1))
    assert face.shape == (2, 3, 64, 64) and mask.shape == (2, 1, 64, 64)
    assert float(face.min()) >= 0 and float(face.max()) <= 1
    with pytest.raises(ValueError, match="age-conditioned"):
        net.swap(x)


def test_occluders_teach_the_swap_mask_to_leave_them_alone(
    facesets: tuple[Path, Path], tmp_path: Path
) -> None:
    """The same tiny run with and without synthetic occluders: over an occluder pasted on a
    footage face, the mask of the run that saw occluders is clearly lower."""
    from agecast.training.faceset import Faceset

    src, dst = facesets
    masks_under = {}
    # a skin-toned disc over the middle of the face (nose and mouth), where a hand would be
    ys, xs = torch.meshgrid(torch.arange(SIZE), torch.arange(SIZE), indexing="ij")
    centre = ((ys - 0.6 * SIZE) ** 2 + (xs - 0.5 * SIZE) ** 2).float().sqrt()
    alpha = (centre < SIZE / 6).float()[None]
    shade = torch.tensor([0.75, 0.55, 0.45]).reshape(3, 1, 1).expand(3, SIZE, SIZE)
    faces = torch.from_numpy(Faceset.load(dst).images()[:6]).permute(0, 3, 1, 2).float() / 255
    covered = faces + (shade - faces) * alpha
    for share in (0.0, 1.0):
        options = TrainOptions(steps=150, lr=1e-3, occluders=share, **TINY)  # type: ignore[arg-type]
        run = tmp_path / f"run-{share}"
        train(src, dst, run, options)
        net, _ = load_checkpoint(run, "cpu")
        with torch.no_grad():
            _, mask = net.src(net.latent(covered), torch.full((6, 1), 0.5))
        masks_under[share] = float((mask * alpha).sum() / (alpha.sum() * 6))
    # 150 tiny steps: the mask over the disc falls by ~0.16 (0.97 → 0.81); without occluders
    # in training the two runs are the same run
    assert masks_under[1.0] < masks_under[0.0] - 0.1, masks_under

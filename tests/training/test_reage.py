"""agecast-reage: a tiny run learns, exports with parity, and the live path adds only a delta —
the plate stays bit-exact wherever the model's mask is zero, in the mouth and off the face."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from agecast.cli import app
from agecast.errors import TrainError
from agecast.faces.regions import REGIONS
from agecast.identities import IdentityModel, read_package
from agecast.inference import get_backend
from agecast.nets.reage import ReageConfig, ReageNet
from agecast.training.export import PARITY_LIMIT, ExportMeta, export_run
from agecast.training.faceset import Faceset
from agecast.training.reage_data import ReageAugment, load_aged
from agecast.training.reage_train import (
    ReageOptions,
    load_reage_checkpoint,
    reage_loss,
    train_reage,
)
from agecast.training.synthetic_age import synthesize_faceset
from tests.identities.conftest import vouch

from .conftest import jittered_faceset

SIZE = 128
TINY = ReageOptions(
    steps=40, batch=4, lr=3e-3, resolution=SIZE, dims=4, crop=64, device="cpu", threads=1,
    preview_every=20, save_every=20,
)  # fmt: skip


@pytest.fixture(scope="module")
def pairs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(aged, footage): 10 astronaut crops at 128 px and the same faces at 38, 56 and 75."""
    root = tmp_path_factory.mktemp("reage")
    jittered_faceset(root / "footage", n=10, size=SIZE)
    synthesize_faceset(root / "footage", root / "aged", [38, 56, 75], 38)
    return root / "aged", root / "footage"


@pytest.fixture(scope="module")
def run(pairs: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("reage-run") / "run"
    train_reage(*pairs, folder, TINY)
    return folder


def test_a_tiny_run_lowers_the_loss_and_writes_previews(
    pairs: tuple[Path, Path], tmp_path: Path
) -> None:
    options = replace(TINY, steps=60)
    record = train_reage(*pairs, tmp_path / "run", options)
    assert record.family == "agecast-reage" and record.age_range == [38.0, 75.0]
    # the same held-out batch, before (a new model: the plate unchanged) and after training
    data = load_aged(Faceset.load(pairs[0]), Faceset.load(pairs[1]), SIZE)
    batch = ReageAugment(crop=64, occluder_p=0.5).batch(data, 16, torch.Generator().manual_seed(5))
    args = (batch.face, batch.age_maps, batch.target, batch.mask)
    trained, _ = load_reage_checkpoint(tmp_path / "run")
    with torch.no_grad():
        before = reage_loss(ReageNet(trained.config), *args)[0].item()
        after = reage_loss(trained.eval(), *args)[0].item()
    assert after < 0.85 * before, f"loss {before:.3f} → {after:.3f}"
    previews = sorted((tmp_path / "run" / "previews").glob("*.png"))
    assert [p.name for p in previews] == ["step_000020.png", "step_000040.png", "step_000060.png"]
    grid = np.asarray(Image.open(previews[-1]))
    # one held-out face (every 10th of 10): plate | middle | oldest | oldest, eyes young | target
    assert grid.shape == (SIZE, 5 * SIZE, 3)


def test_resume_needs_the_same_family(run: Path, pairs: tuple[Path, Path]) -> None:
    from agecast.training.train import TrainOptions, train

    with pytest.raises(TrainError, match="agecast-reage"):
        train(*pairs, run, TrainOptions(resolution=SIZE), resume=True)
    record = train_reage(*pairs, run, ReageOptions(steps=45), resume=True)
    assert record.step == 45


def test_training_data_blends_regions_and_cuts_out_occluders(pairs: tuple[Path, Path]) -> None:
    data = load_aged(Faceset.load(pairs[0]), Faceset.load(pairs[1]), SIZE)
    assert data.images.shape == (10, 3, 3, SIZE, SIZE) and data.ages.tolist() == [38, 56, 75]
    aug = ReageAugment(crop=64, local_p=1.0, occluder_p=1.0)
    batch = aug.batch(data, 6, torch.Generator().manual_seed(1))
    assert batch.face.shape == (6, 3, 64, 64) and batch.age_maps.shape == (6, 2, 64, 64)
    # per-region target ages: the target map varies within a face; current age is flat
    spread = batch.age_maps.amax((2, 3)) - batch.age_maps.amin((2, 3))  # (N, 2)
    assert float(spread[:, 1].max()) > 0 and float(spread[:, 0].max()) < 1e-6
    # where the model may not touch (occluders, mouth, background) the target is the input
    still = batch.mask < 1e-4
    assert bool(still.any())
    diff = (batch.target - batch.face).abs().amax(1, keepdim=True)
    assert float(diff[still].max()) < 1e-4


def test_textured_occluders_are_large_textured_skin_and_left_alone(
    pairs: tuple[Path, Path],
) -> None:
    """The textured style: bigger occluders than the shapes style, most of them the colour of
    the face they cover, not flat, and still cut out of the mask with the target the input."""
    data = load_aged(Faceset.load(pairs[0]), Faceset.load(pairs[1]), SIZE)
    shapes = ReageAugment(crop=64, occluder_p=1.0).batch(data, 48, torch.Generator().manual_seed(3))
    textured = ReageAugment(crop=64, occluder_p=1.0, occluder_style="textured").batch(
        data, 48, torch.Generator().manual_seed(3)
    )
    covered = textured.occluded >= 1.0  # inside the occluder, off its soft edge
    assert float(covered.float().mean()) > 1.5 * float((shapes.occluded >= 1.0).float().mean())
    # where an occluder covers the face, the target is the occluder as drawn, and the model may
    # not change it
    assert float(textured.mask[covered].max()) < 1e-4
    diff = (textured.target - textured.face).abs().amax(1, keepdim=True)
    assert float(diff[covered].max()) < 1e-4
    # near the face's own colour in most samples (the hard case) ...
    skin = (textured.face * textured.mask).sum((2, 3)) / textured.mask.sum((2, 3)).clamp(min=1)
    near = 0
    for i in range(48):
        inside = covered[i, 0]
        if int(inside.sum()) < 20:
            continue
        colour = textured.face[i][:, inside].mean(1)
        near += int(float((colour - skin[i]).abs().max()) < 0.12)
        # ... and never a flat fill: light, texture and grain vary over the occluder
        assert float(textured.face[i][:, inside].std(1).max()) > 0.003
    assert near >= 10, f"{near} of 48 occluders near the face's colour"


def test_export_matches_torch_and_runs_live(run: Path, tmp_path: Path) -> None:
    report = export_run(
        run, tmp_path / "pkg", ExportMeta(identity_id="tiny-reage", actor="T", purpose="demo")
    )
    assert report.parity_max_abs_diff <= PARITY_LIMIT
    package = read_package(vouch(tmp_path / "pkg"))
    m = package.manifest
    assert m.family == "agecast-reage" and m.plate_age == 38 and m.age_range == (38, 75)
    assert m.model.local_ages and m.color_transfer == "none"
    identity = IdentityModel.load(package, get_backend("onnxruntime"))
    assert identity.age_control == (38, 75, 75) and identity.local_ages
    crops = torch.rand(2, 3, SIZE, SIZE)
    got = identity.infer(crops, 60, (0.0, -10.0, 0.0, 5.0))
    assert got.deltas is not None and got.deltas.shape == (2, 3, SIZE, SIZE)
    assert got.masks is not None and got.masks.shape == (2, 1, SIZE, SIZE)
    net, _ = load_reage_checkpoint(run)
    maps = identity.age_maps(2, 60, (0.0, -10.0, 0.0, 5.0), None, crops.device)
    with torch.no_grad():
        face, delta, _ = net(crops, maps)
    assert float((got.deltas - delta).abs().max()) <= PARITY_LIMIT
    # the face output is the plate plus the masked delta, inside the graph
    expected = (crops + got.deltas * got.masks).clamp(0, 1)
    assert float((got.faces - expected).abs().max()) < 1e-5
    assert float((got.faces - face).abs().max()) <= PARITY_LIMIT


def test_age_maps_follow_the_age_the_offsets_and_the_range(run: Path, tmp_path: Path) -> None:
    export_run(
        run, tmp_path / "pkg", ExportMeta(identity_id="tiny-reage", actor="T", purpose="demo")
    )
    identity = IdentityModel.load(read_package(vouch(tmp_path / "pkg")), get_backend("onnxruntime"))
    flat = identity.age_maps(1, 50, None, None, torch.device("cpu"))
    assert torch.allclose(flat[:, 0], torch.tensor(0.38))
    assert torch.allclose(flat[:, 1], torch.tensor(0.5))
    eyes = [0.0] * len(REGIONS)
    eyes[REGIONS.index("eyes")] = -12.0
    local = identity.age_maps(1, 50, tuple(eyes), None, torch.device("cpu"))
    changed = (local - flat).abs()[0, 1] > 1e-6
    assert 0 < float(changed.float().mean()) < 0.25, "an eyes offset changes only around the eyes"
    assert float(local[0, 1].min()) == pytest.approx(0.38)  # 50-12 = 38: the youngest trained
    clamped = identity.age_maps(1, 500, None, None, torch.device("cpu"))
    assert float(clamped[0, 1].max()) == pytest.approx(0.75)


def test_reage_resolution_is_checked() -> None:
    with pytest.raises(ValueError, match="multiple of 32"):
        ReageConfig(resolution=200)
    net = ReageNet(ReageConfig(resolution=128, dims=4)).eval()
    face = torch.rand(1, 3, 128, 128)
    out, delta, mask = net(face, torch.full((1, 2, 128, 128), 0.5))
    # a new model changes nothing: zero delta, so the output is the plate
    assert float(delta.abs().max()) == 0 and torch.equal(out, face)
    assert mask.shape == (1, 1, 128, 128)


def test_cli_trains_reage(pairs: tuple[Path, Path], tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app,
        [
            "train", "--family", "agecast-reage", "--src", str(pairs[0]), "--dst", str(pairs[1]),
            "--out", str(tmp_path / "r"), "--resolution", "128", "--dims", "4", "--crop", "64",
            "--steps", "3", "--batch", "2", "--device", "cpu",
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "step 3" in result.output
    bad = CliRunner().invoke(
        app,
        [
            "train", "--family", "agecast-reage", "--src", str(pairs[1]), "--dst", str(pairs[1]),
            "--out", str(tmp_path / "r2"), "--resolution", "128", "--steps", "1",
        ],
    )  # fmt: skip
    assert bad.exit_code != 0 and "pair_of" in bad.output


def _forced_package(run: Path, out: Path) -> Path:
    """A package whose model adds +0.46 to every channel with mask 0.95 across the whole crop:
    what the live path must then keep (mouth, off-crop) is visible at once."""
    import shutil

    forced = out.parent / "forced-run"
    shutil.copytree(run, forced)
    net, state = load_reage_checkpoint(forced)
    with torch.no_grad():
        net.out.weight.zero_()
        bias = net.out.bias
        assert bias is not None
        bias.copy_(torch.tensor([0.5] * 12 + [3.0] * 4))  # pixel-shuffled: channel-major
    state["model"] = net.state_dict()
    torch.save(state, forced / "checkpoint.pt")
    export_run(forced, out, ExportMeta(identity_id="forced", actor="T", purpose="demo"))
    return vouch(out)


def test_the_live_path_adds_the_delta_and_keeps_the_mouth_and_the_rest(
    run: Path, tmp_path: Path
) -> None:
    from agecast.faces.align import estimate_affine, template_points
    from agecast.faces.detector import make_detector
    from agecast.faces.regions import mouth_interior
    from agecast.faces.tracker import FaceTracker
    from agecast.frames import FaceBox, Frame, Replayed
    from agecast.pipeline.fx import FaceFX, FxState
    from agecast.sources.astronaut import FACE_LANDMARKS5, astronaut_rgb

    backend = get_backend("onnxruntime")
    identity = IdentityModel.load(read_package(_forced_package(run, tmp_path / "pkg")), backend)
    image = torch.from_numpy(np.array(astronaut_rgb())).contiguous()
    points = torch.tensor(FACE_LANDMARKS5)
    face = FaceBox(torch.tensor([180.0, 70.0, 270.0, 170.0]), 0.9, points)
    fx = FaceFX(FaceTracker(make_detector(backend), detect_every=1), identity)
    placed = Replayed([face], {})  # the face where the test puts it, as a re-render does
    result = fx.process(Frame(0, image, 0, 0, replayed=placed))
    assert result.fx is FxState.ON
    diff = (result.aged.int() - image.int()).abs().amax(-1)
    # a cheek pixel (below the left eye): plate + 0.46 × 0.95 × 255 ≈ +112 per channel
    expected = (image[118, 205].int() + 112).clamp(max=255)
    assert int((result.aged[118, 205].int() - expected).abs().max()) <= 3
    # far outside the crop: bit-exact
    assert int(diff[:, :100].max()) == 0 and int(diff[300:].max()) == 0
    # the mouth interior (its solid core, 2 px in from its edge, in frame pixels) is the
    # plate's, bit-exact
    affine = estimate_affine(points, template_points(identity.manifest.crop.template, SIZE))
    inv = torch.linalg.inv(torch.cat([affine, torch.tensor([[0.0, 0.0, 1.0]])]))[:2]
    solid = (mouth_interior(points @ affine[:, :2].T + affine[:, 2], SIZE) >= 1.0).float()
    core = 1 - torch.nn.functional.max_pool2d(1 - solid[None], 5, 1, 2)[0, 0]
    ys, xs = core.nonzero(as_tuple=True)
    crop_xy = torch.stack([xs.float(), ys.float(), torch.ones(len(xs))], 1)
    fxy = (crop_xy @ inv.T).round().long()
    mouth_diff = diff[fxy[:, 1], fxy[:, 0]]
    assert len(mouth_diff) > 20 and int(mouth_diff.max()) == 0
    # bypass and blend 0 change nothing
    fx.set_look(blend=0.0)
    assert torch.equal(fx.process(Frame(1, image, 0, 0)).aged, image)

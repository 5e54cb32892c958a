"""Alignment: templates, the similarity fit, and crops whose geometry round-trips exactly."""

from __future__ import annotations

import math

import cv2
import pytest
import torch

from agecast.faces.align import (
    TEMPLATES,
    crop_region_in_frame,
    estimate_affine,
    invert_affine,
    template_points,
    transform_points,
    warp_crop,
)


def similarity(scale: float, angle_deg: float, tx: float, ty: float) -> torch.Tensor:
    a = math.radians(angle_deg)
    c, s = scale * math.cos(a), scale * math.sin(a)
    return torch.tensor([[c, -s, tx], [s, c, ty]], dtype=torch.float32)


def blob_frame(centre: tuple[float, float], hw: tuple[int, int] = (720, 1280)) -> torch.Tensor:
    """A bright Gaussian dot (σ 6 px) at a sub-pixel ``centre`` on black, HWC uint8."""
    ys, xs = torch.meshgrid(
        torch.arange(hw[0], dtype=torch.float32),
        torch.arange(hw[1], dtype=torch.float32),
        indexing="ij",
    )
    dot = torch.exp(-((xs - centre[0]) ** 2 + (ys - centre[1]) ** 2) / (2 * 6.0**2))
    return (dot * 255).round().to(torch.uint8)[..., None].expand(-1, -1, 3).contiguous()


def centroid(weights: torch.Tensor) -> torch.Tensor:
    """Weighted centroid (x, y) of an H×W weight map, pixel centres at integers."""
    ys, xs = torch.meshgrid(
        torch.arange(weights.shape[0], dtype=torch.float64),
        torch.arange(weights.shape[1], dtype=torch.float64),
        indexing="ij",
    )
    w = weights.double()
    return torch.stack([(w * xs).sum() / w.sum(), (w * ys).sum() / w.sum()])


def dark_centroid(grey: torch.Tensor, centre: torch.Tensor, radius: float) -> torch.Tensor:
    """Centroid of darkness (below 110 of 255) within ``radius`` of ``centre``: an iris finder."""
    ys, xs = torch.meshgrid(
        torch.arange(grey.shape[0], dtype=torch.float64),
        torch.arange(grey.shape[1], dtype=torch.float64),
        indexing="ij",
    )
    inside = ((xs - float(centre[0])) ** 2 + (ys - float(centre[1])) ** 2) <= radius**2
    return centroid((110.0 - grey.double()).clamp(min=0) * inside)


def test_templates_are_five_normalised_points() -> None:
    assert {"arcface_112", "arcface_128", "ffhq"} <= set(TEMPLATES)
    for name, points in TEMPLATES.items():
        assert points.shape == (5, 2) and points.dtype == torch.float32, name
        assert float(points.min()) > 0.0 and float(points.max()) < 1.0, name
        assert points[0, 0] < points[2, 0] < points[1, 0], name  # left eye, nose, right eye
    arcface = template_points("arcface_112", 112)
    torch.testing.assert_close(arcface[0], torch.tensor([38.2946, 51.6963]))
    torch.testing.assert_close(
        template_points("arcface_128", 128)[0], torch.tensor([46.2946, 51.6963])
    )
    ffhq = TEMPLATES["ffhq"]
    eye_gap = float(ffhq[1, 0] - ffhq[0, 0])
    assert 0.2 < eye_gap < 0.28  # looser than ArcFace (≈ 0.31): forehead and chin fit


def test_template_points_from_a_manifest() -> None:
    points = [[0.3, 0.4], [0.7, 0.4], [0.5, 0.55], [0.35, 0.7], [0.65, 0.7]]
    torch.testing.assert_close(
        template_points(torch.tensor(points), 200), torch.tensor(points) * 200
    )
    with pytest.raises(KeyError, match="unknown alignment template"):
        template_points("nope", 112)
    with pytest.raises(ValueError, match="5×2"):
        template_points(torch.zeros(4, 2), 112)


@pytest.mark.parametrize(("scale", "angle"), [(0.4, 0.0), (1.7, 33.0), (0.9, -150.0)])
def test_estimate_affine_recovers_a_similarity(scale: float, angle: float) -> None:
    truth = similarity(scale, angle, 31.5, -12.25)
    frame_points = torch.tensor(
        [[600.0, 300.0], [680.0, 305.0], [640.0, 350.0], [610.0, 390.0], [670.0, 392.0]]
    )
    fitted = estimate_affine(frame_points, transform_points(truth, frame_points))
    assert fitted.dtype == torch.float32 and fitted.shape == (2, 3)
    torch.testing.assert_close(fitted, truth, atol=1e-4, rtol=1e-5)


def test_estimate_affine_never_reflects() -> None:
    points = torch.tensor([[0.0, 0.0], [10.0, 0.0], [5.0, 5.0], [2.0, 9.0], [8.0, 9.0]])
    mirrored = points * torch.tensor([-1.0, 1.0])
    fitted = estimate_affine(points, mirrored)
    assert float(torch.linalg.det(fitted[:, :2])) > 0


def test_invert_and_transform_round_trip() -> None:
    m = similarity(2.3, 17.0, -400.0, 55.0)
    points = torch.rand(20, 2) * 1000
    back = transform_points(invert_affine(m), transform_points(m, points))
    torch.testing.assert_close(back, points, atol=1e-3, rtol=0)
    torch.testing.assert_close(invert_affine(invert_affine(m)), m, atol=1e-4, rtol=1e-5)


@pytest.mark.parametrize(
    ("crop_size", "scale", "angle"),
    [(112, 0.9, 12.0), (256, 3.1, -25.0), (128, 0.3, 40.0), (64, 0.45, 0.0)],
)
def test_warp_then_map_back_is_exact(crop_size: int, scale: float, angle: float) -> None:
    spot = (637.3, 351.8)
    frame = blob_frame(spot)
    # put the spot at a sub-pixel place inside the crop
    target = torch.tensor([crop_size * 0.43, crop_size * 0.58])
    m = similarity(scale, angle, 0.0, 0.0)
    m[:, 2] = target - transform_points(m, torch.tensor(spot))
    crop = warp_crop(frame, m, crop_size)
    assert crop.shape == (3, crop_size, crop_size) and crop.dtype == torch.float32
    assert float(crop.min()) >= 0.0 and float(crop.max()) <= 1.0
    found_in_crop = centroid(crop[0])
    torch.testing.assert_close(found_in_crop.float(), target, atol=0.1, rtol=0)
    back = transform_points(invert_affine(m), found_in_crop.float())
    assert float((back - torch.tensor(spot)).norm()) < 0.5


def test_warp_matches_opencv_where_both_are_defined(astronaut: torch.Tensor) -> None:
    m = similarity(1.37, 8.0, -150.0, -40.0)
    ours = warp_crop(astronaut, m, 160, antialias=False).permute(1, 2, 0) * 255
    theirs = cv2.warpAffine(
        astronaut.numpy(), m.double().numpy(), (160, 160), flags=cv2.INTER_LINEAR
    )
    assert float((ours - torch.from_numpy(theirs).float()).abs().max()) <= 1.0


def test_astronaut_eyes_land_on_the_template(astronaut: torch.Tensor, eyes: torch.Tensor) -> None:
    grey = astronaut.double().mean(dim=2)
    iris = torch.stack([dark_centroid(grey, eye, 5.0) for eye in eyes]).float()
    assert float((iris - eyes).norm(dim=1).max()) < 1.5  # the labels are iris centres
    size = 224
    template = template_points("arcface_112", size)
    # two points fix a similarity: eyes onto the template's eyes
    m = estimate_affine(iris, template[:2])
    crop = warp_crop(astronaut, m, size)
    scale = math.sqrt(float(torch.linalg.det(m[:, :2])))
    crop_grey = crop.double().mean(dim=0) * 255
    found = torch.stack(
        [dark_centroid(crop_grey, template[i], 5.0 * scale) for i in range(2)]
    ).float()
    assert float((found - template[:2]).norm(dim=1).max()) < 1.0


def test_crop_outside_the_frame_is_black(astronaut: torch.Tensor) -> None:
    m = similarity(1.0, 0.0, 5000.0, 0.0)
    assert (
        crop_region_in_frame(m, 112, (512, 512))[2] <= crop_region_in_frame(m, 112, (512, 512))[0]
    )
    assert float(warp_crop(astronaut, m, 112).abs().sum()) == 0.0


def test_crop_region_covers_the_footprint() -> None:
    m = similarity(0.5, 30.0, 0.0, 0.0)
    m[:, 2] = torch.tensor([56.0, 56.0]) - transform_points(m, torch.tensor([600.0, 300.0]))
    x0, y0, x1, y1 = crop_region_in_frame(m, 112, (720, 1280))
    corners = torch.tensor([[-0.5, -0.5], [111.5, -0.5], [-0.5, 111.5], [111.5, 111.5]])
    frame_corners = transform_points(invert_affine(m), corners)
    assert x0 <= float(frame_corners[:, 0].min()) and float(frame_corners[:, 0].max()) < x1
    assert y0 <= float(frame_corners[:, 1].min()) and float(frame_corners[:, 1].max()) < y1
    # …and not much more: a 224-pixel square turned 30° spans ≈ 306 pixels
    assert x1 - x0 < 315 and y1 - y0 < 315
    clipped = crop_region_in_frame(m, 112, (400, 500))
    assert clipped[2] <= 500 and clipped[3] <= 400 and clipped[0] >= 0 and clipped[1] >= 0


def test_warp_reads_only_the_crop_region(astronaut: torch.Tensor) -> None:
    # pixels outside the crop's footprint cannot change the crop
    m = similarity(1.5, 5.0, -200.0, -60.0)
    x0, y0, x1, y1 = crop_region_in_frame(m, 96, (512, 512))
    changed = astronaut.clone()
    changed[:y0] = 0
    changed[y1:] = 0
    changed[:, :x0] = 0
    changed[:, x1:] = 0
    torch.testing.assert_close(warp_crop(changed, m, 96), warp_crop(astronaut, m, 96))


def test_antialias_keeps_geometry_and_removes_aliasing() -> None:
    stripes = torch.zeros((512, 512, 3), dtype=torch.uint8)
    stripes[:, ::2] = 255  # one-pixel stripes: pure aliasing when sampled sparsely
    m = similarity(0.25, 0.0, 0.0, 0.0)
    smooth = warp_crop(stripes, m, 64, antialias=True)
    aliased = warp_crop(stripes, m, 64, antialias=False)
    assert float(smooth[:, 4:-4, 4:-4].std()) < 0.02  # flat mid-grey
    assert abs(float(smooth[:, 4:-4, 4:-4].mean()) - 0.5) < 0.02
    assert float(aliased[:, 4:-4, 4:-4].std()) > 0.1 or abs(float(aliased.mean()) - 0.5) > 0.1

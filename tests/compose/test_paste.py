import torch

from agecast.compose.layout import layout_canvas
from agecast.compose.mask import MaskMaker, erode, feather
from agecast.compose.paste import footprint, paste_back, paste_delta

# frame → crop: the crop's 256 px cover frame x 400..912, y 100..612 (scale 0.5)
AFFINE = torch.tensor([[0.5, 0.0, -200.0], [0.0, 0.5, -50.0]])


def _frame() -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    return torch.randint(0, 256, (720, 1280, 3), dtype=torch.uint8, generator=g)


def test_footprint_covers_the_crop_and_is_clipped() -> None:
    x0, y0, x1, y1 = footprint(AFFINE, 256, 720, 1280)
    assert x0 <= 400 and x1 >= 912 and y0 <= 100 and y1 >= 612
    assert x1 - x0 <= 516 and y1 - y0 <= 516
    off = torch.tensor([[0.5, 0.0, 300.0], [0.0, 0.5, 0.0]])  # crop lies left of the frame
    x0, _, x1, _ = footprint(off, 256, 720, 1280)
    assert x1 <= x0 + 1


def test_paste_back_changes_face_and_leaves_the_rest_exactly() -> None:
    frame = _frame()
    before = frame.clone()
    crop = torch.ones(3, 256, 256)  # white face
    mask = torch.zeros(1, 256, 256)
    mask[:, 64:192, 64:192] = 1.0  # frame 528..784 × 228..484
    x0, y0, x1, y1 = paste_back(frame, crop, mask, AFFINE, 1.0)
    inside = frame[240:470, 540:770]
    assert (inside == 255).all()
    outside = torch.ones(720, 1280, dtype=torch.bool)
    outside[y0:y1, x0:x1] = False
    assert torch.equal(frame[outside], before[outside])
    # inside the footprint but where the mask is 0, pixels keep their exact value too
    assert torch.equal(frame[110:200, 410:500], before[110:200, 410:500])


def test_blend_strength_scales_the_change() -> None:
    frame = torch.full((720, 1280, 3), 100, dtype=torch.uint8)
    mask = torch.ones(1, 256, 256)
    half = frame.clone()
    paste_back(half, torch.ones(3, 256, 256), mask, AFFINE, 0.5)
    assert int(half[350, 650, 0]) in (177, 178)  # 100 + (255 - 100) / 2
    none = frame.clone()
    paste_back(none, torch.ones(3, 256, 256), mask, AFFINE, 0.0)
    assert torch.equal(none, frame)


def test_mask_is_feathered_and_fades_at_the_crop_border() -> None:
    hard = torch.zeros(1, 1, 256, 256)
    hard[..., 64:192, 64:192] = 1
    soft = feather(hard, 0.05)
    assert 0.2 < float(soft[0, 0, 128, 64]) < 0.8  # the edge is soft
    assert float(soft[0, 0, 128, 128]) > 0.95
    made = MaskMaker(0.08)(None, 2, 256, torch.device("cpu"))
    assert made.shape == (2, 1, 256, 256)
    assert float(made[..., 0, :].max()) < 0.01 and float(made[..., :, -1].max()) < 0.01
    assert float(made[0, 0, 138, 128]) > 0.9


def test_layouts_keep_raw_and_aged_from_the_same_frame() -> None:
    raw = torch.arange(72, dtype=torch.uint8).view(4, 6, 3)
    picture, canvas = layout_canvas(raw, "side-by-side")
    assert picture.shape == (4, 12, 3) and canvas is not None
    assert torch.equal(picture[:, :6], raw) and torch.equal(picture[:, 6:], raw)
    canvas[1, 1] = 0  # pasting into the aged side writes the picture, never the raw frame
    assert int(picture[1, 7].sum()) == 0 and int(raw[1, 1].sum()) > 0
    assert torch.equal(picture[:, :6], raw)
    aged, canvas = layout_canvas(raw, "aged")
    assert canvas is aged and torch.equal(aged, raw) and aged.data_ptr() != raw.data_ptr()
    only_raw, canvas = layout_canvas(raw, "raw")
    assert only_raw is raw and canvas is None


def test_paste_delta_adds_to_the_plate_and_keeps_its_detail() -> None:
    """Re-ageing paste-back: the frame's own pixels plus the delta, never resampled; where the
    masked delta is zero the frame is bit-exact, inside the crop as well as outside."""
    frame = _frame()
    before = frame.clone()
    delta = torch.full((3, 256, 256), 20 / 255)
    mask = torch.zeros(1, 256, 256)
    mask[:, 64:192, 64:192] = 1.0  # frame 528..784 × 228..484
    paste_delta(frame, delta, mask, AFFINE)
    inside = (frame[250:460, 550:760].int() - before[250:460, 550:760].int()).flatten()
    clipped = before[250:460, 550:760].int().flatten() > 235
    # +20 everywhere it does not clip at white: the plate's random texture is all still there
    assert torch.all(inside[~clipped] == 20)
    ring = torch.ones(720, 1280, dtype=torch.bool)
    ring[220:492, 520:792] = False  # the masked square and its bilinear edge
    assert torch.equal(frame[ring], before[ring])
    # strength scales the change; a negative delta darkens
    frame = before.clone()
    paste_delta(frame, -delta, mask, AFFINE, strength=0.5)
    change = frame[300:400, 600:700].int() - before[300:400, 600:700].int()
    assert torch.all((change == -10) | (before[300:400, 600:700] < 10))


def test_erode_moves_every_mask_edge_inward_and_grows_holes() -> None:
    """A re-ageing mask is shrunk before paste-back so an edge that is uncertain by a pixel or
    two falls on the face, not on a hand in front of it."""
    mask = torch.zeros(1, 1, 64, 64)
    mask[..., 10:50, 10:50] = 1.0
    mask[..., 28:32, 28:32] = 0.0  # a finger-wide hole: something in front of the face
    mask[..., 20, 40] = 0.4  # one uncertain pixel
    shrunk = erode(mask, 2)
    assert shrunk.shape == mask.shape and torch.equal(erode(mask, 0), mask)
    ones = shrunk[0, 0] == 1.0
    assert bool(ones[12:48, 12:48].sum() > 0) and not bool(ones[:12].any() or ones[48:].any())
    assert not bool(ones[:, :12].any() or ones[:, 48:].any())
    # the hole is 2 px wider on every side; the uncertain pixel's value covers its neighbours
    assert float(shrunk[0, 0, 26:34, 26:34].max()) == 0.0 and float(shrunk[0, 0, 25, 25]) == 1.0
    assert torch.all(shrunk[0, 0, 18:23, 38:43] == mask[0, 0, 20, 40])
    assert float(shrunk[0, 0, 17, 37]) == 1.0

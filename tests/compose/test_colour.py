import pytest
import torch

from agecast.compose.colour import lab_to_rgb, rct, rct_lab, rgb_to_lab, transfer


def test_lab_round_trip() -> None:
    g = torch.Generator().manual_seed(1)
    rgb = torch.rand(2, 3, 16, 16, generator=g)
    assert torch.allclose(lab_to_rgb(rgb_to_lab(rgb)), rgb, atol=2e-3)
    white = rgb_to_lab(torch.ones(1, 3, 1, 1))
    assert abs(float(white[0, 0]) - 100) < 0.1 and abs(float(white[0, 1])) < 0.5


@pytest.mark.parametrize("method", [rct, rct_lab])
def test_rct_moves_the_face_to_the_plate_colour(method) -> None:  # type: ignore[no-untyped-def]
    g = torch.Generator().manual_seed(2)
    plate = torch.rand(1, 3, 32, 32, generator=g) * 0.2 + torch.tensor([0.7, 0.4, 0.3]).view(
        1, 3, 1, 1
    )
    model = torch.rand(1, 3, 32, 32, generator=g) * 0.2 + torch.tensor([0.3, 0.4, 0.7]).view(
        1, 3, 1, 1
    )
    out = method(model, plate)
    plate_mean = plate.mean(dim=(2, 3))
    assert (out.mean(dim=(2, 3)) - plate_mean).abs().max() < 0.03
    assert (model.mean(dim=(2, 3)) - plate_mean).abs().max() > 0.3


@pytest.mark.parametrize("method", [rct, rct_lab])
def test_rct_statistics_come_from_the_masked_region_only(method) -> None:  # type: ignore[no-untyped-def]
    plate = torch.zeros(1, 3, 8, 8)
    plate[..., :4] = 0.8  # left half bright (the face), right half black (background)
    mask = torch.zeros(1, 1, 8, 8)
    mask[..., :4] = 1
    out = method(torch.full((1, 3, 8, 8), 0.3), plate, mask)
    assert abs(float(out.mean()) - 0.8) < 0.02


def test_rct_keeps_detail_and_batches_faces_independently() -> None:
    g = torch.Generator().manual_seed(3)
    faces = torch.rand(2, 3, 16, 16, generator=g) * 0.5 + 0.25
    plates = torch.stack([torch.full((3, 16, 16), 0.2), torch.full((3, 16, 16), 0.8)])
    plates = plates + torch.rand(2, 3, 16, 16, generator=g) * 0.1
    out = rct(faces, plates)
    assert float(out[0].mean()) < 0.3 and float(out[1].mean()) > 0.7
    # a transfer to the face's own statistics changes nothing
    assert torch.allclose(rct(faces, faces), faces, atol=1e-4)
    assert transfer("none", faces, plates, None) is faces

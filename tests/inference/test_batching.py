"""Faces of several cameras in one call: a shared identity model gives each camera the rows it
would get alone, and a camera alone is held back only for the batching window."""

from __future__ import annotations

import threading
from pathlib import Path

import torch

from agecast.identities import IdentityModel, read_package
from agecast.inference.batching import BatchingBackend, BatchingModel
from agecast.inference.torch_backend import TorchBackend

from .conftest import SIZE, agecast_df_package


def _cameras(tmp_path: Path, n: int, window_s: float) -> list[IdentityModel]:
    package = read_package(agecast_df_package(tmp_path / "pkg"))
    backend = BatchingBackend(TorchBackend(device="cpu"), callers=n, window_s=window_s)
    return [IdentityModel.load(package, backend) for _ in range(n)]


def test_four_cameras_share_one_model_and_get_their_own_faces_back(tmp_path: Path) -> None:
    cameras = _cameras(tmp_path, 4, window_s=5.0)
    shared = cameras[0].model
    assert isinstance(shared, BatchingModel) and all(c.model is shared for c in cameras)
    alone = IdentityModel.load(read_package(tmp_path / "pkg"), TorchBackend(device="cpu"))
    # different face counts per camera, one call each, all at once
    crops = [
        torch.rand(n, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(n))
        for n in (1, 2, 1, 3)
    ]
    got: dict[int, torch.Tensor] = {}

    def camera(i: int) -> None:
        got[i] = cameras[i].infer(crops[i], 30 + 10 * i).faces

    threads = [threading.Thread(target=camera, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert shared.batches == [4]  # one run for the four cameras
    for i in range(4):
        want = alone.infer(crops[i], 30 + 10 * i).faces
        assert got[i].shape == want.shape
        assert float((got[i] - want).abs().max()) < 1e-5  # its own rows, its own age


def test_a_camera_alone_waits_only_the_window(tmp_path: Path) -> None:
    cameras = _cameras(tmp_path, 2, window_s=0.05)
    out = cameras[0].infer(torch.rand(1, 3, SIZE, SIZE), 40)  # returns: nobody else came
    assert out.faces.shape == (1, 3, SIZE, SIZE)
    assert cameras[0].model.batches == [1]  # type: ignore[attr-defined]


def test_the_shared_model_closes_with_its_last_camera(tmp_path: Path) -> None:
    cameras = _cameras(tmp_path, 3, window_s=0.01)
    shared = cameras[0].model
    assert isinstance(shared, BatchingModel)
    for camera in cameras[:2]:
        camera.close()
    assert cameras[2].infer(torch.rand(1, 3, SIZE, SIZE), 40).faces.shape[0] == 1
    cameras[2].close()
    assert shared.users == 0

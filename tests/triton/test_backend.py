"""The identity's model on a real Triton server: same pixels, fail-open, recovery."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import torch

from agecast.errors import BackendUnavailable
from agecast.faces.detector import make_detector
from agecast.faces.tracker import FaceTracker
from agecast.frames import Frame
from agecast.identities import IdentityModel, resolve
from agecast.inference import get_backend
from agecast.inference.triton_backend import TritonModel
from agecast.inference.triton_naming import TritonConfig
from agecast.pipeline.fx import FaceFX, FxState
from agecast.settings import REPO_MODELS_DIR
from agecast.triton.local import _backend_regions
from tests.pipeline.conftest import astronaut_frame
from tests.triton.conftest import start_server

pytest.importorskip("tritonclient.grpc", reason="tritonclient[grpc] is not installed")


def _fx(backend: Any, identity: str) -> FaceFX:
    model = IdentityModel.load(resolve(identity, [REPO_MODELS_DIR]), backend)
    detector = make_detector(get_backend("onnxruntime", threads=1))
    return FaceFX(FaceTracker(detector, detect_every=1, background=False), model)


def _frame(index: int) -> Frame:
    """Frame ``index``, stamped 1/30 s apart (the tracker's smoothing reads the stamps)."""
    ns = 1_000_000_000 + index * 33_333_333
    return Frame(index, astronaut_frame(2 * index), ns, ns)


def _triton_backend(url: str, **kw: Any) -> Any:
    return get_backend("triton", triton=TritonConfig(url=url, local="onnxruntime", **kw))


def _same_picture(local: FaceFX, remote: FaceFX, frames: int, tolerance: int) -> None:
    """Both FX on the same frames: every pixel of the aged pictures within ``tolerance``
    levels (of 255), the face replaced, and the frame outside it untouched by both."""
    for i in range(frames):
        raw = _frame(i).image
        a = local.process(_frame(i))
        b = remote.process(_frame(i))
        assert a.fx == b.fx == FxState.ON, (a.error, b.error)
        diff = (a.aged.int() - b.aged.int()).abs()
        assert int(diff.max()) <= tolerance
        face = (a.aged != raw).any(-1) | (b.aged != raw).any(-1)
        assert int(face.sum()) > 10_000  # the face was replaced
        assert torch.equal(a.aged[~face], raw[~face])  # and nothing else touched
        if tolerance:  # rounding differences, not a shifted picture
            assert float(diff[face].float().mean()) < 0.25


def test_aged_pixels_through_triton_match_in_process_within_one_level(triton: Any) -> None:
    """The demo re-ageing identity on Triton (shared memory, the compact wire: the crop and
    the face and mask back as 8-bit codes, the age maps and the delta as half floats) and
    in-process on the same frames: no pixel differs by more than 1 level of 255 (measured
    when this was written: mean 0.04 level over the face; the identity run in-process and on
    Triton is the same ONNX on the same onnxruntime, so the wire's rounding is all there is)."""
    local = _fx(get_backend("onnxruntime", threads=1), "demo-aged")
    remote = _fx(_triton_backend(triton.url, timeout_ms=5000), "demo-aged")
    model = remote.identity.model
    assert isinstance(model, TritonModel) and model.config.use_shm
    _same_picture(local, remote, 3, tolerance=1)
    assert model.stats.calls == 3 and model.stats.failures == 0
    assert {k: v.dtype for k, v in model._wire.items()} == {
        "face": "uint8",
        "face_out": "uint8",
        "mask_out": "uint8",
        "age_maps": "float16",
        "delta_out": "float16",
    }
    remote.identity.close()
    local.identity.close()


def test_float32_wire_pixels_equal_in_process_bit_for_bit(tmp_path: Path) -> None:
    """A repository written with ``--wire float32`` serves the checked ONNX as it is: the aged
    pictures are identical (tolerance 0: the same ONNX on the same onnxruntime, one thread
    each; Triton's ONNX Runtime or TensorRT backend on a GPU would differ by float rounding,
    not checked here)."""
    from agecast.triton.repository import RepoOptions, write_repository

    repo = tmp_path / "repo"
    options = RepoOptions(platform="python", kind="cpu", wire="float32")
    write_repository(repo, [resolve("demo-aged", [REPO_MODELS_DIR])], options)
    server = start_server(repo, tmp_path / "triton.log")
    try:
        local = _fx(get_backend("onnxruntime", threads=1), "demo-aged")
        remote = _fx(_triton_backend(server.url, timeout_ms=5000), "demo-aged")
        _same_picture(local, remote, 2, tolerance=0)
        assert remote.identity.model._wire == {}  # type: ignore[attr-defined]
        remote.identity.close()
        local.identity.close()
    finally:
        server.close()


def test_tensors_over_grpc_without_shared_memory_match_too(triton: Any) -> None:
    backend = _triton_backend(triton.url, timeout_ms=5000, shm="off")
    local = IdentityModel.load(
        resolve("testpattern", [REPO_MODELS_DIR]), get_backend("onnxruntime")
    )
    remote = IdentityModel.load(resolve("testpattern", [REPO_MODELS_DIR]), backend)
    crops = torch.rand(3, 3, remote.crop_size, remote.crop_size)
    got, want = remote.infer(crops), local.infer(crops)
    assert _within_codes(got.faces, want.faces)
    assert got.masks is not None and want.masks is not None
    assert _within_codes(got.masks, want.masks)
    assert not remote.model.config.use_shm  # type: ignore[attr-defined]
    remote.close()


def _within_codes(got: torch.Tensor, want: torch.Tensor) -> bool:
    """Equal within the 8-bit wire: the crop's rounding (half a code) carried through the
    test pattern's tint, and the result's own (half a code)."""
    return got.shape == want.shape and float((got - want).abs().max()) <= 1.5 / 255


def test_shared_memory_calls_follow_the_number_of_faces(triton: Any) -> None:
    """Faces come and go: calls of 1, 3, 1 and 2 faces through shared memory (the regions grow
    for 3 faces and the calls laid out for 1 face are laid out again) each match in-process,
    and each call's outputs stay as they were while later calls reuse the regions."""
    path = resolve("testpattern", [REPO_MODELS_DIR])
    local = IdentityModel.load(path, get_backend("onnxruntime"))
    remote = IdentityModel.load(path, _triton_backend(triton.url, timeout_ms=5000))
    assert isinstance(remote.model, TritonModel) and remote.model.config.use_shm
    kept = []
    for n in (1, 3, 1, 2):
        feeds = {"face": torch.rand(n, 3, remote.crop_size, remote.crop_size)}
        got, want = remote.model.run(feeds), local.model.run(feeds)
        assert set(got) == set(want) == {"aged", "mask"}
        for name in want:
            assert got[name].shape[0] == n and _within_codes(got[name], want[name].clamp(0, 1))
        kept.append((got, {k: v.clone() for k, v in got.items()}))
    for got, copy in kept:
        assert all(torch.equal(got[name], copy[name]) for name in copy)
    remote.close()
    local.close()


def test_killed_triton_shows_raw_flagged_then_recovers_after_restart(
    triton_repo: Path, tmp_path: Path
) -> None:
    """Triton is killed (SIGKILL) mid-stream: the very next frame's aged side is the raw
    frame, flagged FX ERROR and counted; the stream goes on raw; once Triton is back, the
    first call after the retry interval (250 ms) is aged again, without any restart of agecast."""
    server = start_server(triton_repo, tmp_path / "triton.log")
    try:
        fx = _fx(_triton_backend(server.url, timeout_ms=2000, retry_ms=250), "testpattern")
        model = fx.identity.model
        assert isinstance(model, TritonModel)
        for i in range(3):
            assert fx.process(_frame(i)).fx == FxState.ON
        assert server._proc is not None
        regions = _backend_regions(server._proc.pid)  # the backend's shared memory with stubs
        assert regions and all(r.exists() for r in regions)
        server.kill()
        assert not any(r.exists() for r in regions)  # a killed server's are removed for it
        failed = fx.process(_frame(3))
        assert failed.fx == FxState.ERROR
        assert torch.equal(failed.aged, _frame(3).image)  # raw pixels on the aged side
        assert "Triton" in (failed.error or "")
        for i in range(4, 8):  # while it is down: raw at once, no waiting on a dead server
            assert fx.process(_frame(i)).fx == FxState.ERROR
        assert fx.errors == 5 and model.stats.failures >= 1 and model.stats.skipped >= 1
        assert not model.connected
        server.start()  # same port, a fresh server: it knows none of our shared memory
        time.sleep(model.config.retry_ms / 1e3)
        back = fx.process(_frame(8))
        assert back.fx == FxState.ON, back.error
        assert model.connected and model.stats.connects == 2
        assert not torch.equal(back.aged, _frame(8).image)
        fx.identity.close()
    finally:
        server.close()


def test_a_call_over_the_timeout_is_a_raw_frame_and_the_link_comes_back(triton: Any) -> None:
    """Triton too slow for ``triton_timeout_ms`` (here 1 ms, less than any call takes): that
    frame is raw, flagged and counted as a timeout; with time enough again the next call after
    the retry interval reconnects to the same, still running server and the face is aged."""
    fx = _fx(_triton_backend(triton.url, timeout_ms=5000, retry_ms=50), "testpattern")
    model = fx.identity.model
    assert isinstance(model, TritonModel)
    assert fx.process(_frame(0)).fx == FxState.ON
    model.config = replace(model.config, timeout_ms=1)
    slow = fx.process(_frame(1))
    assert slow.fx == FxState.ERROR and torch.equal(slow.aged, _frame(1).image)
    assert model.stats.timeouts == 1 and not model.connected
    model.config = replace(model.config, timeout_ms=5000)
    time.sleep(model.config.retry_ms / 1e3)
    back = fx.process(_frame(2))
    assert back.fx == FxState.ON, back.error
    assert model.stats.connects == 2
    fx.identity.close()


def test_a_hung_triton_costs_one_timeout_then_frames_go_raw_until_it_answers(
    triton_repo: Path, tmp_path: Path
) -> None:
    """Triton stops answering with its connection open (SIGSTOP): the call in flight gives up
    at the timeout (its request on the stream is cancelled, nothing waits on the hung server),
    the frame is raw and counted as a timeout, the next frames are raw at once, and when the
    server goes on the first call after the retry interval is aged again."""
    server = start_server(triton_repo, tmp_path / "triton.log")
    try:
        fx = _fx(_triton_backend(server.url, timeout_ms=1000, retry_ms=1000), "testpattern")
        model = fx.identity.model
        assert isinstance(model, TritonModel)
        assert fx.process(_frame(0)).fx == FxState.ON
        server.freeze()
        hung = fx.process(_frame(1))
        assert hung.fx == FxState.ERROR and torch.equal(hung.aged, _frame(1).image)
        assert model.stats.timeouts == 1 and not model.connected
        assert fx.process(_frame(2)).fx == FxState.ERROR
        assert model.stats.skipped == 1
        server.freeze(False)
        time.sleep(model.config.retry_ms / 1e3)
        back = fx.process(_frame(3))
        assert back.fx == FxState.ON, back.error
        assert model.stats.connects == 2
        fx.identity.close()
    finally:
        server.freeze(False)
        server.close()


def test_identity_loads_while_triton_is_down_and_frames_go_raw() -> None:
    """A node started before Triton: the identity loads (its tensors come from the ONNX file),
    its frames are raw and flagged, nothing raises out of the FX."""
    from agecast.triton.local import free_port

    fx = _fx(_triton_backend(f"grpc://127.0.0.1:{free_port()}", timeout_ms=200), "testpattern")
    result = fx.process(_frame(0))
    assert result.fx == FxState.ERROR and "cannot reach model agecast_testpattern" in (
        result.error or ""
    )
    assert torch.equal(result.aged, _frame(0).image)
    fx.identity.close()


def test_triton_needs_a_grpc_url() -> None:
    with pytest.raises(BackendUnavailable, match="--triton-url"):
        get_backend("triton", triton=TritonConfig(url=""))
    with pytest.raises(BackendUnavailable, match="gRPC only"):
        get_backend("triton", triton=TritonConfig(url="http://127.0.0.1:8000"))


def test_auto_never_picks_triton() -> None:
    from agecast.inference.registry import available_backends

    assert "triton" in available_backends()
    assert get_backend("auto").name != "triton"

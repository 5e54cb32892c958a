"""The compact wire: which tensors travel as 8-bit codes or half floats, the wrapped model's
conversions (run in onnxruntime, no server) and the node's, and that the two agree."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime
import pytest
import torch

from agecast.identities import IdentityModel, resolve
from agecast.inference.base import TensorSpec
from agecast.inference.triton_backend import onnx_specs
from agecast.inference.triton_naming import TritonConfig
from agecast.inference.triton_wire import WireTensor, plan_wire, version_wire, wire_parameter
from agecast.manifest import Normalisation
from agecast.settings import REPO_MODELS_DIR
from agecast.triton.repository import output_specs
from agecast.triton.wire_graph import model_opset, wrap_for_wire

pytest.importorskip("tritonclient.grpc", reason="tritonclient[grpc] is not installed")


def _wire_of(identity: str, kind: str = "compact") -> tuple[Any, dict[str, WireTensor]]:
    package = resolve(identity, [REPO_MODELS_DIR])
    inputs, _ = onnx_specs(package.model_path)
    outputs = output_specs(package.model_path, inputs)
    graph = onnx.load(str(package.model_path))
    return package, plan_wire(package.manifest, inputs, outputs, kind, model_opset(graph))  # type: ignore[arg-type]


def test_pictures_travel_as_8_bit_codes_maps_as_half_floats_values_as_they_are() -> None:
    _, aged = _wire_of("demo-aged")
    assert {k: v.dtype for k, v in aged.items()} == {
        "face": "uint8",
        "face_out": "uint8",
        "mask_out": "uint8",
        "age_maps": "float16",
        "delta_out": "float16",
    }
    _, swap = _wire_of("demo-swap")
    assert "age" not in swap  # one number per face: converting it would save nothing
    assert _wire_of("demo-aged", "float32")[1] == {}


def test_codes_span_the_pixel_range_after_the_identitys_normalisation() -> None:
    """A model fed (x − mean) / std per channel: code 0 is a 0 pixel, code 255 a 1 pixel, on
    each channel; BGR models index mean and std in their own channel order."""
    package, _ = _wire_of("testpattern")
    norm = Normalisation(layout="NHWC", channels="BGR", mean=(0.5, 0.4, 0.3), std=(0.5, 0.2, -0.25))
    manifest = package.manifest.model_copy(update={"normalisation": norm})
    face = TensorSpec("face", (None, 256, 256, 3))
    wire = plan_wire(manifest, [face], [TensorSpec("aged", (None, 256, 256, 3))], "compact", 17)
    entry = wire["face"]
    assert entry.axis == 3 and entry.lo == pytest.approx((-1.0, -2.0, -2.8))
    assert [lo + 255 * s for lo, s in zip(entry.lo, entry.step, strict=True)] == pytest.approx(
        [1.0, 3.0, 1.2]
    )
    old = plan_wire(manifest, [face], [], "compact", 10)  # no ONNX Round before opset 11
    assert old["face"].dtype == "float16"


def test_the_wrapped_model_converts_as_the_node_does() -> None:
    """The demo re-ageing identity wrapped for the wire, run in onnxruntime on the node's
    codes, gives codes and half floats that the node turns back into the original model's
    outputs on the decoded inputs (within half a code, and half-float rounding)."""
    from agecast.inference.triton_backend import TritonModel

    package, wire = _wire_of("demo-aged")
    original = onnx.load(str(package.model_path))
    wrapped = wrap_for_wire(original, wire)
    onnx.checker.check_model(wrapped)
    inputs, _ = onnx_specs(package.model_path)
    node = TritonModel(TritonConfig(url="grpc://127.0.0.1:1"), "m", 1, inputs, [], "test")
    node._wire = wire  # what it reads from the served config when it connects
    torch.manual_seed(0)
    crop = torch.rand(2, 3, 256, 256)
    maps = torch.rand(2, 2, 256, 256) * 0.8
    codes = torch.empty(crop.shape, dtype=torch.uint8)
    node._encode("face", crop, codes)
    half = torch.empty(maps.shape, dtype=torch.float16)
    node._encode("age_maps", maps, half)
    assert (node._decode("face", codes) - crop).abs().max() <= 0.5 / 255 + 1e-6

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    ref = onnxruntime.InferenceSession(original.SerializeToString(), options)
    got = onnxruntime.InferenceSession(wrapped.SerializeToString(), options)
    want = ref.run(
        None, {"face": node._decode("face", codes).numpy(), "age_maps": half.float().numpy()}
    )
    names = [o.name for o in ref.get_outputs()]
    out = got.run(names, {"face": codes.numpy(), "age_maps": half.numpy()})
    for name, w, g in zip(names, want, out, strict=True):
        assert g.dtype == (np.uint8 if wire[name].dtype == "uint8" else np.float16)
        back = node._decode(name, torch.from_numpy(g))
        expected = torch.from_numpy(w)
        if wire[name].dtype == "uint8":
            expected = expected.clamp(0, 1)  # what the node clamps to anyway
            assert (back - expected).abs().max() <= 0.5 / 255 + 1e-6, name
        else:
            assert torch.allclose(back, expected, rtol=1e-3, atol=1e-4), name


def test_the_node_encodes_below_range_values_as_code_0_and_non_uniform_channels() -> None:
    from agecast.inference.triton_backend import TritonModel

    node = TritonModel(TritonConfig(url="grpc://127.0.0.1:1"), "m", 1, [], [], "test")
    node._wire = {
        "a": WireTensor("uint8", (0.0,), (1 / 255,)),
        "b": WireTensor("uint8", (-1.0, 0.0, -2.0), (2 / 255, 1 / 255, 4 / 255), 1),
    }
    x = torch.tensor([-0.2, 0.0, 0.6, 1.0, 1.3]).reshape(1, 5)
    out = torch.empty(x.shape, dtype=torch.uint8)
    node._encode("a", x, out)
    assert out.tolist() == [[0, 0, 153, 255, 255]]  # below 0: code 0, not |x|
    y = torch.stack([torch.full((2, 2), v) for v in (0.0, 0.5, 1.0)])[None]
    codes = torch.empty(y.shape, dtype=torch.uint8)
    node._encode("b", y, codes)
    half_step = torch.tensor([1 / 255, 0.5 / 255, 2 / 255]).reshape(1, 3, 1, 1)
    assert ((node._decode("b", codes) - y).abs() <= half_step + 1e-6).all()


def test_a_served_config_gives_each_version_its_wire() -> None:
    wire = {"face": WireTensor("uint8", (0.0,), (1 / 255,))}
    text = wire_parameter({7: wire, 9: {}})
    assert version_wire(text, 7, "m") == wire
    assert version_wire(text, 9, "m") == {} and version_wire(None, 7, "m") == {}


def test_a_dfm_through_triton_matches_in_process(tmp_path: Path, agecast_state_dir: Path) -> None:
    """An imported DeepFaceLab model (NHWC, BGR, a fixed-size morph input, so Triton does not
    batch it) on the real server: its face and mask travel as codes along the channel-last axis,
    its other mask as half floats, the morph factor as it is; the results match in-process
    within the wire's rounding."""
    from agecast.identities.dfm import import_dfm
    from agecast.identities.package import read_package
    from agecast.inference import get_backend
    from agecast.triton.repository import RepoOptions, write_repository
    from tests.identities.test_dfm import _consent, stand_in_dfm
    from tests.triton.conftest import start_server

    dfm = tmp_path / "Jane_Doe.dfm"
    dfm.write_bytes(stand_in_dfm().SerializeToString())
    folder = import_dfm(dfm, tmp_path / "jane", actor="Test Actor", consent=_consent())
    package = read_package(folder)
    repo = tmp_path / "repo"
    write_repository(repo, [package], RepoOptions(platform="python", kind="cpu"))
    server = start_server(repo, tmp_path / "triton.log")
    try:
        backend = get_backend(
            "triton", triton=TritonConfig(url=server.url, local="onnxruntime", timeout_ms=5000)
        )
        remote = IdentityModel.load(package, backend)
        local = IdentityModel.load(package, get_backend("onnxruntime"))
        crops = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(3))
        got, want = remote.infer(crops), local.infer(crops)
        wire = remote.model._wire  # type: ignore[attr-defined]  # read on connecting
        assert {k: (v.dtype, v.axis) for k, v in wire.items()} == {
            "in_face:0": ("uint8", 3),
            "out_celeb_face:0": ("uint8", 3),
            "out_celeb_face_mask:0": ("uint8", 1),
            "out_face_mask:0": ("float16", 1),
        }
        assert float((got.faces - want.faces).abs().max()) <= 1.5 / 255
        assert got.masks is not None and want.masks is not None
        assert float((got.masks - want.masks).abs().max()) <= 0.5 / 255 + 1e-6
        remote.close()
        local.close()
    finally:
        server.close()

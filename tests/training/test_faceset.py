"""Facesets: extraction from clips, folders and URIs (detect, align, filter, resume), the on-disk
format other tools read, and the errors a user sees."""

from __future__ import annotations

import inspect
import json
import math
from collections.abc import Iterator
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from click.testing import Result
from PIL import Image, ImageFilter
from typer.testing import CliRunner

from agecast.cli import app
from agecast.errors import FacesetError, SourceError
from agecast.faces.align import estimate_affine, template_points, transform_points
from agecast.faces.yunet import YuNetDetector
from agecast.inference import get_backend
from agecast.sources.astronaut import FACE_LANDMARKS5, astronaut_rgb
from agecast.sources.demo import DemoRenderer, demo_truth
from agecast.training.faceset import (
    INDEX_NAME,
    FaceRecord,
    Faceset,
    FacesetIndex,
    extract,
)
from agecast.training.filters import NOSE_DEPTH, NOSE_DROP, estimate_pose

CLIP_FRAMES = 8
CLIP_STEP = 20  # clip frame i is demo frame i · CLIP_STEP: the head in several positions
# YuNet's eyes and nose land within a few pixels of the hand labels; its mouth corners sit a
# little inside the labelled ones (a convention, not an error), so they get more room.
EYE_NOSE_TOLERANCE_PX = 6.0
MOUTH_TOLERANCE_PX = 12.0
RECORD_KEYS = {
    "file", "frame", "face", "landmarks5", "frame_landmarks5", "score", "sharpness", "yaw",
    "pitch", "age", "pair_of",
}  # fmt: skip
INDEX_KEYS = {
    "format", "version", "size", "template", "source", "params", "frames_done", "complete",
    "dropped", "faces",
}  # fmt: skip


def write_clip(path: Path, pictures: list[np.ndarray], fps: int = 30) -> Path:
    """An H.264 clip of ``pictures`` (HWC uint8 RGB)."""
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=fps, options={"crf": "18"})
        stream.height, stream.width = pictures[0].shape[:2]
        stream.pix_fmt = "yuv420p"
        for picture in pictures:
            out.mux(stream.encode(av.VideoFrame.from_ndarray(picture, format="rgb24")))
        out.mux(stream.encode(None))
    return path


def blurred(picture: np.ndarray, radius: float) -> np.ndarray:
    return np.asarray(Image.fromarray(picture).filter(ImageFilter.GaussianBlur(radius)))


def truth(demo_index: int) -> np.ndarray:
    """Hand-labelled astronaut landmarks carried into demo frame ``demo_index``."""
    points = np.hstack([np.array(FACE_LANDMARKS5), np.ones((5, 1))])
    return points @ demo_truth(demo_index).T


def assert_near_labels(found: np.ndarray, labels: np.ndarray) -> None:
    errors = np.linalg.norm(found - labels, axis=1)
    assert errors[:3].max() < EYE_NOSE_TOLERANCE_PX, errors
    assert errors[3:].max() < MOUTH_TOLERANCE_PX, errors


@pytest.fixture(scope="module")
def detector() -> Iterator[YuNetDetector]:
    detector = YuNetDetector(get_backend("onnxruntime", threads=1))
    yield detector
    detector.close()


@pytest.fixture(scope="module")
def demo_frames() -> list[np.ndarray]:
    renderer = DemoRenderer()
    return [renderer.render(i * CLIP_STEP) for i in range(CLIP_FRAMES)]


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory, demo_frames: list[np.ndarray]) -> Path:
    folder = tmp_path_factory.mktemp("clips")
    write_clip(folder / "moving.mp4", demo_frames)
    write_clip(folder / "still.mp4", [demo_frames[0]] * 6)
    sharp_and_soft = [blurred(f, 3.0) if i % 2 else f for i, f in enumerate(demo_frames[:6])]
    write_clip(folder / "blur.mp4", sharp_and_soft)
    write_clip(folder / "flat.mp4", [np.full((240, 320, 3), 120, np.uint8)] * 4)
    return folder


def test_extract_finds_the_face_in_every_frame(
    clips: Path, tmp_path: Path, detector: YuNetDetector
) -> None:
    out = tmp_path / "fs"
    report = extract(str(clips / "moving.mp4"), out, dedupe=0, detector=detector)
    assert report.complete and report.kept == CLIP_FRAMES == report.frames_done
    assert report.dropped == {"no_face": 0, "blur": 0, "pose": 0, "duplicate": 0}

    data = json.loads((out / INDEX_NAME).read_text())
    assert set(data) == INDEX_KEYS and data["format"] == "agecast-faceset"
    assert (data["version"], data["size"], data["template"]) == (1, 256, "ffhq")
    assert data["source"] == str(clips / "moving.mp4")
    assert data["params"]["dedupe"] == 0 and data["params"]["detector"] == "yunet"
    assert {"every", "max_faces", "min_sharpness", "max_yaw", "max_pitch"} <= set(data["params"])
    assert [f["frame"] for f in data["faces"]] == list(range(CLIP_FRAMES))
    template = template_points("ffhq", 256)
    for face in data["faces"]:
        assert set(face) == RECORD_KEYS and face["age"] is None and face["pair_of"] is None
        assert face["file"] == f"f{face['frame']:06d}_0.png"
        frame_points = np.array(face["frame_landmarks5"])
        assert_near_labels(frame_points, truth(face["frame"] * CLIP_STEP))
        # the crop landmarks are the frame landmarks through the alignment, near the template
        affine = estimate_affine(torch.tensor(frame_points, dtype=torch.float32), template)
        expected = transform_points(affine, torch.tensor(frame_points, dtype=torch.float32))
        np.testing.assert_allclose(face["landmarks5"], expected.numpy(), atol=0.01)
        assert np.abs(np.array(face["landmarks5"]) - template.numpy()).max() < 0.04 * 256
        assert abs(face["yaw"]) < 20 and abs(face["pitch"]) < 25 and face["score"] > 0.8
        with Image.open(out / face["file"]) as picture:
            assert (picture.mode, picture.size) == ("RGB", (256, 256))

    faceset = Faceset.load(out)
    assert len(faceset) == CLIP_FRAMES and faceset.size == 256 and faceset.template == "ffhq"
    images = faceset.images()
    assert images.shape == (CLIP_FRAMES, 256, 256, 3) and images.dtype == np.uint8
    np.testing.assert_array_equal(images[3], faceset.image(3))
    assert faceset.records[3].file == "f000003_0.png"


def test_uri_sources_are_read_every_frame(
    clips: Path, tmp_path: Path, detector: YuNetDetector
) -> None:
    uri = (clips / "moving.mp4").as_uri()
    report = extract(uri, tmp_path / "file", dedupe=0, limit=3, detector=detector)
    assert (report.kept, report.frames_done, report.complete) == (3, 3, False)
    pattern = extract("testpattern:640x360", tmp_path / "tp", dedupe=0, limit=4, detector=detector)
    assert pattern.kept == 4 and not pattern.complete
    with pytest.raises(FacesetError, match="never ends: give --limit"):
        extract("testpattern:640x360", tmp_path / "endless", detector=detector)


def test_blur_filter_drops_the_blurred_frames(
    clips: Path, tmp_path: Path, detector: YuNetDetector
) -> None:
    report = extract(str(clips / "blur.mp4"), tmp_path / "fs", dedupe=0, detector=detector)
    assert report.dropped["blur"] == 3 and report.kept == 3
    faceset = Faceset.load(tmp_path / "fs")
    assert [r.frame for r in faceset.records] == [0, 2, 4]
    assert min(r.sharpness for r in faceset.records) > 10.0


def test_still_clip_keeps_one_face(clips: Path, tmp_path: Path, detector: YuNetDetector) -> None:
    report = extract(str(clips / "still.mp4"), tmp_path / "fs", detector=detector)
    assert report.kept == 1 and report.dropped["duplicate"] == 5
    everything = extract(str(clips / "still.mp4"), tmp_path / "all", dedupe=0, detector=detector)
    assert everything.kept == 6


def test_every_nth_frame(clips: Path, tmp_path: Path, detector: YuNetDetector) -> None:
    report = extract(
        str(clips / "moving.mp4"), tmp_path / "fs", every=3, dedupe=0, detector=detector
    )
    assert report.frames_done == CLIP_FRAMES
    assert [r.frame for r in Faceset.load(tmp_path / "fs").records] == [0, 3, 6]


def test_resume_continues_without_duplicating(
    clips: Path, tmp_path: Path, detector: YuNetDetector
) -> None:
    source, out = str(clips / "moving.mp4"), tmp_path / "fs"
    first = extract(source, out, dedupe=0.01, limit=3, detector=detector)
    assert (first.frames_done, first.kept, first.complete) == (3, 3, False)
    early = {p.name: p.read_bytes() for p in out.glob("*.png")}
    assert extract(source, out, dedupe=0.01, limit=3, detector=detector).nothing_to_do

    second = extract(source, out, dedupe=0.01, detector=detector)
    assert second.resumed and second.complete and second.frames_this_run == CLIP_FRAMES - 3
    assert second.kept == CLIP_FRAMES and second.kept_this_run == CLIP_FRAMES - 3
    files = sorted(p.name for p in out.glob("*.png"))
    assert files == [f"f{i:06d}_0.png" for i in range(CLIP_FRAMES)]
    assert all((out / name).read_bytes() == data for name, data in early.items())

    # the same as one uninterrupted run
    whole = extract(source, tmp_path / "whole", dedupe=0.01, detector=detector)
    resumed_index = Faceset.load(out).index
    assert resumed_index.faces == Faceset.load(tmp_path / "whole").index.faces
    assert resumed_index.dropped.model_dump() == whole.dropped

    again = extract(source, out, dedupe=0.01, detector=detector)
    assert again.nothing_to_do and again.complete and again.kept == CLIP_FRAMES


def test_interrupted_run_keeps_its_progress(
    clips: Path, tmp_path: Path, detector: YuNetDetector
) -> None:
    source, out = str(clips / "moving.mp4"), tmp_path / "fs"

    def stop_at_four(frames: int, total: int | None, kept: int) -> None:
        assert total == CLIP_FRAMES
        if frames == 4:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        extract(source, out, dedupe=0, detector=detector, progress=stop_at_four)
    saved = json.loads((out / INDEX_NAME).read_text())
    assert saved["frames_done"] == 4 and len(saved["faces"]) == 4 and not saved["complete"]
    (out / "f000006_0.png").write_bytes(b"left by a crash before the index was saved")

    report = extract(source, out, dedupe=0, detector=detector)
    assert report.complete and report.kept == CLIP_FRAMES
    assert len(list(out.glob("*.png"))) == CLIP_FRAMES
    Faceset.load(out).images()  # every picture readable, the stray one rewritten


def test_resume_with_other_options_is_refused(
    clips: Path, tmp_path: Path, detector: YuNetDetector
) -> None:
    extract(str(clips / "moving.mp4"), tmp_path / "fs", limit=2, detector=detector)
    with pytest.raises(FacesetError, match=r"min_sharpness=10\.0.*min_sharpness=3\.0"):
        extract(str(clips / "moving.mp4"), tmp_path / "fs", min_sharpness=3.0, detector=detector)
    with pytest.raises(FacesetError, match="size=256.*size=128"):
        extract(str(clips / "moving.mp4"), tmp_path / "fs", size=128, detector=detector)


def _squeezed_right(picture: np.ndarray, factor: float, split: int) -> np.ndarray:
    """The picture with everything right of column ``split`` squeezed horizontally: the nose
    moves off the eyes' midline, as when a head turns."""
    width = picture.shape[1]
    columns = np.arange(width, dtype=np.float64)
    source = np.where(columns < split, columns, split + (columns - split) / factor)
    source = np.clip(source, 0, width - 1)
    low = np.floor(source).astype(int)
    high = np.minimum(low + 1, width - 1)
    weight = (source - low)[None, :, None]
    mixed = picture[:, low] * (1 - weight) + picture[:, high] * weight
    return np.ascontiguousarray(mixed.round().astype(np.uint8))


def test_folder_of_pictures(tmp_path: Path, detector: YuNetDetector) -> None:
    folder = tmp_path / "stills"
    folder.mkdir()
    astronaut = astronaut_rgb()
    Image.fromarray(astronaut).save(folder / "a.png")
    Image.fromarray(np.full((200, 300, 3), 90, np.uint8)).save(folder / "b.jpg")
    (folder / "c.png").write_bytes(b"not a picture")
    turned = np.ascontiguousarray(_squeezed_right(astronaut, 0.35, 225)[:, ::-1])
    Image.fromarray(turned).save(folder / "d.PNG")
    (folder / "notes.txt").write_text("ignored")

    report = extract(str(folder), tmp_path / "fs", max_yaw=25, detector=detector)
    assert report.complete and report.frames_done == 4
    assert report.dropped == {"no_face": 2, "blur": 0, "pose": 1, "duplicate": 0}
    (face,) = Faceset.load(tmp_path / "fs").records
    assert face.frame == 0 and abs(face.yaw) < 20
    assert_near_labels(np.array(face.frame_landmarks5), np.array(FACE_LANDMARKS5))

    loose = extract(str(folder), tmp_path / "loose", max_yaw=60, detector=detector)
    assert loose.kept == 2
    assert Faceset.load(tmp_path / "loose").records[1].yaw < -25  # turned to the image's left


@pytest.mark.parametrize("roll", [0.0, 25.0, -160.0])
def test_pose_estimate_on_projected_faces(roll: float) -> None:
    """Five points of a face with the estimate's proportions, turned in 3D and projected:
    yaw and pitch come back exactly, whatever the roll."""
    arcface = template_points("arcface_112", 112).double()
    half_eye = float(arcface[1, 0] - arcface[0, 0]) / 2
    eye_y = float(arcface[:2, 1].mean())
    height = (float(arcface[3:, 1].mean()) - eye_y) / half_eye
    mouth = float(arcface[4, 0] - arcface[3, 0]) / 2 / half_eye
    face = torch.tensor(
        [
            [-1.0, 0.0, 0.0],
            [1.0, 0.0, 0.0],
            [0.0, NOSE_DROP * height, NOSE_DEPTH],
            [-mouth, height, 0.0],
            [mouth, height, 0.0],
        ],
        dtype=torch.float64,
    )

    def project(yaw: float, pitch: float) -> torch.Tensor:
        y, p, r = (math.radians(a) for a in (yaw, pitch, roll))
        turn = torch.tensor(
            [[math.cos(y), 0, math.sin(y)], [0, 1, 0], [-math.sin(y), 0, math.cos(y)]],
            dtype=torch.float64,
        )  # +yaw: the nose (z toward the camera) goes to the image's right
        tilt = torch.tensor(
            [[1, 0, 0], [0, math.cos(p), -math.sin(p)], [0, math.sin(p), math.cos(p)]],
            dtype=torch.float64,
        )  # +pitch: the nose goes up (image y points down)
        spin = torch.tensor(
            [[math.cos(r), -math.sin(r)], [math.sin(r), math.cos(r)]], dtype=torch.float64
        )
        points = (face @ (turn @ tilt).T)[:, :2] @ spin.T  # nod, then turn
        return points * 30.0 + torch.tensor([400.0, 300.0], dtype=torch.float64)

    for yaw in (-60.0, -30.0, 0.0, 15.0, 45.0):
        assert estimate_pose(project(yaw, 0.0)) == pytest.approx((yaw, 0.0), abs=0.01)
    for pitch in (-30.0, -10.0, 20.0):
        assert estimate_pose(project(0.0, pitch)) == pytest.approx((0.0, pitch), abs=0.01)
    for yaw, pitch in ((30.0, 15.0), (-40.0, -20.0), (45.0, -25.0), (-20.0, 30.0)):
        assert estimate_pose(project(yaw, pitch)) == pytest.approx((yaw, pitch), abs=0.01)
    degenerate = torch.tensor([[5.0, 5.0]] * 5)
    assert estimate_pose(degenerate) == (90.0, 90.0)


def test_extraction_errors(clips: Path, tmp_path: Path, detector: YuNetDetector) -> None:
    with pytest.raises(SourceError, match="nope.mp4 not found"):
        extract(str(tmp_path / "nope.mp4"), tmp_path / "a", detector=detector)
    assert not (tmp_path / "a").exists()  # nothing written for a source that cannot open

    with pytest.raises(FacesetError, match=r"no face found in .*flat\.mp4 \(4 frames read\)"):
        extract(str(clips / "flat.mp4"), tmp_path / "flat", detector=detector)
    saved = json.loads((tmp_path / "flat" / INDEX_NAME).read_text())
    assert saved["complete"] and saved["dropped"]["no_face"] == 4 and saved["faces"] == []
    with pytest.raises(FacesetError, match="is empty: run `agecast faceset extract`"):
        Faceset.load(tmp_path / "flat")

    with pytest.raises(FacesetError, match="every face .* was dropped"):
        extract(str(clips / "still.mp4"), tmp_path / "sharp", min_sharpness=1e6, detector=detector)

    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FacesetError, match="holds no .jpg/.jpeg/.png pictures"):
        extract(str(empty), tmp_path / "b", detector=detector)
    with pytest.raises(FacesetError, match="is the source folder itself"):
        extract(str(empty), empty, detector=detector)
    with pytest.raises(FacesetError, match="unknown --template 'nope'"):
        extract(str(clips / "still.mp4"), tmp_path / "c", template="nope", detector=detector)


def _record(name: str, **changes: object) -> FaceRecord:
    points = [(1.0, 2.0)] * 5
    fields: dict[str, object] = {
        "file": name, "frame": 0, "face": 0, "landmarks5": points, "frame_landmarks5": points,
        "score": 0.9, "sharpness": 50.0, "yaw": 1.0, "pitch": -2.0,
    }  # fmt: skip
    return FaceRecord.model_validate({**fields, **changes})


def test_write_and_load_round_trip(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    pictures = {f"x{i}.png": rng.integers(0, 256, (32, 32, 3), dtype=np.uint8) for i in range(3)}
    index = FacesetIndex(
        size=32,
        template="ffhq",
        source="derived",
        faces=[_record(n, age=70.0, pair_of=f"f{i:06d}_0.png") for i, n in enumerate(pictures)],
    )
    written = Faceset.write(tmp_path / "fs", index, pictures)
    loaded = Faceset.load(tmp_path / "fs")
    assert loaded.index == written.index == index
    assert [r.age for r in loaded.records] == [70.0] * 3
    assert loaded.records[1].pair_of == "f000001_0.png"
    for i, name in enumerate(pictures):
        np.testing.assert_array_equal(loaded.image(i), pictures[name])
    assert set(json.loads((tmp_path / "fs" / INDEX_NAME).read_text())) == INDEX_KEYS
    assert not [p for p in (tmp_path / "fs").iterdir() if p.name.startswith(".")]

    with pytest.raises(FacesetError, match="stray.png are not listed"):
        Faceset.write(tmp_path / "other", index, {**pictures, "stray.png": pictures["x0.png"]})
    with pytest.raises(FacesetError, match=r"x0.png is uint8 \(16, 16, 3\)"):
        Faceset.write(
            tmp_path / "other", index, {**pictures, "x0.png": pictures["x0.png"][:16, :16]}
        )
    assert not (tmp_path / "other").exists()


def test_load_errors_name_the_problem(tmp_path: Path) -> None:
    with pytest.raises(FacesetError, match="faceset folder .*missing.* does not exist"):
        Faceset.load(tmp_path / "missing")
    folder = tmp_path / "fs"
    folder.mkdir()
    with pytest.raises(FacesetError, match="has no faceset.json, so it is not a faceset"):
        Faceset.load(folder)
    (folder / INDEX_NAME).write_text("{not json")
    with pytest.raises(FacesetError, match=r"not valid JSON \(line 1"):
        Faceset.load(folder)

    picture = np.zeros((32, 32, 3), np.uint8)
    Faceset.write(
        folder,
        FacesetIndex(size=32, template="ffhq", source="s", faces=[_record("a.png")]),
        {"a.png": picture},
    )
    good = json.loads((folder / INDEX_NAME).read_text())

    def broken(change: dict[str, object]) -> str:
        data = json.loads(json.dumps(good))
        for path, value in change.items():
            target = data
            *parents, last = path.split(".")
            for key in parents:
                target = target[int(key)] if key.isdigit() else target[key]
            target[last] = value
        (folder / INDEX_NAME).write_text(json.dumps(data))
        with pytest.raises(FacesetError) as caught:
            Faceset.load(folder)
        return str(caught.value)

    assert "faces.0.landmarks5" in broken({"faces.0.landmarks5": [[1, 2]] * 4})
    assert "faces.0.extra" in broken({"faces.0.extra": 1})
    assert "template" in broken({"template": "nope"})
    assert "must be a file name inside the faceset folder" in broken({"faces.0.file": "../a.png"})
    assert "format is 'other'" in broken({"format": "other"})
    assert "version 2" in broken({"version": 2})
    assert "image b.png listed in faceset.json is missing" in broken({"faces.0.file": "b.png"})
    (folder / INDEX_NAME).write_text(json.dumps(good))
    (folder / "a.png").write_bytes(b"garbage")
    with pytest.raises(FacesetError, match="image a.png cannot be read"):
        Faceset.load(folder)
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(folder / "a.png")
    with pytest.raises(FacesetError, match="image a.png is 16×16, the faceset's size is 32"):
        Faceset.load(folder)


runner = CliRunner()


def _said(result: Result) -> str:
    return " ".join(result.output.split())  # rich wraps lines at the terminal width


def test_cli_extracts_and_says_when_done(clips: Path, tmp_path: Path) -> None:
    args = ["faceset", "extract", "--source", str(clips / "moving.mp4"), "--out", str(tmp_path)]
    first = runner.invoke(app, [*args, "--dedupe", "0", "--limit", "4", "--backend", "onnxruntime"])
    assert first.exit_code == 0, first.output
    assert "kept 4 faces from 4 frames (not finished: run again to continue)" in _said(first)
    assert "dropped no_face 0, blur 0, pose 0, duplicate 0" in _said(first)
    done = runner.invoke(app, [*args, "--dedupe", "0", "--backend", "onnxruntime"])
    assert done.exit_code == 0 and f"kept {CLIP_FRAMES} faces" in _said(done)
    again = runner.invoke(app, [*args, "--dedupe", "0"])
    assert again.exit_code == 0 and "already complete: nothing to do" in _said(again)
    missing = runner.invoke(
        app, ["faceset", "extract", "--source", "nope.mov", "--out", str(tmp_path / "x")]
    )
    assert missing.exit_code == 2 and "nope.mov" in _said(missing)


def test_cli_defaults_are_the_library_defaults() -> None:
    from agecast.cli.faceset import faceset_extract

    library = inspect.signature(extract).parameters
    for name, parameter in inspect.signature(faceset_extract).parameters.items():
        if parameter.default is not inspect.Parameter.empty:
            assert library[name].default == parameter.default, name

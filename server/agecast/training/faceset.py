"""Facesets: aligned face crops from footage, the training data of an identity.

Make one from a video file, any source URI (``demo``, ``testpattern:…``, ``file:///…``, a camera
or stream) or a folder of ``.jpg``/``.png`` pictures::

    agecast faceset extract --source take.mp4 --out facesets/actor
    agecast faceset extract --source stills/ --out facesets/actor-stills --size 320
    agecast faceset extract --source demo --out facesets/demo --dedupe 0

Each frame goes through the live path's detector and alignment (``estimate_affine`` onto
``template_points(template, size)``, then ``warp_crop``); the largest ``max_faces`` faces are
cropped and kept unless the pose is extreme, the crop is blurred, or it nearly repeats a face
kept just before (:mod:`agecast.training.filters`). Re-running the same command continues after
the last frame done and never writes a face twice; a finished faceset says so and does nothing.
Pictures of a folder are its frames in name order.

On disk (other tools read exactly this)::

    DIR/f000123_0.png   RGB, size × size: frame 123, face 0 (largest first)
    DIR/faceset.json    {"format": "agecast-faceset", "version": 1, "size", "template",
                         "source", "params" (every filter setting), "frames_done",
                         "complete", "dropped": {"no_face", "blur", "pose", "duplicate"},
                         "faces": [{"file", "frame", "face", "landmarks5" (crop pixels),
                                    "frame_landmarks5" (source pixels), "score",
                                    "sharpness", "yaw", "pitch", "age", "pair_of"}]}

``no_face`` counts frames without a face (or pictures that cannot be read); ``blur``, ``pose``
and ``duplicate`` count faces. ``age`` (years) and ``pair_of`` (the file this face was derived
from in another faceset) are filled by other tools. ``faceset.json`` is written atomically, after
the images it lists, so a crash never leaves it naming a half-written picture.
"""

from __future__ import annotations

import json
import logging
import os
import re
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol, Self

import numpy as np
import torch
from numpy.typing import NDArray
from PIL import Image, ImageOps, UnidentifiedImageError
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    ValidationError,
    field_validator,
    model_validator,
)

from agecast.errors import FacesetError, explain_fields
from agecast.faces.align import (
    TEMPLATES,
    estimate_affine,
    template_points,
    transform_points,
    warp_crop,
)
from agecast.faces.detector import FaceDetector
from agecast.frames import FaceBox
from agecast.training.filters import DuplicateFilter, estimate_pose, sharpness, thumbnail

log = logging.getLogger(__name__)

FORMAT: Literal["agecast-faceset"] = "agecast-faceset"
VERSION: Literal[1] = 1
INDEX_NAME = "faceset.json"
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
DROP_REASONS = ("no_face", "blur", "pose", "duplicate")  # the keys of "dropped", in order
# Extraction defaults (the CLI shows the same).
DEFAULT_SIZE = 256
DEFAULT_TEMPLATE = "ffhq"
DEFAULT_MIN_SHARPNESS = 10.0
DEFAULT_MAX_YAW = 45.0
DEFAULT_MAX_PITCH = 40.0
DEFAULT_DEDUPE = 0.03
DEDUPE_WINDOW = 8  # a face is compared with this many faces kept before it
CHECKPOINT_S = 5.0  # faceset.json is saved at least this often during an extraction

_FACE_FILE = re.compile(r"^f\d{6,}_\d+\.png$")
_EMPTY_HINT = "run `agecast faceset extract` on footage with a visible face"

Point = tuple[float, float]
Progress = Callable[[int, int | None, int], None]  # (frames done, frames in all or None, kept)


# -- the format ---------------------------------------------------------------------------------


class Dropped(BaseModel):
    """How many frames had no face, and how many faces each filter dropped."""

    model_config = ConfigDict(extra="forbid")

    no_face: int = Field(default=0, ge=0)
    blur: int = Field(default=0, ge=0)
    pose: int = Field(default=0, ge=0)
    duplicate: int = Field(default=0, ge=0)


class FaceRecord(BaseModel):
    """One kept face: its image file and where it came from."""

    model_config = ConfigDict(extra="forbid")

    file: str
    frame: int = Field(ge=0)
    face: int = Field(ge=0)
    landmarks5: list[Point] = Field(min_length=5, max_length=5)
    frame_landmarks5: list[Point] = Field(min_length=5, max_length=5)
    score: float
    sharpness: float
    yaw: float
    pitch: float
    age: float | None = None
    pair_of: str | None = None

    @field_validator("file")
    @classmethod
    def _plain_png_name(cls, value: str) -> str:
        if value in ("", ".", "..") or Path(value).name != value or "\\" in value:
            raise ValueError(f"{value!r} must be a file name inside the faceset folder, not a path")
        if not value.endswith(".png"):
            raise ValueError(f"{value!r} must be a .png file")
        return value


class FacesetIndex(BaseModel):
    """``faceset.json``: what the faceset holds and how it was made."""

    model_config = ConfigDict(extra="forbid")

    format: Literal["agecast-faceset"] = FORMAT
    version: Literal[1] = VERSION
    size: int = Field(ge=16, le=4096)
    template: str
    source: str
    params: dict[str, JsonValue] = Field(default_factory=dict)
    frames_done: int = Field(default=0, ge=0)
    complete: bool = False
    dropped: Dropped = Field(default_factory=lambda: Dropped())
    faces: list[FaceRecord] = Field(default_factory=list)

    @field_validator("template")
    @classmethod
    def _known_template(cls, value: str) -> str:
        if value not in TEMPLATES:
            raise ValueError(f"unknown alignment template {value!r}; one of {sorted(TEMPLATES)}")
        return value

    @model_validator(mode="after")
    def _files_unique(self) -> Self:
        seen: set[str] = set()
        for record in self.faces:
            if record.file in seen:
                raise ValueError(f"file {record.file} is listed twice")
            seen.add(record.file)
        return self


def write_index(folder: Path, index: FacesetIndex) -> None:
    """Write ``folder/faceset.json`` atomically (temporary file, then rename): the one writer."""
    folder.mkdir(parents=True, exist_ok=True)
    text = index.model_dump_json(indent=1) + "\n"
    fd, tmp_name = tempfile.mkstemp(prefix=f".{INDEX_NAME}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, folder / INDEX_NAME)
    finally:
        Path(tmp_name).unlink(missing_ok=True)


def read_index(folder: Path) -> FacesetIndex:
    """``folder/faceset.json``, checked; :class:`FacesetError` says what is wrong."""
    folder = Path(folder)
    if not folder.exists():
        raise FacesetError(
            f"faceset folder {folder} does not exist: make it with "
            f"`agecast faceset extract --source VIDEO --out {folder}`"
        )
    if not folder.is_dir():
        raise FacesetError(f"faceset {folder} is a file, not a folder: give the faceset's folder")
    path = folder / INDEX_NAME
    if not path.is_file():
        raise FacesetError(
            f"{folder} has no {INDEX_NAME}, so it is not a faceset: make one with "
            f"`agecast faceset extract --source VIDEO --out {folder}`"
        )
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise FacesetError(f"cannot read {path} ({exc}): check its permissions") from exc
    except json.JSONDecodeError as exc:
        raise FacesetError(
            f"{path} is not valid JSON (line {exc.lineno}: {exc.msg}): re-run the extraction "
            "into a fresh folder"
        ) from exc
    if isinstance(data, dict) and data.get("format", FORMAT) != FORMAT:
        raise FacesetError(f"{path}: format is {data.get('format')!r}, expected {FORMAT!r}")
    if isinstance(data, dict) and isinstance(data.get("version"), int) and data["version"] > 1:
        raise FacesetError(
            f"{path} is faceset version {data['version']}; this agecast reads version "
            f"{VERSION}: upgrade agecast"
        )
    try:
        return FacesetIndex.model_validate(data)
    except ValidationError as exc:
        raise FacesetError(f"{path} is not a valid faceset index: {explain_fields(exc)}") from exc


def save_image(folder: Path, name: str, image: NDArray[np.uint8]) -> None:
    """Write an HWC uint8 RGB picture as ``folder/name`` (PNG).

    Light compression: a third of the time of PIL's default level for files ~12 % larger.
    """
    picture = Image.fromarray(np.ascontiguousarray(image), mode="RGB")
    picture.save(folder / name, format="PNG", compress_level=1)


def _check_picture(array: NDArray[Any], size: int, name: str) -> None:
    if array.dtype != np.uint8 or array.shape != (size, size, 3):
        raise FacesetError(
            f"image {name} is {array.dtype} {tuple(array.shape)}; a faceset of size {size} "
            f"needs uint8 ({size}, {size}, 3) RGB"
        )


@dataclass(frozen=True, eq=False)  # one folder is one faceset: compared by identity
class Faceset:
    """A faceset folder, checked on load; images are read when asked for."""

    path: Path
    index: FacesetIndex

    @classmethod
    def load(cls, path: Path) -> Faceset:
        """Read and check ``path``: its index, that it has faces, and every image's header.

        Raises :class:`FacesetError` naming the folder, field or file that is wrong.
        """
        folder = Path(path)
        index = read_index(folder)
        if not index.faces:
            raise FacesetError(f"faceset {folder} is empty: {_EMPTY_HINT}")
        for record in index.faces:
            _check_header(folder, record.file, index.size)
        return cls(folder, index)

    @classmethod
    def write(
        cls, path: Path, index: FacesetIndex, images: Mapping[str, NDArray[np.uint8]]
    ) -> Faceset:
        """Write a faceset: ``images`` (file name → HWC uint8 RGB, size × size) as PNG, then
        ``faceset.json``. Every face in ``index`` must have its picture given or already in
        ``path``; every picture given must be listed."""
        folder = Path(path)
        listed = {record.file for record in index.faces}
        strays = sorted(set(images) - listed)
        if strays:
            raise FacesetError(f"images {', '.join(strays)} are not listed in the faceset index")
        for name, image in images.items():
            _check_picture(np.asarray(image), index.size, name)
        missing = [f for f in sorted(listed - set(images)) if not (folder / f).is_file()]
        if missing:
            raise FacesetError(
                f"faceset {folder}: no picture given or on disk for {', '.join(missing[:5])}"
            )
        folder.mkdir(parents=True, exist_ok=True)
        for name, image in images.items():
            save_image(folder, name, image)
        write_index(folder, index)
        return cls(folder, index)

    @property
    def size(self) -> int:
        return self.index.size

    @property
    def template(self) -> str:
        return self.index.template

    @property
    def records(self) -> list[FaceRecord]:
        return self.index.faces

    def __len__(self) -> int:
        return len(self.index.faces)

    def __repr__(self) -> str:
        return f"Faceset({str(self.path)!r}, {len(self)} faces, {self.size}px {self.template})"

    def image(self, i: int) -> NDArray[np.uint8]:
        """Face ``i`` as an HWC uint8 RGB array (size × size × 3)."""
        return read_face(self.path, self.index.faces[i].file, self.size)

    def images(self) -> NDArray[np.uint8]:
        """Every face as one (N, size, size, 3) uint8 RGB array."""
        out = np.empty((len(self), self.size, self.size, 3), dtype=np.uint8)
        for i in range(len(self)):
            out[i] = self.image(i)
        return out


def _check_header(folder: Path, name: str, size: int) -> None:
    path = folder / name
    if not path.is_file():
        raise FacesetError(
            f"faceset {folder}: image {name} listed in {INDEX_NAME} is missing; re-run the "
            "extraction into a fresh folder, or remove the face from the index"
        )
    try:
        with Image.open(path) as picture:
            width, height = picture.size
    except (OSError, UnidentifiedImageError) as exc:
        raise FacesetError(f"faceset {folder}: image {name} cannot be read ({exc})") from exc
    if (width, height) != (size, size):
        raise FacesetError(
            f"faceset {folder}: image {name} is {width}×{height}, the faceset's size is {size}"
        )


def read_face(folder: Path, name: str, size: int) -> NDArray[np.uint8]:
    """An image of a faceset as HWC uint8 RGB, checked to be size × size."""
    path = folder / name
    try:
        with Image.open(path) as picture:
            rgb = picture.convert("RGB") if picture.mode != "RGB" else picture
            array = np.array(rgb, dtype=np.uint8)  # a writable copy
    except FileNotFoundError as exc:
        raise FacesetError(f"faceset {folder}: image {name} is missing") from exc
    except (OSError, UnidentifiedImageError) as exc:
        raise FacesetError(f"faceset {folder}: image {name} cannot be read ({exc})") from exc
    if array.shape != (size, size, 3):
        raise FacesetError(
            f"faceset {folder}: image {name} is {array.shape[1]}×{array.shape[0]}, the "
            f"faceset's size is {size}"
        )
    return array


# -- extraction ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExtractReport:
    """What an extraction did. Counts are for the whole faceset unless named ``*_this_run``."""

    out: Path
    source: str
    frames_done: int
    complete: bool
    kept: int
    dropped: dict[str, int]
    frames_this_run: int = 0
    kept_this_run: int = 0
    resumed: bool = False
    nothing_to_do: bool = False

    def summary(self) -> str:
        drops = ", ".join(f"{k} {v}" for k, v in self.dropped.items())
        state = "complete" if self.complete else f"stopped after frame {self.frames_done}"
        return (
            f"faceset {self.out}: {self.kept} faces kept from {self.frames_done} frames "
            f"({state}); dropped: {drops}"
        )


class _Frames(Protocol):
    total: int | None

    def read(self, start: int) -> Iterator[tuple[int, torch.Tensor | None]]:
        """(frame number, HWC uint8 RGB picture or None if unreadable) from ``start`` on."""

    def close(self) -> None: ...


class _FolderFrames:
    """The pictures of a folder, in name order."""

    def __init__(self, folder: Path) -> None:
        self.files = sorted(
            p
            for p in folder.iterdir()
            if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in IMAGE_SUFFIXES
        )
        if not self.files:
            raise FacesetError(
                f"folder {folder} holds no {'/'.join(IMAGE_SUFFIXES)} pictures: give a folder "
                "of face pictures, a video file or a source URI"
            )
        self.total: int | None = len(self.files)

    def read(self, start: int) -> Iterator[tuple[int, torch.Tensor | None]]:
        for number in range(start, len(self.files)):
            yield number, self._picture(self.files[number])

    @staticmethod
    def _picture(path: Path) -> torch.Tensor | None:
        try:
            with Image.open(path) as picture:
                upright = ImageOps.exif_transpose(picture) or picture
                array = np.array(upright.convert("RGB"), dtype=np.uint8)
        except (OSError, UnidentifiedImageError, Image.DecompressionBombError) as exc:
            log.warning("skipping %s: cannot read it as a picture (%s)", path, exc)
            return None
        return torch.from_numpy(array)

    def close(self) -> None:
        pass


class _SourceFrames:
    """A source read flat out, every frame (no pacing, no loop)."""

    def __init__(self, uri: str, limit: int | None) -> None:
        from agecast.sources import open_source
        from agecast.sources.av_source import FileSource
        from agecast.sources.testpattern import TestPatternSource

        self.source = open_source(uri, live=False, loop=False)
        if isinstance(self.source, TestPatternSource) and limit is None:
            raise FacesetError(f"{uri} never ends: give --limit N (frames to read)")
        self.source.open()
        # A file (or the test pattern) plays the same frames again, so a resumed run can skip
        # to where it stopped; a camera or stream goes on from its current picture.
        self.replayable = isinstance(self.source, FileSource | TestPatternSource)
        self.total = (
            _video_frame_count(self.source.path) if isinstance(self.source, FileSource) else None
        )

    def read(self, start: int) -> Iterator[tuple[int, torch.Tensor | None]]:
        number = 0 if self.replayable else start
        while (frame := self.source.read()) is not None:
            if number >= start:
                yield number, frame.image
            number += 1

    def close(self) -> None:
        self.source.close()


def _video_frame_count(path: Path) -> int | None:
    """Frames in a video file as its container declares them (None when it does not)."""
    import av

    try:
        with av.open(str(path)) as container:
            frames = int(container.streams.video[0].frames) if container.streams.video else 0
    except (av.error.FFmpegError, OSError):
        return None
    return frames or None


def _open_frames(source: str, out: Path, limit: int | None) -> _Frames:
    text = source.strip()
    folder = Path(text).expanduser()
    if text and folder.is_dir():
        if folder.resolve() == out.resolve():
            raise FacesetError(
                f"--out {out} is the source folder itself: write the faceset to another folder"
            )
        return _FolderFrames(folder)
    return _SourceFrames(source, limit)


@dataclass
class _Options:
    size: int
    template: str
    every: int
    max_faces: int
    min_sharpness: float
    max_yaw: float
    max_pitch: float
    dedupe: float

    def check(self) -> None:
        if not 16 <= self.size <= 4096:
            raise FacesetError(f"--size {self.size} is out of range: use 16–4096 (e.g. 256)")
        if self.template not in TEMPLATES:
            raise FacesetError(
                f"unknown --template {self.template!r}: use one of {', '.join(sorted(TEMPLATES))}"
            )
        if self.every < 1 or self.max_faces < 1:
            raise FacesetError("--every and --max-faces must be 1 or more")
        if min(self.min_sharpness, self.max_yaw, self.max_pitch, self.dedupe) < 0:
            raise FacesetError("--min-sharpness, --max-yaw, --max-pitch and --dedupe must be ≥ 0")

    def params(self, detector: FaceDetector, detector_threshold: float | None) -> dict[str, Any]:
        return {
            "every": self.every,
            "max_faces": self.max_faces,
            "min_sharpness": self.min_sharpness,
            "max_yaw": self.max_yaw,
            "max_pitch": self.max_pitch,
            "dedupe": self.dedupe,
            "dedupe_window": DEDUPE_WINDOW,
            "detector": detector.name,
            "detector_threshold": detector_threshold,
        }


def extract(
    source: str,
    out: Path,
    *,
    size: int = DEFAULT_SIZE,
    template: str = DEFAULT_TEMPLATE,
    every: int = 1,
    max_faces: int = 1,
    min_sharpness: float = DEFAULT_MIN_SHARPNESS,
    max_yaw: float = DEFAULT_MAX_YAW,
    max_pitch: float = DEFAULT_MAX_PITCH,
    dedupe: float = DEFAULT_DEDUPE,
    limit: int | None = None,
    backend: str = "auto",
    threads: int = 0,
    insightface_dir: Path | None = None,
    detector_threshold: float = 0.6,
    detector: FaceDetector | None = None,
    progress: Progress | None = None,
) -> ExtractReport:
    """Extract a faceset from ``source`` into ``out``, or continue the one already there.

    ``source``: a folder of pictures, a video file, or any URI ``open_source`` takes (read
    every frame, as fast as it decodes). ``every``: look at every Nth frame. ``max_faces``: the
    largest faces per frame to keep. ``min_sharpness``, ``max_yaw``/``max_pitch`` (degrees) and
    ``dedupe`` are the filters (see :mod:`agecast.training.filters`; 0 turns sharpness and
    dedupe off). ``limit``: stop at source frame N (counted from the start, across resumed
    runs). ``detector`` replaces the one ``make_detector`` would build from ``backend``,
    ``threads``, ``insightface_dir`` and ``detector_threshold``. ``progress`` is called after
    every frame. Raises :class:`FacesetError` (or ``SourceError``) with what to do.
    """
    options = _Options(size, template, every, max_faces, min_sharpness, max_yaw, max_pitch, dedupe)
    options.check()
    if limit is not None and limit < 0:
        raise FacesetError("--limit must be 0 or more")
    out = Path(out)
    owned = detector is None
    if detector is None:
        from agecast.faces.detector import make_detector
        from agecast.inference.registry import get_backend

        detector = make_detector(
            get_backend(backend, threads=threads),
            insightface_dir=insightface_dir,
            score_threshold=detector_threshold,
        )
    threshold = detector_threshold if owned else getattr(detector, "score_threshold", None)
    try:
        return _Extraction(source, out, options, options.params(detector, threshold), detector)(
            limit, progress
        )
    finally:
        if owned:
            detector.close()


@dataclass
class _Extraction:
    source: str
    out: Path
    options: _Options
    params: dict[str, Any]
    detector: FaceDetector
    index: FacesetIndex = field(init=False)
    dedupe: DuplicateFilter = field(init=False)

    def __post_init__(self) -> None:
        self.template_px = template_points(self.options.template, self.options.size)
        self.dedupe = DuplicateFilter(self.options.dedupe, DEDUPE_WINDOW)

    def __call__(self, limit: int | None, progress: Progress | None) -> ExtractReport:
        resumed = self._start()
        if self.index.complete or (limit is not None and self.index.frames_done >= limit):
            log.info(
                "faceset %s is %s: nothing to do",
                self.out,
                "complete" if self.index.complete else f"done up to frame {limit}",
            )
            if self.index.complete:
                self._check_not_empty()
            return self._report(0, 0, resumed=resumed, nothing_to_do=True)
        source = _open_frames(self.source, self.out, limit)  # a bad source fails before any write
        threads = torch.get_num_threads()
        # The crops and filters are small; torch's thread pool spinning next to the detector's
        # made detection slower on a 2-core box (see pipeline.build).
        torch.set_num_threads(1)
        try:
            self._prepare_folder(resumed)
            frames, kept = self._run(source, limit, progress)
        finally:
            source.close()
            torch.set_num_threads(threads)
        report = self._report(frames, kept, resumed=resumed)
        log.info("%s", report.summary())
        if self.index.complete:
            self._check_not_empty()
        return report

    # -- starting or resuming -------------------------------------------------------------------

    def _start(self) -> bool:
        """Load the faceset already in ``out`` (True) or begin a new one (False); no writes."""
        if (self.out / INDEX_NAME).exists():
            self.index = read_index(self.out)
            self._check_same_recipe()
            return True
        self.index = FacesetIndex(
            size=self.options.size,
            template=self.options.template,
            source=self.source,
            params=self.params,
        )
        return False

    def _prepare_folder(self, resumed: bool) -> None:
        self.out.mkdir(parents=True, exist_ok=True)
        self._forget_strays()
        if resumed:
            self._remember_recent()
            log.info(
                "continuing faceset %s: %d faces from %d frames so far",
                self.out,
                len(self.index.faces),
                self.index.frames_done,
            )

    def _check_same_recipe(self) -> None:
        stored = self.index
        asked: dict[str, Any] = {
            "source": self.source,
            "size": self.options.size,
            "template": self.options.template,
            **self.params,
        }
        had: dict[str, Any] = {
            "source": stored.source,
            "size": stored.size,
            "template": stored.template,
            **stored.params,
        }
        if _same_source(stored.source, self.source):
            asked["source"] = had["source"]
        differ = [k for k in asked if had.get(k) != asked[k]]
        if differ:
            then = ", ".join(f"{k}={had.get(k)!r}" for k in differ)
            now = ", ".join(f"{k}={asked[k]!r}" for k in differ)
            raise FacesetError(
                f"faceset {self.out} was extracted with {then}; this run asks for {now}: "
                "continue it with the same options, or give another --out"
            )

    def _forget_strays(self) -> None:
        """Delete face pictures the index does not list (written after the last save of an
        interrupted run); the resumed run writes them again."""
        listed = {record.file for record in self.index.faces}
        strays = [
            p for p in self.out.iterdir() if _FACE_FILE.match(p.name) and p.name not in listed
        ]
        for path in strays:
            path.unlink()
        if strays:
            log.info("removed %d picture(s) of an interrupted run from %s", len(strays), self.out)

    def _remember_recent(self) -> None:
        """Refill the duplicate filter with the faces kept last, as the first run had it."""
        for record in self.index.faces[-DEDUPE_WINDOW:]:
            picture = read_face(self.out, record.file, self.index.size)
            self.dedupe.keep(thumbnail(torch.from_numpy(picture)))

    # -- the loop -------------------------------------------------------------------------------

    def _run(
        self, frames: _Frames, limit: int | None, progress: Progress | None
    ) -> tuple[int, int]:
        total = frames.total if limit is None else min(limit, frames.total or limit)
        start, kept_before = self.index.frames_done, len(self.index.faces)
        saved_at = time.monotonic()
        try:
            ended = True
            for number, picture in frames.read(start):
                if limit is not None and number >= limit:
                    ended = False
                    break
                if number % self.options.every == 0:
                    self._frame(number, picture)
                self.index.frames_done = number + 1
                if progress is not None:
                    progress(self.index.frames_done, total, len(self.index.faces))
                if time.monotonic() - saved_at >= CHECKPOINT_S:
                    write_index(self.out, self.index)
                    saved_at = time.monotonic()
            self.index.complete = ended
        finally:
            write_index(self.out, self.index)  # also on Ctrl-C or an error: keep what is done
        return self.index.frames_done - start, len(self.index.faces) - kept_before

    def _frame(self, number: int, picture: torch.Tensor | None) -> None:
        faces = self.detector.detect(picture) if picture is not None else []
        if picture is None or not faces:
            self.index.dropped.no_face += 1
            return
        largest = sorted(faces, key=lambda f: f.area, reverse=True)[: self.options.max_faces]
        for face_number, face in enumerate(largest):
            self._face(number, face_number, face, picture)

    def _face(self, number: int, face_number: int, face: FaceBox, picture: torch.Tensor) -> None:
        options, dropped = self.options, self.index.dropped
        yaw, pitch = estimate_pose(face.landmarks5)
        if abs(yaw) > options.max_yaw or abs(pitch) > options.max_pitch:
            dropped.pose += 1
            return
        affine = estimate_affine(face.landmarks5, self.template_px)
        crop = warp_crop(picture, affine, options.size)
        crop_u8 = (crop * 255.0).round().clamp(0, 255).to(torch.uint8).permute(1, 2, 0).cpu()
        crop_u8 = crop_u8.contiguous()
        sharp = sharpness(crop_u8, options.template)
        if sharp < options.min_sharpness:
            dropped.blur += 1
            return
        thumb = thumbnail(crop_u8)
        if self.dedupe.is_duplicate(thumb):
            dropped.duplicate += 1
            return
        name = f"f{number:06d}_{face_number}.png"
        save_image(self.out, name, crop_u8.numpy())
        self.dedupe.keep(thumb)
        self.index.faces.append(
            FaceRecord(
                file=name,
                frame=number,
                face=face_number,
                landmarks5=_points(transform_points(affine, face.landmarks5.float())),
                frame_landmarks5=_points(face.landmarks5),
                score=round(float(face.score), 4),
                sharpness=round(sharp, 2),
                yaw=round(yaw, 2),
                pitch=round(pitch, 2),
            )
        )

    # -- the end --------------------------------------------------------------------------------

    def _report(
        self, frames: int, kept: int, *, resumed: bool, nothing_to_do: bool = False
    ) -> ExtractReport:
        return ExtractReport(
            out=self.out,
            source=self.source,
            frames_done=self.index.frames_done,
            complete=self.index.complete,
            kept=len(self.index.faces),
            dropped=self.index.dropped.model_dump(),
            frames_this_run=frames,
            kept_this_run=kept,
            resumed=resumed,
            nothing_to_do=nothing_to_do,
        )

    def _check_not_empty(self) -> None:
        if self.index.faces:
            return
        dropped = self.index.dropped
        if dropped.blur + dropped.pose + dropped.duplicate == 0:
            raise FacesetError(
                f"no face found in {self.source} ({self.index.frames_done} frames read): "
                f"{_EMPTY_HINT} (or lower --detector-threshold)"
            )
        raise FacesetError(
            f"every face in {self.source} was dropped (blur {dropped.blur}, pose {dropped.pose}, "
            f"duplicate {dropped.duplicate}): loosen --min-sharpness, --max-yaw/--max-pitch or "
            "--dedupe"
        )


def _points(points: torch.Tensor) -> list[Point]:
    return [(round(float(x), 3), round(float(y), 3)) for x, y in points.reshape(5, 2).tolist()]


def _same_source(a: str, b: str) -> bool:
    """Whether two source strings name the same thing (also two spellings of one path)."""
    if a == b:
        return True
    pa, pb = Path(a).expanduser(), Path(b).expanduser()
    return pa.exists() and pb.exists() and pa.resolve() == pb.resolve()

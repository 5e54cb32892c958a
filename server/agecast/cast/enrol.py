"""Enrolment: reference photos (or a faceset) of a person → their face embeddings.

Each photo must show the person's face; in a photo with several faces the largest is taken
(enrol from photos of the person alone). Photos of several angles (front, three-quarter, profile)
make a member recognisable through a head turn. A photo with no face, or one that cannot be
read, is a clear error naming the file: a cast is built once and must be right.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from agecast.errors import CastError
from agecast.faces.detector import FaceDetector
from agecast.faces.recognise import Recogniser
from agecast.training.faceset import Faceset

log = logging.getLogger(__name__)

PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff")
MAX_REFERENCES = 24  # more photos than this add little and slow every check
MIN_FACE_PX = 40  # eye-to-mouth scale below which an embedding is mostly noise


def photo_files(paths: list[Path]) -> list[Path]:
    """The photos named by ``paths`` (files, or folders of photos), sorted, checked to exist."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            inside = sorted(p for p in path.iterdir() if p.suffix.lower() in PHOTO_SUFFIXES)
            if not inside:
                raise CastError(f"folder {path} has no photos ({', '.join(PHOTO_SUFFIXES)})")
            files += inside
        elif path.is_file():
            files.append(path)
        else:
            raise CastError(f"reference photo {path} does not exist")
    if not files:
        raise CastError("no reference photos given: pass --photos FILE|DIR (several angles)")
    return files


def read_photo(path: Path) -> torch.Tensor:
    """HWC uint8 RGB."""
    try:
        with Image.open(path) as picture:
            rgb = picture.convert("RGB")
    except (OSError, UnidentifiedImageError) as exc:
        raise CastError(f"reference photo {path} cannot be read as an image ({exc})") from exc
    return torch.from_numpy(np.asarray(rgb, dtype=np.uint8).copy())


def embed_photos(
    files: list[Path], detector: FaceDetector, recogniser: Recogniser
) -> tuple[torch.Tensor, list[str]]:
    """(K,D) embeddings, one per photo (its largest face), and the photos' names."""
    if len(files) > MAX_REFERENCES:
        step = len(files) / MAX_REFERENCES
        files = [files[int(i * step)] for i in range(MAX_REFERENCES)]
    rows, names = [], []
    for path in files:
        image = read_photo(path)
        faces = detector.detect(image)
        if not faces:
            raise CastError(
                f"reference photo {path} shows no face the detector finds: use a photo where the "
                "face is clear, lit and at least ~80 px across"
            )
        face = max(faces, key=lambda f: float((f.box[2:] - f.box[:2]).prod()))
        _check_size(face.landmarks5, path)
        rows.append(recogniser.embed(image, face.landmarks5[None])[0])
        names.append(path.name)
        log.info("%s: face at %s (of %d found)", path.name, face.box.round().tolist(), len(faces))
    return torch.stack(rows), names


def embed_faceset(folder: Path, recogniser: Recogniser) -> tuple[torch.Tensor, list[str]]:
    """Embeddings of up to :data:`MAX_REFERENCES` faces spread over a faceset (its aligned
    crops carry their landmarks: no detection needed)."""
    faceset = Faceset.load(folder)
    if len(faceset) == 0:
        raise CastError(f"faceset {folder} has no faces")
    count = min(len(faceset), MAX_REFERENCES)
    picks = sorted({int(i * len(faceset) / count) for i in range(count)})
    rows, names = [], []
    for i in picks:
        record = faceset.records[i]
        image = torch.from_numpy(faceset.image(i))
        points = torch.tensor(record.landmarks5, dtype=torch.float32)
        rows.append(recogniser.embed(image, points[None])[0])
        names.append(record.file)
    return torch.stack(rows), names


def _check_size(landmarks5: torch.Tensor, path: Path) -> None:
    eyes = (landmarks5[0] + landmarks5[1]) / 2
    mouth = (landmarks5[3] + landmarks5[4]) / 2
    if float(torch.linalg.vector_norm(mouth - eyes)) < MIN_FACE_PX / 2:
        raise CastError(
            f"the face in reference photo {path} is too small to recognise reliably: use a photo "
            "where the face is at least ~80 px across"
        )

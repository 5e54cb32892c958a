"""Face tracking: detect every N frames, follow landmarks in between, keep stable track ids,
smooth landmarks with a One-Euro filter per track.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import torch

from agecast.errors import check_literal
from agecast.faces.align import transform_points
from agecast.faces.background import BackgroundDetector, Detected
from agecast.faces.boxes import box_iou
from agecast.faces.detector import FaceDetector
from agecast.faces.flow import LandmarkFlow, Patch
from agecast.faces.smoothing import OneEuroFilter
from agecast.frames import FaceBox
from agecast.settings import FaceSelect

log = logging.getLogger(__name__)


@dataclass(slots=True)
class _Track:
    track_id: int
    box: torch.Tensor  # 4, frame pixels, raw
    score: float
    landmarks: torch.Tensor  # 5×2 raw (detected or followed)
    smoothed: torch.Tensor  # 5×2 after One-Euro
    smoother: OneEuroFilter | None
    patch: Patch | None = None
    misses: int = 0  # detection rounds in a row that did not find this face
    # frame number → (box, landmarks) for the last few frames, to place late detections
    history: dict[int, tuple[torch.Tensor, torch.Tensor]] = field(default_factory=dict)
    followed: int = -1  # the last frame number flow moved this track to
    source: str = "detect"
    extras: dict[str, object] = field(default_factory=dict)

    @property
    def area(self) -> float:
        width, height = (self.box[2:] - self.box[:2]).clamp(min=0).tolist()
        return float(width * height)


class FaceTracker:
    """Turns per-frame detections into tracked, smoothed faces.

    The detector runs on every ``detect_every``-th frame (and whenever nothing is tracked or
    following a face failed); in between, :class:`LandmarkFlow` follows each face. With
    ``background=True`` the scheduled detections run on their own thread while flow keeps
    following every frame; when one comes back (a frame or two later) each matched track is
    corrected by the difference between the detection and where the track was on that frame.
    Detections join tracks by box IoU (greedy, best overlap first); a face the detector
    misses is followed for up to ``max_misses`` detection rounds before its track is dropped.
    Track ids are never reused (not even after :meth:`reset`). One tracker per camera, fed
    from one thread.

    Returned faces carry smoothed ``landmarks5``; ``extras`` holds ``raw_landmarks5`` (before
    smoothing), ``source`` ("detect" or "flow") and ``misses``.
    """

    def __init__(
        self,
        detector: FaceDetector,
        *,
        detect_every: int = 1,
        select: FaceSelect = "largest",
        max_faces: int = 4,
        smoothing: bool = True,
        iou_threshold: float = 0.25,
        max_misses: int = 2,
        flow: LandmarkFlow | None = None,
        background: bool = False,
    ) -> None:
        if detect_every < 1:
            raise ValueError("detect_every must be at least 1")
        check_literal("select", select, FaceSelect)
        self.detector = detector
        self.detect_every = detect_every
        self.select = select
        self.max_faces = max_faces
        self.smoothing = smoothing  # One-Euro on each track's landmarks, its tuning's defaults
        self.iou_threshold = iou_threshold
        self.max_misses = max_misses
        self.flow = flow if flow is not None else LandmarkFlow()
        self._tracks: list[_Track] = []
        self._frame = 0
        self._next_id = 0
        self._last_submit = -(10**9)
        self.background = BackgroundDetector(detector) if background else None

    def close(self) -> None:
        if self.background is not None:
            self.background.close()

    def reset(self) -> None:
        """Forget every track (a cut, a new take); ids keep counting up."""
        if self.background is not None:
            self.background.wait()  # a late result belongs to the old shot: drop it
        self._tracks = []
        self._frame = 0
        self._last_submit = -(10**9)

    def update(self, image: torch.Tensor, t_s: float) -> list[FaceBox]:
        """Faces in this frame (HWC uint8 RGB), largest first; ``t_s`` is its time in seconds."""
        if self.background is not None:
            self._update_background(image)
        else:
            due = self._frame % self.detect_every == 0 or not self._tracks
            self._frame += 1
            if not due and not self._follow(image):
                due = True  # a face got lost between detections: look again now
            if due:
                self._detect(image)
        for track in self._tracks:
            track.history[self._frame] = (track.box.clone(), track.landmarks.clone())
            track.history.pop(self._frame - 8, None)
            track.patch = self.flow.grab(image, track.box)
            track.smoothed = (
                track.smoother(track.landmarks, t_s) if track.smoother else track.landmarks
            )
        return self._faces()

    def _update_background(self, image: torch.Tensor) -> None:
        assert self.background is not None
        self._frame += 1
        if not self._tracks or not self._follow(image):
            # nothing to follow (start, or a face was lost): detect now, on this thread
            self.background.wait()
            self._detect(image)
            self._last_submit = self._frame
            return
        result = self.background.poll()
        if result is not None:
            self._merge(result, image)
        if self._frame - self._last_submit >= self.detect_every and self.background.idle:
            self.background.submit(self._frame, image)
            self._last_submit = self._frame

    def _merge(self, result: Detected, image: torch.Tensor) -> None:
        """Correct tracks with detections made on an earlier frame (``result.frame``)."""
        known = [t for t in self._tracks if result.frame in t.history]
        pairs = self._match([t.history[result.frame][0] for t in known], result.faces)
        for ti, fi in pairs.items():
            track, face = known[ti], result.faces[fi]
            box_then, landmarks_then = track.history[result.frame]
            track.landmarks = track.landmarks + (face.landmarks5.float() - landmarks_then)
            track.box = track.box + (face.box.float() - box_then)
            track.score, track.misses, track.source = face.score, 0, "detect"
        matched_tracks, matched_faces = set(pairs), set(pairs.values())
        for index, track in enumerate(known):
            if index not in matched_tracks:
                track.misses += 1
        self._tracks = [t for t in self._tracks if t.misses <= self.max_misses]
        for fi, face in enumerate(result.faces):
            if fi in matched_faces or len(self._tracks) >= self.max_faces:
                continue
            # a new face, seen on an earlier frame: follow it from that frame to this one
            moved = self.flow.track(
                self.flow.grab(result.image, face.box), image, face.landmarks5.float()
            )
            if moved is not None:
                track = self._start(face)
                track.landmarks = moved.landmarks5
                track.box = face.box.float() + (moved.landmarks5 - face.landmarks5).mean(0).repeat(
                    2
                )
                self._tracks.append(track)
        self._tracks.sort(key=lambda t: t.area, reverse=True)

    def _follow(self, image: torch.Tensor) -> bool:
        """Move every track by optical flow; False if any face was lost."""
        return all([self._follow_one(track, image) for track in self._tracks])

    def _follow_one(self, track: _Track, image: torch.Tensor) -> bool:
        if track.followed == self._frame:
            return True  # already moved to this frame
        if track.patch is None:
            return False
        result = self.flow.track(track.patch, image, track.landmarks)
        if result is None:
            return False
        centre = (track.box[:2] + track.box[2:]) / 2
        half = (track.box[2:] - track.box[:2]) / 2
        scale = float(torch.linalg.det(result.motion[:, :2].double()).abs().sqrt())
        new_centre = transform_points(result.motion, centre)
        track.box = torch.cat([new_centre - half * scale, new_centre + half * scale])
        track.landmarks = result.landmarks5
        track.source = "flow"
        track.followed = self._frame
        return True

    def _detect(self, image: torch.Tensor) -> None:
        faces = self.detector.detect(image)
        pairs = self._match([t.box for t in self._tracks], faces)
        for ti, fi in pairs.items():
            self._adopt(self._tracks[ti], faces[fi])
        matched_tracks, matched_faces = set(pairs), set(pairs.values())
        survivors = []
        for index, track in enumerate(self._tracks):
            if index not in matched_tracks:
                track.misses += 1
                if track.misses > self.max_misses or not self._follow_one(track, image):
                    log.debug("track %s dropped after %s misses", track.track_id, track.misses)
                    continue
            survivors.append(track)
        new = [faces[i] for i in range(len(faces)) if i not in matched_faces]
        self._tracks = survivors + [self._start(face) for face in new]
        self._tracks.sort(key=lambda t: t.area, reverse=True)
        del self._tracks[self.max_faces :]

    def _match(self, boxes: list[torch.Tensor], faces: list[FaceBox]) -> dict[int, int]:
        """Greedy IoU matching, best overlap first: box index → face index."""
        pairs: dict[int, int] = {}
        if not boxes or not faces:
            return pairs
        ious = box_iou(torch.stack(boxes), torch.stack([f.box for f in faces]))
        for flat in torch.argsort(ious.flatten(), descending=True).tolist():
            bi, fi = divmod(flat, len(faces))
            if float(ious[bi, fi]) < self.iou_threshold:
                break
            if bi not in pairs and fi not in pairs.values():
                pairs[bi] = fi
        return pairs

    def _adopt(self, track: _Track, face: FaceBox) -> None:
        track.box = face.box.float()
        track.score = face.score
        track.landmarks = face.landmarks5.float()
        track.misses = 0
        track.source = "detect"

    def _start(self, face: FaceBox) -> _Track:
        smoother = OneEuroFilter(speed="rigid") if self.smoothing else None
        track = _Track(
            track_id=self._next_id,
            box=face.box.float(),
            score=face.score,
            landmarks=face.landmarks5.float(),
            smoothed=face.landmarks5.float(),
            smoother=smoother,
        )
        self._next_id += 1
        return track

    def _faces(self) -> list[FaceBox]:
        faces = []
        for track in sorted(self._tracks, key=lambda t: t.area, reverse=True):
            shift = (track.smoothed - track.landmarks).mean(0).repeat(2)
            faces.append(
                FaceBox(
                    box=(track.box + shift).clone(),
                    score=track.score,
                    landmarks5=track.smoothed.clone(),
                    track_id=track.track_id,
                    extras={
                        "raw_landmarks5": track.landmarks.clone(),
                        "source": track.source,
                        "misses": track.misses,
                    },
                )
            )
        return faces[:1] if self.select == "largest" else faces

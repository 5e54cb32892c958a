"""Routing faces to cast members on the live path.

Each face track is checked against the cast when it starts and every ``recheck_frames`` frames
after (not every frame: SFace costs 20–40 ms a face on one CPU core). Live, the check runs on a
worker thread, crop and embedding both: the frame thread only hands over the frame (its pixels
are never written after capture) and the face's landmarks, and picks up finished results, so
recognition costs the live path almost nothing; a new track stays *pending* (left as the
plate) for the frame or two its first check takes. Offline (render,
quality) the check runs in line, so every frame is decided the same way on every run.

Results are applied on the frame thread only (:meth:`route`), so track states have one owner.
Each routed face carries ``extras["cast"]`` = (state, member or None, score); a face that two
tracks claim for one member goes to the better score and the other is marked ambiguous, so one
person's identity is never on two faces.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass

import torch

from agecast.cast.matching import Gallery, MatchPolicy, Recognition, TrackMatch
from agecast.faces.recognise import Recogniser
from agecast.frames import FaceBox

log = logging.getLogger(__name__)

CAST_KEY = "cast"  # FaceBox.extras key: a CastTag


@dataclass(frozen=True, slots=True)
class CastTag:
    state: Recognition
    member: str | None
    score: float

    def record(self) -> dict[str, object]:
        return {"state": self.state.value, "member": self.member, "score": round(self.score, 4)}

    @classmethod
    def from_record(cls, value: dict[str, object]) -> CastTag:
        member = value.get("member")
        score = value.get("score", 0.0)
        return cls(
            Recognition(str(value.get("state", "unknown"))),
            str(member) if member is not None else None,
            float(score) if isinstance(score, int | float) else 0.0,
        )


def tag_of(face: FaceBox) -> CastTag | None:
    tag = face.extras.get(CAST_KEY)
    return tag if isinstance(tag, CastTag) else None


class _Worker:
    """One thread that embeds crops: latest job per track wins, results collected in order."""

    def __init__(self, recogniser: Recogniser, gallery: Gallery) -> None:
        self._recogniser, self._gallery = recogniser, gallery
        self._cond = threading.Condition()
        self._jobs: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}  # track → (frame, points)
        self._done: list[tuple[int, dict[str, float]]] = []
        self._busy: set[int] = set()
        self._closed = False
        self.embed_ms: deque[float] = deque(maxlen=300)
        self._thread = threading.Thread(target=self._run, name="agecast-recognise", daemon=True)
        self._thread.start()

    def submit(self, track: int, image: torch.Tensor, landmarks5: torch.Tensor) -> None:
        with self._cond:
            self._jobs[track] = (image, landmarks5)
            self._busy.add(track)
            self._cond.notify()

    def busy(self, track: int) -> bool:
        with self._cond:
            return track in self._busy

    def take(self) -> list[tuple[int, dict[str, float]]]:
        with self._cond:
            done, self._done = self._done, []
            return done

    def wait_idle(self, timeout: float = 10.0) -> None:
        """Block until every submitted job is done (tests, and closing)."""
        with self._cond:
            self._cond.wait_for(lambda: not self._busy or self._closed, timeout)

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._jobs or self._closed)
                if self._closed:
                    return
                track, (image, landmarks5) = self._jobs.popitem()
            t0 = time.perf_counter()
            try:
                embedding = self._recogniser.embed(image, landmarks5[None])[0]
                scores = self._gallery.scores(embedding)
            except Exception:  # a failed check leaves the track as it was; it is retried
                log.exception("recognising face track %d failed", track)
                scores = None
            with self._cond:
                self.embed_ms.append((time.perf_counter() - t0) * 1e3)
                if scores is not None:
                    self._done.append((track, scores))
                if track not in self._jobs:
                    self._busy.discard(track)
                self._cond.notify_all()


class CastRouter:
    """Face tracks → cast members (see the module doc). One per camera, fed from one thread."""

    def __init__(
        self,
        recogniser: Recogniser,
        members: dict[str, torch.Tensor],
        *,
        policy: MatchPolicy | None = None,
        recheck_frames: int = 15,
        background: bool = True,
    ) -> None:
        if recheck_frames < 1:
            raise ValueError("recheck_frames must be at least 1")
        self.recogniser = recogniser
        self.gallery = Gallery(members)
        self.policy = policy or MatchPolicy()
        self.recheck_frames = recheck_frames
        self._tracks: dict[int, TrackMatch] = {}
        self._last_check: dict[int, int] = {}
        self._frame = 0
        self._worker = _Worker(recogniser, self.gallery) if background else None
        self._inline_ms: deque[float] = deque(maxlen=300)
        self.counts: Counter[str] = Counter()  # faces routed, by Recognition, since start

    @property
    def members(self) -> list[str]:
        return self.gallery.names

    def route(self, image: torch.Tensor, faces: list[FaceBox]) -> None:
        """Tag each face in ``faces`` (HWC uint8 RGB ``image``) with its :class:`CastTag`."""
        self._frame += 1
        if self._worker is not None:
            for track, scores in self._worker.take():
                if track in self._tracks:
                    self._tracks[track].update(scores, self.policy)
        for face in faces:
            if self._due(face.track_id):
                self._check(face.track_id, image, face.landmarks5)
        seen = {f.track_id for f in faces}
        for gone in set(self._tracks) - seen:
            if self._frame - self._last_check.get(gone, 0) > 4 * self.recheck_frames:
                del self._tracks[gone]
                self._last_check.pop(gone, None)
        self._tag(faces)

    def _due(self, track: int) -> bool:
        if track not in self._tracks:
            self._tracks[track] = TrackMatch()
            return True
        if self._worker is not None and self._worker.busy(track):
            return False
        return self._frame - self._last_check.get(track, 0) >= self.recheck_frames

    def _check(self, track: int, image: torch.Tensor, landmarks5: torch.Tensor) -> None:
        self._last_check[track] = self._frame
        if self._worker is not None:
            self._worker.submit(track, image, landmarks5.clone())
            return
        t0 = time.perf_counter()
        embedding = self.recogniser.embed(image, landmarks5[None])[0]
        self._tracks[track].update(self.gallery.scores(embedding), self.policy)
        self._inline_ms.append((time.perf_counter() - t0) * 1e3)

    def _tag(self, faces: list[FaceBox]) -> None:
        claimed: dict[str, FaceBox] = {}
        for face in faces:
            match = self._tracks[face.track_id]
            face.extras[CAST_KEY] = CastTag(match.state, match.member, match.score)
            if match.member is None:
                continue
            rival = claimed.get(match.member)
            if rival is None:
                claimed[match.member] = face
                continue
            # one person on two faces: the better score keeps them, the other is left alone
            rival_tag = tag_of(rival)
            assert rival_tag is not None
            loser = face if rival_tag.score >= match.score else rival
            if loser is rival:
                claimed[match.member] = face
            lost = tag_of(loser)
            assert lost is not None
            loser.extras[CAST_KEY] = CastTag(Recognition.AMBIGUOUS, None, lost.score)
        counts = Counter(tag.state.value for f in faces if (tag := tag_of(f)) is not None)
        self.counts.update(counts)

    def embed_ms(self) -> list[float]:
        """Recent per-face recognition times (ms), wherever they ran."""
        source = self._worker.embed_ms if self._worker is not None else self._inline_ms
        return list(source)

    def wait_idle(self) -> None:
        if self._worker is not None:
            self._worker.wait_idle()

    def reset(self) -> None:
        """Forget every track (a cut, a new take)."""
        if self._worker is not None:
            self._worker.wait_idle()
            self._worker.take()
        self._tracks.clear()
        self._last_check.clear()

    def close(self) -> None:
        if self._worker is not None:
            self._worker.close()
        self.recogniser.close()

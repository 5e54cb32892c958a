"""The face stages on one frame: track → align → infer → colour → paste back.

Fail open: if any stage raises, the aged picture is the raw frame flagged ``error`` and the
error is counted; the monitor never freezes on a bad frame. Errors are logged once per burst.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import torch

from agecast.cast.router import CastRouter, tag_of
from agecast.compose.colour import transfer
from agecast.compose.hull import hull_mask
from agecast.compose.mask import MaskMaker, erode
from agecast.compose.paste import paste_back, paste_delta
from agecast.faces.align import estimate_affine, template_points, transform_points, warp_crop
from agecast.faces.landmarks106 import Landmarks106
from agecast.faces.regions import REGIONS, mouth_interior
from agecast.faces.tracker import FaceTracker
from agecast.frames import FaceBox, Frame, FxState, Replayed
from agecast.identities.runtime import IdentityModel
from agecast.settings import ColorTransfer

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class MemberLook:
    """A cast member's own controls; ``None`` takes the look's (or the monitor's) value."""

    name: str
    identity: str | None = None  # installed identity id (None: the monitor's identity)
    age: float | None = None
    blend: float | None = None
    bypass: bool = False


@dataclass(frozen=True, slots=True)
class Look:
    """What the operator tunes live. Replaced as a whole, so a frame never sees half a change."""

    blend: float = 1.0
    color_transfer: ColorTransfer = "auto"
    mask_feather: float = 0.08
    bypass: bool = False
    ai_mark: bool = True  # a visible "AI" on the aged picture whenever a face is replaced
    age: float | None = None  # target age (years) for identities with an age control
    # years added to the target age per region (REGIONS: forehead, eyes, mouth, hair) for
    # identities that take age maps (agecast-reage), e.g. eyes -10 keeps the eyes younger
    age_offsets: tuple[float, ...] = (0.0,) * len(REGIONS)
    # with a cast: each member's controls (faces of no member are left as the plate)
    members: tuple[MemberLook, ...] = ()

    def __post_init__(self) -> None:  # a sidecar or JSON gives lists and dicts: keep one form
        object.__setattr__(self, "age_offsets", tuple(float(v) for v in self.age_offsets))
        members = tuple(m if isinstance(m, MemberLook) else MemberLook(**m) for m in self.members)
        object.__setattr__(self, "members", members)

    def member(self, name: str) -> MemberLook | None:
        return next((m for m in self.members if m.name == name), None)


@dataclass(slots=True)
class Processed:
    aged: torch.Tensor
    faces: list[FaceBox]
    fx: FxState
    timings: dict[str, float] = field(default_factory=dict)
    error: str | None = None
    # what made this frame's aged picture (a take's sidecar records them per frame)
    look: Look | None = None
    identity: IdentityModel | None = None


class _Clock:
    """Splits one frame's work into named stage durations (ms)."""

    def __init__(self) -> None:
        self.timings: dict[str, float] = {}
        self._t = time.perf_counter_ns()

    def lap(self, stage: str) -> None:
        now = time.perf_counter_ns()
        self.timings[stage] = self.timings.get(stage, 0.0) + (now - self._t) / 1e6
        self._t = now


def colour_for(identity: IdentityModel, setting: ColorTransfer) -> str:
    """The colour transfer to run: the operator's choice, or on auto what the identity asks for
    (default rct). A tooling identity's pattern is shown as drawn: matching it would hide it."""
    manifest = identity.manifest
    if manifest.purpose == "tooling":
        return "none"
    if setting == "auto":
        return manifest.color_transfer or "rct"
    return setting


# A re-ageing model's mask comes from a half-resolution trunk (pixel-unshuffled ×2) and the
# plate's colour from 4:2:0 video (chroma at half resolution): where a skin-toned hand crosses
# the face, the mask's edge is placed to about one half-resolution pixel, and measured on the
# occluder clips it spilled 2-5 frame pixels into the hand. The mask is shrunk by that much
# before paste-back, so an uncertain edge falls on the face, never on what is in front of it.
DELTA_MASK_ERODE_PX = 2


def paste_masks(
    identity: IdentityModel,
    model_masks: torch.Tensor | None,
    delta: bool,
    look: Look,
    points: torch.Tensor,
) -> torch.Tensor:
    """The paste-back masks (N,1,S,S) of faces whose landmarks in crop pixels are ``points``
    (N,5,2): the model's mask (or the template's), feathered, faded at the crop border, with
    the mouth interior cut out unless the identity draws it. A re-ageing (delta) model's mask
    is not feathered (occluders are cut out of it) but shrunk by :data:`DELTA_MASK_ERODE_PX`."""
    size = identity.crop_size
    # a re-ageing model's mask is its own (occluders cut out): only the crop border fades
    feather_amount = 0.0 if delta else look.mask_feather
    if delta and model_masks is not None:
        model_masks = erode(model_masks, DELTA_MASK_ERODE_PX)
    masks = MaskMaker(feather_amount)(model_masks, points.shape[0], size, points.device)
    manifest = identity.manifest
    if manifest.mouth == "plate" and manifest.purpose != "tooling":
        mouths = torch.stack([mouth_interior(p, size) for p in points]).to(masks.device)
        masks = masks * (1 - mouths)
    return masks


class FaceFX:
    def __init__(
        self,
        tracker: FaceTracker,
        identity: IdentityModel,
        look: Look | None = None,
        landmarks106: Landmarks106 | None = None,
        *,
        cast: CastRouter | None = None,
        load_identity: Callable[[str], IdentityModel] | None = None,
    ) -> None:
        """``landmarks106`` (insightface 2d106det), when given, shapes the mask of identities
        whose model has no mask output: the convex hull of the face's 106 points."""
        self.tracker = tracker
        self.landmarks106 = landmarks106
        self.look = look or Look()
        # identity and its template change together (one assignment), never half-way in a frame
        self._active = (
            identity,
            template_points(identity.manifest.crop.template, identity.crop_size),
        )
        self.errors = 0
        self._burst = 0
        # Replaced identities are closed once no frame is being processed (one may be mid-way
        # with the old one); the lock guards _active, _in_flight and _retired together.
        self._swap = threading.Lock()
        self._in_flight = 0
        self._retired: list[IdentityModel] = []
        # With a cast: faces are routed to members, each with their identity (loaded on demand)
        self.cast = cast
        self.load_identity = load_identity
        self._pool: dict[str, tuple[IdentityModel, torch.Tensor]] = {}
        self._pool_lock = threading.Lock()

    def set_identity(self, identity: IdentityModel, *, close_old: bool = True) -> None:
        """Swap the identity between frames. The FX owns what it is given: the one replaced is
        closed once no frame is using it. ``close_old=False`` leaves it open, for a caller that
        keeps it (a cache of loaded identities, a wrapper around it) and closes it itself."""
        template = template_points(identity.manifest.crop.template, identity.crop_size)
        with self._swap:
            old = self._active[0]
            self._active = (identity, template)
            if close_old and old is not identity:
                self._retired.append(old)
            self._close_retired()

    def _close_retired(self) -> None:
        """Close the replaced identities unless a frame is being processed (holding the lock)."""
        if self._in_flight:
            return  # the frame's end closes them
        for old in self._retired:
            if old is not self._active[0]:  # swapped away and back again: still in use
                old.close()
        self._retired.clear()

    @property
    def identity(self) -> IdentityModel:
        return self._active[0]

    def set_look(self, **changes: object) -> Look:
        self.look = replace(self.look, **changes)  # type: ignore[arg-type]
        return self.look

    def process(self, frame: Frame, canvas: torch.Tensor | None = None) -> Processed:
        """Faces of ``frame`` replaced. ``canvas`` (a copy of the frame's pixels, e.g. the aged
        half of the output picture) is pasted into in place; without one a copy is made."""
        with self._swap:
            self._in_flight += 1
        try:
            return self._process_frame(frame, canvas)
        finally:
            with self._swap:
                self._in_flight -= 1
                self._close_retired()

    def _process_frame(self, frame: Frame, canvas: torch.Tensor | None) -> Processed:
        if frame.replayed is not None:  # a re-render: the look and identity as recorded here
            self._replay(frame.replayed)
        look = self.look  # one snapshot per frame
        active = self._active
        clock = _Clock()
        try:
            result = self._process(frame, look, active, clock, canvas)
        except Exception as exc:  # fail open on anything a stage raises
            self._failed(frame, exc)
            if canvas is not None:
                canvas.copy_(frame.image)  # undo a half-done paste
            aged = frame.image if canvas is None else canvas
            error = f"{type(exc).__name__}: {exc}"
            return Processed(aged, [], FxState.ERROR, clock.timings, error, look, active[0])
        if self._burst:
            log.info("FX recovered at frame %d after %d failed frame(s)", frame.index, self._burst)
            self._burst = 0
        result.look, result.identity = look, active[0]
        return result

    def _replay(self, replayed: Replayed) -> None:
        """Make the look changes and the identity switch a take recorded at this frame; the
        identities switched to stay loaded (a take may switch back) until ``close_cast``."""
        if replayed.look:
            self.set_look(**replayed.look)
        if replayed.identity is not None and replayed.identity != self.identity.manifest.id:
            self.set_identity(self.member_identity(replayed.identity)[0], close_old=False)

    def _hull_masks(
        self, image: torch.Tensor, faces: list[FaceBox], affines: list[torch.Tensor], size: int
    ) -> torch.Tensor:
        assert self.landmarks106 is not None
        points = self.landmarks106.landmarks(image, [f.box for f in faces])
        hulls = [
            hull_mask(transform_points(a, p.to(a.device)), size, grow=0.05)
            for a, p in zip(affines, points, strict=True)
        ]
        return torch.cat(hulls).to(image.device)

    def _failed(self, frame: Frame, exc: Exception) -> None:
        self.errors += 1
        if self._burst == 0:
            log.error(
                "FX failed at frame %d, showing raw (FX ERROR): %s", frame.index, exc, exc_info=exc
            )
        self._burst += 1

    def _process(
        self,
        frame: Frame,
        look: Look,
        active: tuple[IdentityModel, torch.Tensor],
        clock: _Clock,
        canvas: torch.Tensor | None,
    ) -> Processed:
        replayed = frame.replayed.faces if frame.replayed is not None else None
        faces = replayed
        if faces is None:
            faces = self.tracker.update(frame.image, frame.capture_ns / 1e9)
        clock.lap("detect")
        router = self.cast
        if router is not None and replayed is None:
            router.route(frame.image, faces)
            clock.lap("recognise")
        unchanged = frame.image if canvas is None else canvas
        if look.bypass:
            return Processed(unchanged, faces, FxState.BYPASS, clock.timings)
        cast = router is not None or any(tag_of(f) is not None for f in faces)
        groups = self._cast_groups(faces, look, active) if cast else [(active, look, faces)]
        if not groups or not faces:
            return Processed(unchanged, faces, FxState.NO_FACE, clock.timings)
        aged = frame.image.clone() if canvas is None else canvas
        for (identity, template), group_look, group in groups:
            self._replace(frame.image, aged, group, identity, template, group_look, clock)
        return Processed(aged, faces, FxState.ON, clock.timings)

    def _cast_groups(
        self, faces: list[FaceBox], look: Look, active: tuple[IdentityModel, torch.Tensor]
    ) -> list[tuple[tuple[IdentityModel, torch.Tensor], Look, list[FaceBox]]]:
        """Recognised faces grouped by (identity, age, blend): one inference call per group.
        A face of no member (unknown, ambiguous, pending) or of a bypassed one is in none."""
        groups: dict[
            tuple[str, float | None, float],
            tuple[tuple[IdentityModel, torch.Tensor], Look, list[FaceBox]],
        ] = {}
        for face in faces:
            tag = tag_of(face)
            if tag is None or tag.member is None:
                continue
            member = look.member(tag.member) or MemberLook(tag.member)
            if member.bypass:
                continue
            model = active
            if member.identity is not None and member.identity != active[0].manifest.id:
                model = self.member_identity(member.identity)
            age = member.age if member.age is not None else look.age
            blend = member.blend if member.blend is not None else look.blend
            key = (model[0].manifest.id, age, blend)
            if key not in groups:
                groups[key] = (model, replace(look, age=age, blend=blend), [])
            groups[key][2].append(face)
        return list(groups.values())

    def _replace(
        self,
        image: torch.Tensor,
        aged: torch.Tensor,
        faces: list[FaceBox],
        identity: IdentityModel,
        template: torch.Tensor,
        look: Look,
        clock: _Clock,
    ) -> None:
        """Replace ``faces`` of ``image`` (the raw frame) by ``identity``, pasted into ``aged``."""
        size = identity.crop_size
        template = template.to(image.device)
        affines = [estimate_affine(f.landmarks5.to(template.device), template) for f in faces]
        crops = torch.stack([warp_crop(image, a, size) for a in affines])
        pairs = zip(affines, faces, strict=True)
        points = torch.stack([transform_points(a, f.landmarks5.to(a.device)) for a, f in pairs])
        clock.lap("align")
        swap = identity.infer(crops, look.age, look.age_offsets, points)
        clock.lap("infer")
        shape = swap.masks
        if shape is None and self.landmarks106 is not None:
            shape = self._hull_masks(image, faces, affines, size)
            clock.lap("landmarks")
        masks = paste_masks(identity, shape, swap.deltas is not None, look, points)
        if swap.deltas is not None:
            for i, affine in enumerate(affines):
                paste_delta(aged, swap.deltas[i], masks[i], affine, look.blend)
        else:
            colour = colour_for(identity, look.color_transfer)
            out_faces = transfer(colour, swap.faces, crops, masks)
            for i, affine in enumerate(affines):
                paste_back(aged, out_faces[i], masks[i], affine, look.blend)
        clock.lap("paste")

    # the cast's identities -------------------------------------------------------------------
    def member_identity(self, identity_id: str) -> tuple[IdentityModel, torch.Tensor]:
        """A cast member's identity model (loaded once, through ``load_identity``)."""
        found = self._pool.get(identity_id)
        if found is not None:
            return found
        with self._pool_lock:
            found = self._pool.get(identity_id)
            if found is not None:
                return found
            if self.load_identity is None:
                raise RuntimeError(f"no way to load cast identity {identity_id!r}")
            model = self.load_identity(identity_id)
            template = template_points(model.manifest.crop.template, model.crop_size)
            self._pool = {**self._pool, identity_id: (model, template)}  # readers never lock
            return model, template

    def close_cast(self) -> None:
        """Close the cast's router and the identities loaded for its members."""
        if self.cast is not None:
            self.cast.close()
        with self._pool_lock:
            for model, _ in self._pool.values():
                model.close()
            self._pool = {}

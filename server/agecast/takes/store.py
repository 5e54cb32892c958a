"""Takes on disk: one folder per take, its raw picture, and numbered aged versions.

Layout under the takes folder (``Settings.resolved_takes_dir``)::

    <take_id>/take.json                  TakeInfo, written atomically
    <take_id>/raw.mp4                    raw picture, frame i = the take's frame i
    <take_id>/versions/v1/aged.mp4       aged picture as recorded live
    <take_id>/versions/v1/sidecar.jsonl  identity, settings, their changes, faces per frame
    <take_id>/versions/vN/render.json    for a re-render: from, settings overrides, identity

A take id is ``<scene>_<take>`` or ``<scene>_<take>_<camera>``. Takes are never overwritten.
"""

from __future__ import annotations

import contextlib
import difflib
import fcntl
import json
import os
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from agecast.errors import TakeError

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
NAME_RULE = "1–64 characters: letters, digits, '.', '_' or '-', starting with a letter or digit"
VERSION_RE = re.compile(r"^v([1-9][0-9]*)$")
PICTURE_RE = re.compile(r"^(raw|v[1-9][0-9]{0,3})$")  # a take's pictures: raw, or version vN

TAKE_JSON = "take.json"
RAW = "raw.mp4"
AGED = "aged.mp4"
SIDECAR = "sidecar.jsonl"
RENDER_JSON = "render.json"
# Held (flock) by the recording process while it records; gone when the take is finished. A
# lock, not the PID it holds: after a kill the next server may get the same PID (in Docker the
# server is PID 1 every time), but the kernel drops a dead process's locks.
OWNER = ".recorder.pid"

TakeStatus = str  # "recording" | "complete" | "interrupted" | "stopped: <reason>"


class IdentityRef(BaseModel):
    """Which identity made an aged picture: enough to find and check it again."""

    id: str
    version: str | None = None
    sha256: str = ""


class TakeInfo(BaseModel):
    """What ``take.json`` holds."""

    id: str
    scene: str
    take: str
    camera: str | None = None
    created: str = Field(description="ISO 8601 UTC time the take was created")
    source: str = ""
    width: int = 0
    height: int = 0
    fps: float = 0.0
    frames: int = Field(0, description="frames in raw.mp4 and in the recorded aged.mp4")
    duration_s: float | None = Field(
        None, description="raw.mp4's length: its last frame's time plus one frame"
    )
    aged_frames: int | None = Field(
        None, description="recorded aged frames made from their own source frame"
    )
    held_frames: int = Field(
        0, description="recorded aged frames that repeat an earlier one (the live path dropped "
        "their source frame); listed in the v1 sidecar"
    )  # fmt: skip
    dropped_frames: int = Field(0, description="source frames lost from the take")
    timecode_start: str = "00:00:00:00"
    status: TakeStatus = "recording"
    identity: IdentityRef | None = None
    preset: str | None = None

    @property
    def seconds(self) -> float:
        if self.duration_s is not None:
            return self.duration_s
        return self.frames / self.fps if self.fps > 0 else 0.0


class RenderInfo(BaseModel):
    """What ``versions/vN/render.json`` holds for a re-render."""

    from_: str = Field("v1", alias="from")
    settings: dict[str, Any] = Field(default_factory=dict)
    created: str = ""
    identity: IdentityRef | None = None
    status: Literal["rendering", "complete", "failed"] = "complete"
    error: str | None = None

    model_config = {"populate_by_name": True}


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON to ``path`` so a reader never sees half a file (tmp + os.replace)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n")
    os.replace(tmp, path)


def check_name(field: str, value: str | None) -> str:
    """``value`` if it is a safe take-name part, else :class:`TakeError` naming ``field``."""
    if value is None or value == "":
        raise TakeError(f"{field} is empty; give a name of {NAME_RULE}")
    if "/" in value or "\\" in value or ".." in value or not NAME_RE.match(value):
        raise TakeError(f"{field} {value!r} is not allowed; use {NAME_RULE} (no '..', no '/')")
    return value


def take_id_for(scene: str, take: str, camera: str | None = None) -> str:
    """The id of a take: ``<scene>_<take>`` or ``<scene>_<take>_<camera>`` (names checked)."""
    parts = [check_name("scene", scene), check_name("take", take)]
    if camera:
        parts.append(check_name("camera", camera))
    return "_".join(parts)


def _next_take_hint(take: str) -> str:
    match = re.match(r"^(.*?)(\d+)$", take)
    if match:
        head, digits = match.groups()
        return head + str(int(digits) + 1).zfill(len(digits))
    return take + "2"


def _exists(scene: str, take: str, camera: str | None) -> TakeError:
    return TakeError(
        f"take {scene}_{take}{'_' + camera if camera else ''} exists; takes are never "
        f"overwritten — use take {_next_take_hint(take)}"
    )


class Take:
    """One take folder."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.id = path.name
        self._owner_fd: int | None = None  # the recorder's lock, while this process records

    @property
    def info_path(self) -> Path:
        return self.path / TAKE_JSON

    @property
    def info(self) -> TakeInfo:
        """take.json, read fresh each time (a recording updates it)."""
        try:
            info = TakeInfo.model_validate_json(self.info_path.read_text())
        except FileNotFoundError as exc:
            raise TakeError(f"take {self.id}: {self.info_path} is missing") from exc
        except ValueError as exc:
            raise TakeError(f"take {self.id}: {self.info_path} is not valid: {exc}") from exc
        if info.status == "recording" and not self.recorder_alive():
            # the recording process died mid-take (kill -9, power): what is on disk plays
            info = info.model_copy(update={"status": "interrupted"})
        return info

    def recorder_alive(self) -> bool:
        """Whether a process (this one included) still records this take: it holds the lock."""
        try:
            fd = os.open(self.path / OWNER, os.O_RDONLY)
        except FileNotFoundError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        finally:
            os.close(fd)  # (and with it the probe's own lock, if it got one)
        return False

    def claim(self) -> None:
        """This process records the take: hold its lock until :meth:`release` (or death)."""
        fd = os.open(self.path / OWNER, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            os.close(fd)
            raise TakeError(f"take {self.id} is being recorded by another process") from exc
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())  # for people; the lock is what counts
        self._owner_fd = fd

    def release(self) -> None:
        """The recording is over (its final status is in take.json)."""
        (self.path / OWNER).unlink(missing_ok=True)
        if self._owner_fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._owner_fd)
            self._owner_fd = None

    def write_info(self, info: TakeInfo) -> None:
        write_json_atomic(self.info_path, info.model_dump(mode="json"))

    def update_info(self, **changes: Any) -> TakeInfo:
        info = self.info.model_copy(update=changes)
        self.write_info(info)
        return info

    @property
    def raw_path(self) -> Path:
        return self.path / RAW

    def version_dir(self, version: str) -> Path:
        if not VERSION_RE.match(version):
            raise TakeError(f"take {self.id}: version {version!r} is not vN (v1, v2, …)")
        return self.path / "versions" / version

    def versions(self) -> list[str]:
        """Versions present, in number order: ["v1", "v2", …]."""
        root = self.path / "versions"
        if not root.is_dir():
            return []
        found = [p.name for p in root.iterdir() if p.is_dir() and VERSION_RE.match(p.name)]
        return sorted(found, key=lambda v: int(v[1:]))

    def has_version(self, version: str) -> bool:
        return version in self.versions()

    def require_version(self, version: str) -> str:
        if not self.has_version(version):
            have = ", ".join(self.versions()) or "none"
            raise TakeError(f"take {self.id} has no version {version!r}; it has: {have}")
        return version

    def aged_path(self, version: str = "v1") -> Path:
        return self.version_dir(version) / AGED

    def picture(self, name: str) -> Path:
        """The file of picture ``name``: ``raw`` or an aged version ``vN``, which must exist."""
        if not PICTURE_RE.match(name):
            raise TakeError(f"picture {name!r} is not raw or a version vN (v1, v2, …)")
        path = self.raw_path if name == "raw" else self.aged_path(self.require_version(name))
        if not path.is_file():
            raise TakeError(f"take {self.id} has no {name} picture: {path} is missing")
        return path

    def sidecar_path(self, version: str = "v1") -> Path:
        return self.version_dir(version) / SIDECAR

    def render_path(self, version: str) -> Path:
        return self.version_dir(version) / RENDER_JSON

    def render_info(self, version: str) -> RenderInfo | None:
        """render.json of a re-render version; None for v1 (the live recording)."""
        path = self.render_path(version)
        if not path.exists():
            return None
        return RenderInfo.model_validate_json(path.read_text())

    def new_version(self) -> str:
        """Create and return the next free version folder (v1 for a new take)."""
        root = self.path / "versions"
        root.mkdir(parents=True, exist_ok=True)
        have = self.versions()
        n = int(have[-1][1:]) + 1 if have else 1
        while True:
            try:
                (root / f"v{n}").mkdir()
            except FileExistsError:  # someone else took it meanwhile
                n += 1
                continue
            return f"v{n}"

    def read_sidecar(self, version: str = "v1") -> list[dict[str, Any]]:
        """Every record of a sidecar; a torn last line (crash mid-write) is skipped."""
        records: list[dict[str, Any]] = []
        with self.sidecar_path(version).open() as fh:
            for line in fh:
                try:
                    records.append(json.loads(line))
                except json.JSONDecodeError:
                    break
        return records

    def __repr__(self) -> str:
        return f"Take({self.id!r}, {str(self.path)!r})"


class TakeStore:
    """All takes under one folder."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def _ids(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return [p.name for p in self.root.iterdir() if (p / TAKE_JSON).is_file()]

    def list(self) -> list[TakeInfo]:
        """Every readable take, newest first."""
        infos: list[TakeInfo] = []
        for take_id in self._ids():
            try:
                infos.append(Take(self.root / take_id).info)
            except TakeError:
                continue
        infos.sort(key=lambda i: (i.created, i.id), reverse=True)
        return infos

    def get(self, take_id: str) -> Take:
        """The take ``take_id``; :class:`TakeError` naming it and close ids when unknown."""
        if not take_id or "/" in take_id or "\\" in take_id or ".." in take_id:
            raise TakeError(f"take id {take_id!r} is not valid; use {NAME_RULE} parts joined by _")
        path = self.root / take_id
        if not (path / TAKE_JSON).is_file():
            ids = self._ids()
            close = difflib.get_close_matches(take_id, ids, n=5, cutoff=0.5)
            hint = f"; close: {', '.join(close)}" if close else ""
            hint += "" if ids else f"; no takes in {self.root}"
            raise TakeError(f"no take {take_id!r} in {self.root}{hint} (see: agecast takes list)")
        return Take(path)

    def exists(self, take_id: str) -> bool:
        return (self.root / take_id).exists()

    def check_new(self, scene: str, take: str, camera: str | None = None) -> str:
        """The id a new take would get; :class:`TakeError` if a name is bad or it exists."""
        take_id = take_id_for(scene, take, camera)
        if (self.root / take_id).exists():
            raise _exists(scene, take, camera)
        return take_id

    def next_take(self, scene: str, take: str, camera: str | None = None) -> str:
        """The take name after ``take`` (``3`` → ``4``, ``3B`` → ``3B2``) that is still free."""
        name = _next_take_hint(take)
        while self.exists(take_id_for(scene, name, camera)):
            name = _next_take_hint(name)
        return name

    def create(self, scene: str, take: str, camera: str | None = None, **info: Any) -> Take:
        """A new take folder with take.json (status "recording"); never overwrites one."""
        take_id = take_id_for(scene, take, camera)
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        with contextlib.suppress(PermissionError):  # footage: for this user only
            os.chmod(self.root, 0o700)
        path = self.root / take_id
        try:
            path.mkdir(mode=0o700)
        except FileExistsError as exc:
            raise _exists(scene, take, camera) from exc
        result = Take(path)
        result.claim()
        result.write_info(
            TakeInfo(
                id=take_id,
                scene=scene,
                take=take,
                camera=camera or None,
                created=now_iso(),
                **info,
            )
        )
        return result

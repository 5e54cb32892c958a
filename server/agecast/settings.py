"""All settings in one pydantic model.

Precedence, highest first: command-line flags, ``AGECAST_*`` environment variables, the TOML file
given with ``--config`` (or ``AGECAST_CONFIG``), defaults. Unknown keys are rejected wherever
they come from, with the valid names listed.
"""

from __future__ import annotations

import json
import os
import re
import socket
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)
from pydantic_settings import SettingsError as EnvParseError

from agecast.errors import SettingsError, explain_fields
from agecast.redact import SourceURI, redact, reveal

Layout = Literal["side-by-side", "aged", "raw"]
FaceSelect = Literal["largest", "all"]
ColorTransfer = Literal["auto", "rct", "rct-lab", "none"]
DeviceName = Literal["auto", "cpu", "cuda"]
Precision = Literal["auto", "fp32", "fp16"]

REPO_MODELS_DIR = Path(__file__).resolve().parents[2] / "models"


def _xdg_state_dir() -> Path:
    return Path(os.environ.get("XDG_STATE_HOME", Path.home() / ".local" / "state")) / "agecast"


def default_state_dir() -> Path:
    """The state folder when no settings are at hand: ``AGECAST_STATE_DIR``, else the XDG one
    (what ``Settings().state_dir`` is without a config file or flag)."""
    named = os.environ.get("AGECAST_STATE_DIR")
    return Path(named).expanduser() if named else _xdg_state_dir()


class Settings(BaseSettings):
    """What the pipeline needs to run: source, identity, backend, faces, look, layout."""

    model_config = SettingsConfigDict(
        env_prefix="AGECAST_", extra="forbid", validate_assignment=True
    )

    # Source
    # SourceURI: the text is the address with any password hidden (agecast.redact)
    source: Annotated[str, AfterValidator(SourceURI)] = Field(
        "demo", description="demo | FILE | testpattern:WxH@FPS | v4l2:// | rtsp:// | udp:// …"
    )
    loop: bool = Field(True, description="restart a file source at its end (live mode)")
    cameras: Annotated[list[Annotated[str, AfterValidator(SourceURI)]], NoDecode] = Field(
        default_factory=list,
        description="several cameras for `serve` (one pipeline each, one backend) and "
        "`bench --cameras N`: NAME=URI or URI (named cam1, cam2… by position)",
    )
    # Identity and inference
    identity: str = Field(
        "auto", description="identity id or package folder; auto = best installed"
    )
    identities_dir: Annotated[list[Path], NoDecode] = Field(
        default_factory=lambda: [REPO_MODELS_DIR],
        description="folders searched for identity packages (a:b, a,b or a JSON list)",
    )
    backend: str = Field(
        "auto",
        description="auto | onnxruntime | onnxruntime-cuda | tensorrt | torch | triton",
    )
    device: DeviceName = Field(
        "auto", description="where frames live: auto picks cuda when present"
    )
    threads: int = Field(0, ge=0, description="CPU threads per model (0 = library default)")
    precision: Precision = Field(
        "auto", description="torch backend: auto (fp16 on CUDA, fp32 on the CPU) | fp16 | fp32"
    )
    cuda_graphs: bool = Field(
        True, description="torch backend on CUDA: replay each model as a captured CUDA graph"
    )
    # Triton (--backend triton): the identity's model runs on a Triton Inference Server
    triton_url: str = Field(
        "", description="Triton's gRPC address for --backend triton: grpc://HOST:8001"
    )
    triton_timeout_ms: int = Field(
        50, ge=1, le=10_000, description="longest wait for one Triton call; then the frame is raw"
    )
    triton_retry_ms: int = Field(
        250, ge=10, le=60_000, description="after a failed Triton call, wait this long to retry"
    )
    triton_shm: Literal["auto", "on", "off"] = Field(
        "auto", description="system shared memory with Triton: auto = when it is on this host"
    )
    triton_local: str = Field(
        "auto", description="the in-process backend for the models Triton does not run"
    )
    engines_dir: Path | None = Field(
        None, description="TensorRT plan cache (default: the repository's engines/)"
    )
    # Faces
    detect_every: int = Field(
        3, ge=1, le=30, description="run the detector every N frames, track between"
    )
    detect_thread: bool = Field(
        True, description="run scheduled detections on their own thread; flow follows meanwhile"
    )
    faces: FaceSelect = Field("largest", description="process the largest face or all faces")
    max_faces: int = Field(4, ge=1, le=32)
    smoothing: bool = Field(True, description="One-Euro smoothing of landmarks")
    insightface_dir: Path | None = Field(
        None, description="local insightface model pack (det_10g.onnx) used instead of YuNet"
    )
    detector_threshold: float = Field(0.6, gt=0.0, lt=1.0)
    # Cast
    cast: bool = Field(
        True,
        description="recognise the cast's members (when the cast file has any) and give each "
        "their identity; off: one identity for the main face",
    )
    cast_file: Path | None = Field(
        None, description="the cast (default: <state_dir>/cast.json; 'agecast cast add' fills it)"
    )
    cast_threshold: float = Field(
        0.42, gt=0.0, lt=1.0, description="face-to-member cosine a face must reach to be recognised"
    )
    recognise_every: int = Field(
        15, ge=1, le=300, description="re-check each face track against the cast every N frames"
    )
    # Look
    blend: float = Field(1.0, ge=0.0, le=1.0, description="0 = raw face, 1 = fully replaced")
    color_transfer: ColorTransfer = Field(
        "auto",
        description="auto (what the identity was made for, else rct) | rct (fast) | rct-lab | "
        "none: match the face's colour to the plate",
    )
    mask_feather: float = Field(
        0.08, ge=0.0, le=0.5, description="mask edge softness, fraction of crop"
    )
    age: float | None = Field(
        None,
        ge=0,
        le=130,
        description="target age in years for identities with an age control (default: theirs)",
    )
    age_offsets: tuple[float, float, float, float] = Field(
        (0.0, 0.0, 0.0, 0.0),
        description="years added to the age per region (forehead, eyes, mouth, hair) for "
        "identities with local age control: eyes:-10,hair:5, a JSON mapping or a list",
    )
    layout: Layout = Field("side-by-side")
    ai_mark: bool = Field(True, description='visible "AI" mark on the aged picture')
    # Service
    state_dir: Path = Field(
        default_factory=lambda: _xdg_state_dir(),
        description="links, session secret and audit log",
    )
    input_transform: str | None = Field(
        None,
        description="log camera → Rec.709 before faces and the model: a .cube 3D LUT or logc3; "
        "per camera as A=logc3,B=show.cube",
    )
    display_luts: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="LUTs the monitor can view a side through (the picture is unchanged): "
        "NAME=FILE.cube, FILE.cube or logc3 (a,b or JSON)",
    )
    # Video village outputs
    ndi_out: Annotated[list[Literal["aged", "raw", "side-by-side"]], NoDecode] = Field(
        default_factory=list,
        description="NDI sources each camera publishes: aged, raw, side-by-side (a,b or JSON)",
    )
    ndi_name: str = Field(
        "agecast", min_length=1, description="NDI source names: '<ndi_name> <camera> <kind>'"
    )
    ndi_label: str | None = Field(
        None, description="text burnt into every NDI picture (who may see it), like a link's label"
    )
    program_out: Annotated[str, AfterValidator(SourceURI)] | None = Field(
        None,
        description="H.264 MPEG-TS over UDP for hardware decoders: udp://HOST:PORT or a "
        "multicast group (camera N: port + N)",
    )
    program_kind: Literal["aged", "side-by-side"] = Field(
        "aged", description="the picture program_out and rtsp_out carry"
    )
    rtsp_out: str | None = Field(
        None,
        description="serve the program picture over RTSP on HOST:PORT (camera N: port + N) at "
        "rtsp://HOST:PORT/<camera>?token=<a viewer link's token>",
    )
    ndi_extra_ips: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="machines to ask for NDI sources where mDNS does not reach (a,b or JSON)",
    )
    # Fleet: other agecast servers this monitor shows (docs/fleet.md)
    fleet: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="other agecast nodes whose cameras the monitor lists: NAME=URL, e.g. "
        "B=https://10.0.0.12:8443 (a self-signed peer pinned with #sha256=FINGERPRINT)",
    )
    node_name: str = Field(
        default_factory=lambda: default_node_name(),
        description="this node's name in the fleet (default: the host name); the name the "
        "other nodes' fleet entries give it",
    )
    fleet_secret: Path | None = Field(
        None,
        description="the key the fleet's nodes share (default: <state_dir>/fleet_secret, made "
        "by `agecast fleet init`)",
    )
    fleet_ca: Path | None = Field(
        None, description="CA certificates (PEM) that https peers without a pin must chain to"
    )
    fleet_poll_s: float = Field(
        1.0, ge=0.1, le=30.0, description="ask each peer for its cameras every this many seconds"
    )
    fleet_recheck_s: float = Field(
        30.0,
        ge=0.5,
        le=300.0,
        description="re-ask the issuing node whether a fleet sign-in's link still holds this "
        "often (a link revoked there ends the session here within it)",
    )
    # Takes
    takes_dir: Path | None = Field(
        None, description="where takes are recorded (default: <state_dir>/takes)"
    )
    min_free_gb: float = Field(
        2.0, ge=0.0, description="refuse or stop a recording when less disk than this is free"
    )
    take_raw_444: bool = Field(
        False,
        description="record a take's raw picture in 4:4:4 (lossless for RGB sources; "
        "costs ~4 ms more CPU per 720p frame) instead of 4:2:0",
    )

    @field_validator("age_offsets", mode="before")
    @classmethod
    def _offsets(cls, value: object) -> tuple[float, ...]:
        if (
            isinstance(value, tuple | list)
            and len(value) == 4
            and all(type(v) in (int, float) for v in value)
        ):  # four numbers already (the default is validated on every load): no torch import
            offsets = tuple(float(v) for v in value)
        else:
            from agecast.age_offsets import parse_offsets

            offsets = parse_offsets(value)
        if any(not -60 <= v <= 60 for v in offsets):
            raise ValueError(f"{offsets}: each region's offset must be within ±60 years")
        return offsets

    @field_validator("identities_dir", mode="before")
    @classmethod
    def _split_folders(cls, value: Any) -> Any:
        """``a:b``, ``a,b`` (or one folder) as well as a JSON list, from flags, env or TOML."""
        return split_list(value, separators=(os.pathsep, ","))

    @field_validator("ndi_out", "ndi_extra_ips", "display_luts", mode="before")
    @classmethod
    def _split_names(cls, value: Any) -> Any:
        """``a,b`` (or one) as well as a JSON list."""
        return split_list(value, separators=(",",))

    @field_validator("rtsp_out")
    @classmethod
    def _listen_address(cls, value: str | None) -> str | None:
        if value is not None and not _LISTEN.fullmatch(value.strip()):
            raise ValueError(f"{value!r} is not HOST:PORT to listen on (e.g. 0.0.0.0:8554)")
        return value.strip() if value is not None else None

    @field_validator("cameras", mode="before")
    @classmethod
    def _split_cameras(cls, value: Any) -> Any:
        """``A=rtsp://…,B=rtsp://…`` as well as a JSON list (a URI holds ``:``, not ``,``)."""
        return split_list(value, separators=(",",))

    @field_validator("cameras")
    @classmethod
    def _camera_names_unique(cls, value: list[str]) -> list[str]:
        camera_entries(value)  # raises ValueError naming a name used twice
        return value

    @field_validator("fleet", mode="before")
    @classmethod
    def _split_fleet(cls, value: Any) -> Any:
        """``B=https://…,C=https://…`` as well as a JSON list."""
        return split_list(value, separators=(",",))

    @field_validator("fleet")
    @classmethod
    def _fleet_entries_valid(cls, value: list[str]) -> list[str]:
        fleet_entries(value)  # raises ValueError naming the bad entry and the fix
        return value

    @field_validator("node_name")
    @classmethod
    def _node_name_valid(cls, value: str) -> str:
        if not _NODE_NAME.fullmatch(value):
            raise ValueError(
                f"{value!r} cannot name a node: use letters, digits, - and _ (up to 32, "
                "starting with a letter or digit), e.g. cart-a"
            )
        return value

    @model_validator(mode="after")
    def _not_in_own_fleet(self) -> Settings:
        if any(entry.name == self.node_name for entry in fleet_entries(self.fleet)):
            raise ValueError(
                f"fleet lists {self.node_name!r}, this node's own name (node_name): list only "
                "the other nodes, or give this one another node_name"
            )
        return self

    @property
    def resolved_fleet_secret(self) -> Path:
        """The fleet's shared key file: ``fleet_secret`` or ``<state_dir>/fleet_secret``."""
        named = self.fleet_secret
        return named if named is not None else self.state_dir / "fleet_secret"

    @property
    def resolved_cast_file(self) -> Path:
        """The cast file: ``cast_file`` or ``<state_dir>/cast.json``."""
        return self.cast_file if self.cast_file is not None else self.state_dir / "cast.json"

    @property
    def resolved_takes_dir(self) -> Path:
        """The takes folder: ``takes_dir`` or ``<state_dir>/takes``."""
        return self.takes_dir if self.takes_dir is not None else self.state_dir / "takes"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, _TomlSource(settings_cls))

    @classmethod
    def load(cls, config: Path | None = None, **flags: Any) -> Settings:
        """Settings from flags (None values ignored), env and the TOML file ``config``."""
        path = config or (
            Path(os.environ["AGECAST_CONFIG"]) if os.environ.get("AGECAST_CONFIG") else None
        )
        given = {k: v for k, v in flags.items() if v is not None}
        _check_env_names()
        token = _TomlSource.current
        _TomlSource.current = path
        try:
            return cls(**given)
        except ValidationError as exc:
            raise SettingsError(_explain(exc, path)) from exc
        except EnvParseError as exc:  # an env value pydantic-settings could not read
            raise SettingsError(f"invalid environment variable: {exc}") from exc
        finally:
            _TomlSource.current = token


def split_list(value: Any, *, separators: tuple[str, ...]) -> Any:
    """A list setting given as text: a JSON list (``["a", "b"]``), else split at the first of
    ``separators`` it holds (blank parts dropped). Anything else is left to validation."""
    if isinstance(value, Path):
        return [value]
    if not isinstance(value, str):
        return value
    text = value.strip()
    if text.startswith("["):
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{text!r} starts like a JSON list but is not one: {exc}") from exc
    for sep in separators:
        if sep in text:
            return [part.strip() for part in text.split(sep) if part.strip()]
    return [text] if text else []


_LISTEN = re.compile(r"^((\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):)?\d{1,5}$")  # HOST:PORT or PORT

# "A=rtsp://…" names a camera; a URI's own "=" (a query string) comes after a ":" and does not.
_CAMERA_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,15}$")  # also a take label


def camera_entries(cameras: list[str]) -> list[tuple[str, str]]:
    """(name, source URI) of each ``cameras`` entry: ``NAME=URI``, or a bare URI named
    ``cam<position>``. ValueError when two cameras end up with the same name."""
    entries: list[tuple[str, str]] = []
    for position, entry in enumerate(cameras, start=1):
        text = reveal(entry)  # split the real address; what is kept hides its password again
        name, sep, uri = text.partition("=")
        if not (sep and _CAMERA_NAME.fullmatch(name)):
            name, uri = f"cam{position}", text
        entries.append((name, SourceURI(uri.strip())))
    seen: dict[str, str] = {}
    for (name, _), text in zip(entries, map(redact, cameras), strict=True):
        if name in seen:
            raise ValueError(
                f"camera name {name!r} is used twice ({seen[name]!r} and {text!r}): "
                'give each camera its own name, e.g. ["A=rtsp://…", "B=rtsp://…"]'
            )
        seen[name] = text
    return entries


_NODE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$")
_PIN = re.compile(r"^sha256=((?:[0-9A-Fa-f]{2}:?){31}[0-9A-Fa-f]{2})$")
_EXAMPLE = '"B=https://10.0.0.12:8443" or "B=https://cart-b:8443#sha256=<64 hex digits>"'


def default_node_name() -> str:
    """The host name's first label, cut to a valid node name (``node`` if nothing is left)."""
    name = re.sub(r"[^A-Za-z0-9_-]", "-", socket.gethostname().split(".")[0])[:32].strip("-_")
    return name if name and _NODE_NAME.fullmatch(name) else "node"


@dataclass(frozen=True, slots=True)
class FleetEntry:
    """One other node of the fleet: its name, its address (``scheme://host:port``, what a
    browser opens too) and, for a self-signed https peer, its certificate's sha256."""

    name: str
    url: str
    pin: str | None  # lower-case hex, no colons


def fleet_entries(fleet: list[str]) -> list[FleetEntry]:
    """Each ``fleet`` entry as a :class:`FleetEntry`; ValueError naming the bad entry and what
    to write instead."""
    from urllib.parse import urlsplit

    entries: list[FleetEntry] = []
    for entry in fleet:
        name, sep, url = entry.partition("=")
        name, url = name.strip(), url.strip()

        def bad(why: str, entry: str = entry) -> ValueError:
            return ValueError(f"fleet entry {entry!r}: {why}; write NAME=URL, e.g. {_EXAMPLE}")

        if not sep or not url:
            raise bad("no NAME= before the address")
        if not _NODE_NAME.fullmatch(name):
            raise bad(f"{name!r} cannot name a node (letters, digits, - and _, up to 32)")
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError as exc:
            raise bad(f"the address is not a URL ({exc})") from exc
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise bad("the address must be http://HOST:PORT or https://HOST:PORT")
        if parts.username or parts.password or parts.query or parts.path not in ("", "/"):
            raise bad("give only the node's address (no user, path or query)")
        pin = None
        if parts.fragment:
            match = _PIN.fullmatch(parts.fragment)
            if match is None:
                raise bad("after # only sha256=<the peer certificate's 64 hex digits>")
            if parts.scheme != "https":
                raise bad("a certificate pin needs an https address")
            pin = match.group(1).replace(":", "").lower()
        host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
        base = f"{parts.scheme}://{host}" + (f":{port}" if port else "")
        if any(e.name == name for e in entries):
            raise bad(f"the name {name!r} is used twice: give each node its own name")
        entries.append(FleetEntry(name, base, pin))
    return entries


class _TomlSource(PydanticBaseSettingsSource):
    """Reads the TOML file chosen by :meth:`Settings.load` (flat keys, or an [agecast] table)."""

    current: Path | None = None

    def __call__(self) -> dict[str, Any]:
        path = type(self).current
        if path is None:
            return {}
        try:
            data = tomllib.loads(Path(path).read_text())
        except FileNotFoundError as exc:
            raise SettingsError(f"config file {path} does not exist") from exc
        except tomllib.TOMLDecodeError as exc:
            raise SettingsError(f"config file {path} is not valid TOML: {exc}") from exc
        data = data.get("agecast", data)
        unknown = sorted(set(data) - set(Settings.model_fields))
        if unknown:
            raise SettingsError(
                f"config file {path}: unknown key(s) {', '.join(unknown)}; "
                f"valid keys: {', '.join(Settings.model_fields)}"
            )
        return data

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False


# AGECAST_* variables that are not settings but are read elsewhere.
_OTHER_ENV = {"AGECAST_CONFIG", "AGECAST_CACHE_DIR", "AGECAST_LOG_LEVEL"}


def env_names() -> frozenset[str]:
    """Every ``AGECAST_*`` variable agecast reads: one per setting, and the few read elsewhere."""
    return frozenset({f"AGECAST_{name.upper()}" for name in Settings.model_fields} | _OTHER_ENV)


def _check_env_names() -> None:
    known = env_names()
    unknown = sorted(
        k for k in os.environ if k.upper().startswith("AGECAST_") and k.upper() not in known
    )
    if unknown:
        raise SettingsError(
            f"unknown environment variable(s) {', '.join(unknown)}; "
            f"valid: {', '.join(sorted(known))}"
        )


def _explain(exc: ValidationError, path: Path | None) -> str:
    where = f" (flags, AGECAST_* env or {path})" if path else " (flags or AGECAST_* env)"
    return "invalid settings" + where + ": " + explain(exc)


def explain(exc: ValidationError) -> str:
    """Each problem of ``exc`` as ``setting name: what it must be (got value)``, joined by ``; ``
    (an unknown name lists the valid ones)."""
    return explain_fields(exc, "setting", Settings.model_fields)

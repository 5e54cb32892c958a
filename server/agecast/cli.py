"""The ``agecast`` command line.

Every command takes the same settings as flags, ``AGECAST_*`` environment variables or a TOML
file (``--config``); ``agecast COMMAND --help`` lists them.
"""

from __future__ import annotations

import functools
import inspect
import json
import logging
import re
import shlex
import signal
import sys
import types
import typing
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from agecast.errors import AgecastError
from agecast.outfiles import check_writable, write_text_atomic
from agecast.settings import Settings


class Family(StrEnum):
    """Model families ``agecast train`` fits."""

    DF = "agecast-df"
    REAGE = "agecast-reage"


app = typer.Typer(
    help=(
        "agecast — live on-set de-aging monitor.\n\n"
        "Start with `agecast serve`: the live monitor on the bundled demo clip (or --source), "
        "raw | aged side by side; open the sign-in URL it prints. `agecast render --out "
        "take.mp4` renders every frame of a file; `agecast bench` measures speed; "
        "`agecast identity list` shows installed identities; `agecast backends` shows what can "
        "run inference on this machine. Settings: flags, AGECAST_* variables or --config "
        "TOML; `--log-level debug` shows tracebacks."
    ),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
identity_app = typer.Typer(
    help="List, inspect and validate identity packages.", no_args_is_help=True
)
app.add_typer(identity_app, name="identity")
console = Console(stderr=True)
log = logging.getLogger("agecast")

ConfigOpt = Annotated[Path | None, typer.Option("--config", help="TOML settings file", exists=True)]
BackendOpt = Annotated[str | None, typer.Option(help="auto | onnxruntime | onnxruntime-cuda | …")]

# Help for flags where the setting's own description is not enough (the rest come from it).
_FLAG_HELP = {
    "source": "demo | FILE | testpattern[:WxH@FPS] | v4l2:///dev/videoN | rtsp:// | udp://",
    "identity": "identity id or package folder (auto = best installed)",
    "identities_dir": "folders searched for identity packages: a:b, a,b or a JSON list",
    "cameras": "cameras for serve: NAME=URI,NAME=URI (or a JSON list)",
    "threads": "CPU threads per model (0 = default)",
    "insightface_dir": "local insightface pack (det_10g.onnx, 2d106det.onnx)",
    "takes_dir": "where takes are recorded (default <state_dir>/takes)",
    "age_offsets": "years per region for re-ageing identities, e.g. eyes:-10,hair:5",
}


def _flag_for(name: str, field: Any) -> tuple[type, typer.models.OptionInfo]:
    """(type, typer option) for setting ``name``: ``--name-with-dashes``, help from its
    description, its env variable named; booleans as ``--x/--no-x``."""
    kind = field.annotation
    if isinstance(kind, types.UnionType) or typing.get_origin(kind) is typing.Union:
        kind = next(a for a in typing.get_args(kind) if a is not type(None))  # X | None → X
    if typing.get_origin(kind) is typing.Literal:
        choices = " | ".join(str(c) for c in typing.get_args(kind))
        help_text, kind = f"{field.description or name}: {choices}", str
    else:
        help_text = _FLAG_HELP.get(name) or field.description or name.replace("_", " ")
    if typing.get_origin(kind) is list:  # lists as text: split by the setting itself
        kind = str
    flag = "--" + name.replace("_", "-")
    decls = [f"{flag}/--no-{name.replace('_', '-')}"] if kind is bool else [flag]
    if kind not in (bool, int, float, Path):
        kind = str
    env = f"AGECAST_{name.upper()}"
    return kind, typer.Option(*decls, help=f"{help_text} (env {env})", show_default=False)


# Every setting as a flag of every pipeline command (None = not given: env, TOML or default).
_SETTINGS_FLAGS: dict[str, tuple[type, typer.models.OptionInfo]] = {
    name: _flag_for(name, field) for name, field in Settings.model_fields.items()
}


def settings_flags(command: Callable[..., None]) -> Callable[..., None]:
    """Give ``command`` the shared settings flags (and --config); it receives ``settings``.

    One table of flags instead of the same dozen parameters on every command.
    """
    hints = typing.get_type_hints(command, include_extras=True)
    own = [
        p.replace(kind=inspect.Parameter.KEYWORD_ONLY, annotation=hints[p.name])
        for p in inspect.signature(command).parameters.values()
        if p.name != "settings"
    ]
    # a command's own parameter of a setting's name (bench --cameras N) wins over the setting
    taken = {p.name for p in own}
    shared = {k: v for k, v in _SETTINGS_FLAGS.items() if k not in taken}
    extra = [
        inspect.Parameter(
            name,
            inspect.Parameter.KEYWORD_ONLY,
            default=None,
            annotation=Annotated[kind | None, option],
        )
        for name, (kind, option) in shared.items()
    ]
    config = inspect.Parameter(
        "config", inspect.Parameter.KEYWORD_ONLY, default=None, annotation=ConfigOpt
    )

    @functools.wraps(command)
    def wrapper(**kwargs: Any) -> None:
        flags = {name: kwargs.pop(name) for name in shared}
        try:
            settings = Settings.load(kwargs.pop("config"), **flags)
        except AgecastError as exc:
            raise _fail(exc) from exc
        command(settings=settings, **kwargs)

    parameters = [*own, config, *extra]
    wrapper.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    wrapper.__annotations__ = {p.name: p.annotation for p in parameters}
    del wrapper.__wrapped__  # typer must read the new signature, not the original's
    return wrapper


def _settings(config: Path | None, **flags: Any) -> Settings:
    return Settings.load(config, **flags)


def _command_line() -> str:
    """This invocation as a shell line (for provenance records)."""
    import shlex

    return shlex.join(["agecast", *sys.argv[1:]])


LOG_LEVELS = ("debug", "info", "warning", "error")
_debug = False  # --log-level debug: errors come with their traceback


def _error(text: str) -> None:
    """One ``error: …`` line on stderr (the message's own brackets are not markup)."""
    console.print("[bold red]error:[/]", escape(text), soft_wrap=True)


def _fail(exc: Exception) -> typer.Exit:
    if _debug:
        log.debug("traceback of the error below", exc_info=exc)
    _error(str(exc))
    return typer.Exit(code=2)


@app.callback()
def main(
    log_level: Annotated[
        str,
        typer.Option(
            envvar="AGECAST_LOG_LEVEL", help="debug (with tracebacks) | info | warning | error"
        ),
    ] = "info",
) -> None:
    global _debug
    level = log_level.lower()
    if level not in LOG_LEVELS:
        raise typer.BadParameter(
            f"{log_level!r}: use one of {', '.join(LOG_LEVELS)}", param_hint="--log-level"
        )
    _debug = level == "debug"
    # plain lines (no wrapping at the terminal's width): they are copied into bug reports
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s %(levelname)s %(message)s",
        datefmt="%H:%M:%S",
        stream=sys.stderr,
    )


def run() -> None:
    """The ``agecast`` program: a failure agecast expects (a missing file, a bad setting, a
    port in use) is one ``error:`` line and exit 2; anything else one line and exit 1. The
    traceback only with ``--log-level debug``."""
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
    except AgecastError as exc:
        if _debug:
            raise
        _error(str(exc))
        sys.exit(2)
    except Exception as exc:
        if _debug:
            raise
        _error(f"{type(exc).__name__}: {exc} (run with --log-level debug for the traceback)")
        sys.exit(1)


@app.command()
@settings_flags
def render(
    settings: Settings,
    out: Annotated[Path, typer.Option(help="output MP4 (H.264)")] = Path("out/render.mp4"),
    report: Annotated[
        Path | None, typer.Option(help="write per-stage timings as JSON here")
    ] = None,
    frames: Annotated[int | None, typer.Option(help="stop after N frames")] = None,
) -> None:
    """Run every frame of a source through the pipeline into an MP4 (no frame dropped)."""
    from rich.progress import Progress

    from agecast.pipeline.render import render as run_render

    settings = settings.model_copy(update={"loop": False})  # a render reads a file once
    try:
        with Progress(console=console, transient=True) as bar:
            task = bar.add_task(f"rendering {settings.source}", total=frames)
            result = run_render(
                settings, out, report=report, limit=frames,
                progress=lambda n: bar.update(task, completed=n),
            )  # fmt: skip
    except AgecastError as exc:
        raise _fail(exc) from exc
    stages = result["stages_ms"]
    console.print(
        f"wrote [bold]{result['frames_written']}[/] of {result['frames_read']} frames to {out} "
        f"({result['fps_out']} fps; identity {result['identity']} on {result['backend']}; "
        f"infer p95 {stages.get('infer', {}).get('p95', 0)} ms)"
    )


@app.command()
@settings_flags
def bench(
    settings: Settings,
    seconds: Annotated[float, typer.Option(help="measured seconds (after warm-up)")] = 10.0,
    live: Annotated[
        bool, typer.Option("--live/--max", help="paced source with drops, or every frame flat out")
    ] = True,
    warmup: Annotated[float, typer.Option(help="seconds before measuring")] = 2.0,
    json_out: Annotated[Path | None, typer.Option("--json", help="write the results here")] = None,
    cameras: Annotated[
        int,
        typer.Option(
            min=1,
            help="pipelines at once on one backend: the config's `cameras` sources, "
            "else --source for each",
        ),
    ] = 1,
    resolution: Annotated[
        str | None,
        typer.Option(
            help="WxH: feed every camera a generated test pattern of this size "
            "(instead of --source / the config's cameras)",
        ),
    ] = None,
    fps: Annotated[
        float | None, typer.Option(min=1, max=240, help="frame rate of that test pattern")
    ] = None,
    encode: Annotated[
        bool,
        typer.Option(
            "--encode/--no-encode",
            help="H.264-encode every output as the monitor does (--no-encode: the pipeline "
            "alone, e.g. to compare the model path with another tool)",
        ),
    ] = True,
) -> None:
    """Measure fps, drops, per-stage, frame→output and frame→encoded-packet latency, copies per
    frame, jitter and memory. --max reads every frame flat out (a file source loops to fill
    --seconds); a run whose source ended early says so (ended_early in the JSON)."""
    from agecast.pipeline.bench import bench as run_bench

    if json_out is not None:
        try:
            check_writable(json_out, "--json")  # before the measuring, not after
        except AgecastError as exc:
            raise _fail(exc) from exc
    if resolution is not None or fps is not None:
        source = _test_pattern(resolution or "1280x720", fps or 30.0)
        settings = settings.model_copy(update={"source": source, "cameras": []})
    if cameras > 1:
        _bench_cameras(settings, cameras, seconds, live, warmup, json_out, encode)
        return
    try:
        result = run_bench(
            settings, seconds=seconds, live=live, warmup=warmup, encode=encode,
            command=["agecast", *sys.argv[1:]],
        )  # fmt: skip
    except AgecastError as exc:
        raise _fail(exc) from exc
    text = json.dumps(result, indent=2)
    if json_out:
        write_text_atomic(json_out, text + "\n")
    table = Table(title=f"agecast bench ({result['mode']}, {result['seconds']} s)")
    for col in ("stage", "p50 ms", "p95 ms", "p99 ms"):
        table.add_column(col)
    stages = {**result["stages_ms"], "frame→output": result["frame_to_output_ms"]}
    if encode:
        stages[f"frame→packet ({result['encoder']['name']})"] = result["frame_to_packet_ms"]
    for name, p in stages.items():
        table.add_row(name, str(p["p50"]), str(p["p95"]), str(p["p99"]))
    Console().print(table)
    Console().print(
        f"fps in {result['fps_in']} out {result['fps_out']}, dropped {result['dropped']}, "
        f"jitter {result['landmark_jitter_px']}, peak RSS {result['peak_rss_mb']} MB, "
        f"copies per frame {result['copies']['h2d_per_frame']} up "
        f"{result['copies']['d2h_per_frame']} down"
    )
    _say_if_short(result)


def _say_if_short(result: dict[str, Any]) -> None:
    """A run its source cut short is not the run asked for: say so where it cannot be missed."""
    if not result.get("ended_early"):
        return
    where = "during the warm-up" if result.get("ended_in_warmup") else "before the end"
    console.print(
        f"[bold yellow]warning:[/] the source ended {where}: these figures cover "
        f"{result['seconds']} s ({result['frames_out']} frames), not the {result['requested_s']} s "
        "asked (ended_early in the JSON)",
        soft_wrap=True,
    )


def _test_pattern(resolution: str, fps: float) -> str:
    match = re.fullmatch(r"(\d{2,5})x(\d{2,5})", resolution)
    if match is None:
        raise typer.BadParameter(
            f"{resolution!r}: give WxH, e.g. 1920x1080", param_hint="--resolution"
        )
    return f"testpattern:{match[1]}x{match[2]}@{fps:g}"


def _bench_cameras(
    settings: Settings,
    n: int,
    seconds: float,
    live: bool,
    warmup: float,
    json_out: Path | None,
    encode: bool,
) -> None:
    from agecast.pipeline.cameras import bench_cameras

    if settings.cameras and len(settings.cameras) < n:
        raise _fail(
            ValueError(f"--cameras {n}, but the config lists {len(settings.cameras)} cameras")
        )
    sources = settings.cameras[:n] if settings.cameras else [settings.source] * n
    try:
        result = bench_cameras(
            settings, sources, seconds=seconds, live=live, warmup=warmup, encode=encode
        )
    except AgecastError as exc:
        raise _fail(exc) from exc
    result["argv"] = ["agecast", *sys.argv[1:]]
    if json_out:
        write_text_atomic(json_out, json.dumps(result, indent=2) + "\n")
    table = Table(title=f"agecast bench: {n} cameras on {result['backend']} ({result['mode']})")
    columns = ("camera", "source", "fps out", "dropped", "frame→output p50/p95/p99 ms")
    for col in (*columns, "frame→packet p50/p95/p99 ms"):
        table.add_column(col)
    for cam in result["per_camera"]:
        p, k = cam["frame_to_output_ms"], cam.get("frame_to_packet_ms")
        table.add_row(
            cam["camera"], cam["source"]["uri"], str(cam["fps_out"]),
            str(sum(cam["dropped"].values())), f"{p['p50']} / {p['p95']} / {p['p99']}",
            f"{k['p50']} / {k['p95']} / {k['p99']}" if k else "not encoded",
        )  # fmt: skip
    Console().print(table)
    for cam in result["per_camera"]:
        _say_if_short({**cam, "camera": cam["camera"]})


@app.command()
@settings_flags
def serve(
    settings: Settings,
    host: Annotated[
        str, typer.Option(help="address to listen on (127.0.0.1 = this machine only)")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port")] = 8000,
    tls_cert: Annotated[
        Path | None, typer.Option(help="TLS certificate (PEM): serve https", exists=True)
    ] = None,
    tls_key: Annotated[Path | None, typer.Option(help="TLS private key (PEM)", exists=True)] = None,
) -> None:
    """Start the live monitor; open the printed sign-in URL in Chromium, Chrome or Edge.

    The URL carries a one-time operator token; give others links from `agecast links create`.
    Off this machine, WebCodecs needs https: pass --tls-cert/--tls-key
    (`agecast certs selfsigned` makes a pair for a LAN).
    """
    import uvicorn

    from agecast.api.app import create_app
    from agecast.api.auth import Auth
    from agecast.api.serve import uvicorn_options
    from agecast.serving import listen, record_address
    from agecast.stream.live import live_services

    if (tls_cert is None) != (tls_key is None):
        raise _fail(ValueError("give both --tls-cert and --tls-key, or neither"))
    services: list[Any] = []
    try:
        # check everything before a sign-in URL is printed: the identity and models (one
        # service per camera, one shared backend), every source opened, the port bound
        services = live_services(settings)
        for service in services:
            service.open_source()
        listener = listen(host, port)
    except AgecastError as exc:
        for service in services:
            service.stop()
        raise _fail(exc) from exc
    auth = Auth.at(settings.state_dir, secure_cookies=tls_cert is not None)
    _, token = auth.links.create("operator", label="serve", expires_s=12 * 3600, one_time=True)
    app_ = create_app(lambda: services, auth=auth)
    scheme = "https" if tls_cert else "http"
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    record_address(settings.state_dir, f"{scheme}://{shown}:{port}", host, port)
    # plain stdout, one line: a URL wrapped by a pretty printer cannot be clicked or copied
    sys.stdout.write(f"agecast monitor: {scheme}://{shown}:{port}/?token={token}\n")
    sys.stdout.flush()
    console.print(
        "one-time operator sign-in; `agecast links create --role viewer` makes links for others"
    )
    if len(services) > 1:
        named = ", ".join(f"{s.name} ({s.built.pipeline.source.uri})" for s in services)
        console.print(f"cameras: {named}; the monitor has a picker, URLs take ?camera=NAME")

    def _sigterm(signum: int, frame: object) -> None:
        # uvicorn re-raises the signal it stopped on, killing the process (exit -15) after a
        # clean shutdown; ending as on Ctrl-C gives exit 0.
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _sigterm)
    server = uvicorn.Server(
        uvicorn.Config(
            app_, host=host, port=port, log_level="warning", ssl_certfile=tls_cert,
            ssl_keyfile=tls_key, **uvicorn_options(),
        )
    )  # fmt: skip
    try:
        server.run(sockets=[listener])  # the socket bound above: no second bind to fail
    except KeyboardInterrupt:  # Ctrl-C or SIGTERM: uvicorn has shut down cleanly
        pass
    except AgecastError as exc:
        raise _fail(exc) from exc
    if not server.started:  # the app failed to start (its error is logged above)
        raise typer.Exit(code=3)


links_app = typer.Typer(help="Sign-in links for viewers and operators.", no_args_is_help=True)
app.add_typer(links_app, name="links")


def _auth(config: Path | None) -> Any:
    from agecast.api.auth import Auth

    return Auth.at(_settings(config).state_dir)


@links_app.command("create")
def links_create(
    role: Annotated[
        str, typer.Option(help="viewer (watch) or operator (watch and change)")
    ] = "viewer",
    expires: Annotated[str, typer.Option(help="lifetime: 30m, 12h, 7d")] = "12h",
    label: Annotated[str, typer.Option(help="who it is for (shown in the audit log)")] = "",
    burn_label: Annotated[
        bool, typer.Option(help="burn the label into every picture this link's viewers receive")
    ] = False,
    url: Annotated[
        str | None,
        typer.Option(
            help="the monitor's address (default: the one `agecast serve` last served on with "
            "this state_dir, else http://127.0.0.1:8000)"
        ),
    ] = None,
    config: ConfigOpt = None,
) -> None:
    """Make a sign-in link (printed once: the token is stored only as a hash)."""
    from agecast.api.auth import ROLES, parse_duration
    from agecast.serving import served_address

    url = url or served_address(_settings(config).state_dir)

    if role not in ROLES:
        raise _fail(ValueError(f"--role must be one of {', '.join(ROLES)}"))
    try:
        seconds = parse_duration(expires)
    except ValueError as exc:
        raise _fail(exc) from exc
    try:
        link, token = _auth(config).links.create(
            role, label=label, expires_s=seconds, burn_label=burn_label
        )
    except ValueError as exc:
        raise _fail(exc) from exc
    sys.stdout.write(f"{url.rstrip('/')}/?token={token}\n")
    console.print(f"link {link.id} ({link.role}, {label or 'no label'}) expires in {expires}")


@links_app.command("list")
def links_list(config: ConfigOpt = None) -> None:
    """Every link: id, role, label, expiry, state."""
    import time as _time

    table = Table(title="agecast links")
    for col in ("id", "role", "label", "expires", "state"):
        table.add_column(col)
    now = _time.time()
    for link in _auth(config).links.all():
        state = (
            "revoked" if link.revoked else "used" if link.one_time and link.used
            else "expired" if not link.usable(now) else "active"
        )  # fmt: skip
        expires = (
            _time.strftime("%Y-%m-%d %H:%M", _time.localtime(link.expires))
            if link.expires
            else "never"
        )
        table.add_row(link.id, link.role, link.label, expires, state)
    Console().print(table)


@links_app.command("revoke")
def links_revoke(
    which: Annotated[str, typer.Argument(help="link id or label")], config: ConfigOpt = None
) -> None:
    """Revoke a link (by id, or every link with a label); its sessions end at once."""
    revoked = _auth(config).links.revoke(which)
    if not revoked:
        raise _fail(
            ValueError(f"no active link with id or label {which!r} (see `agecast links list`)")
        )
    console.print(f"revoked {', '.join(link.id for link in revoked)}")


certs_app = typer.Typer(help="TLS certificates for serving on a LAN.", no_args_is_help=True)
app.add_typer(certs_app, name="certs")


@certs_app.command("selfsigned")
def certs_selfsigned(
    out: Annotated[Path, typer.Option(help="folder for cert.pem and key.pem")] = Path("certs"),
    host: Annotated[
        list[str], typer.Option(help="DNS name or IP the monitor is reached at (repeat)")
    ] = ["localhost", "127.0.0.1"],  # noqa: B006
    days: Annotated[int, typer.Option(help="validity in days")] = 90,
) -> None:
    """A self-signed certificate for --tls-cert/--tls-key (browsers ask to trust it once)."""
    from agecast.api.certs import write_selfsigned

    cert, key = write_selfsigned(out, host, days)
    console.print(f"wrote {cert} and {key}; serve with --tls-cert {cert} --tls-key {key}")


@app.command()
def backends() -> None:
    """Which inference backends can run on this machine, and why not."""
    from agecast.inference.registry import auto_note, available_backends

    table = Table(
        title="inference backends (auto: the one usable, or per model the fastest of several "
        "in a warm-up)"
    )
    table.add_column("backend")
    table.add_column("status")
    for name, why in available_backends().items():
        note = auto_note(name)
        usable = "[green]usable[/]" + (f" by name ({note})" if note else "")
        table.add_row(name, usable if why is None else f"[yellow]{why}[/]")
    Console().print(table)


engines_app = typer.Typer(
    help="TensorRT plans: built offline from each installed identity's and the detector's ONNX.",
    no_args_is_help=True,
)
app.add_typer(engines_app, name="engines")


@engines_app.command("build")
def engines_build(
    identity: Annotated[str | None, typer.Option(help="only this identity (id or folder)")] = None,
    all_: Annotated[
        bool, typer.Option("--all", help="every installed identity and the detector")
    ] = False,
    fp16: Annotated[bool, typer.Option("--fp16", help="half precision plans")] = False,
    config: ConfigOpt = None,
) -> None:
    """Build the missing plans (needs TensorRT and an NVIDIA GPU; run before `serve`)."""
    from agecast.inference.engines import EngineCache, build_engines, installed_models

    if (identity is None) == (not all_):
        raise _fail(ValueError("give --identity ID or --all"))
    settings = _settings(config)
    cache = EngineCache(settings.engines_dir)
    try:
        results = build_engines(
            installed_models(settings.identities_dir, identity), cache, fp16=fp16
        )
    except AgecastError as exc:
        raise _fail(exc) from exc
    for r in results:
        console.print(f"{'built' if r.built else 'present'}: {r.label} → {r.path}")


@engines_app.command("list")
def engines_list(config: ConfigOpt = None) -> None:
    """Plans in the engine cache and what each was built for."""
    from agecast.inference.engines import EngineCache

    cache = EngineCache(_settings(config).engines_dir)
    table = Table(title=f"TensorRT plans in {cache.root}")
    for column in ("plan", "model", "TensorRT", "GPU", "precision", "shapes", "MB", "built"):
        table.add_column(column)
    for e in cache.entries():
        k = e.key
        table.add_row(
            e.path.name, e.label, k.trt_version if k else "?",
            f"{k.gpu_name} sm{k.compute_capability}" if k else "?", k.precision if k else "?",
            "; ".join(f"{n} {list(p[2])}" for n, p in k.shapes) if k else "unreadable key",
            f"{e.size / 1e6:.1f}", e.built,
        )  # fmt: skip
    Console().print(table)


@engines_app.command("prune")
def engines_prune(config: ConfigOpt = None) -> None:
    """Remove plans no installed identity or detector needs, or built by another TensorRT."""
    from agecast.errors import BackendUnavailable
    from agecast.inference.engines import EngineCache, installed_models

    settings = _settings(config)
    cache = EngineCache(settings.engines_dir)
    try:
        from agecast.inference.tensorrt_backend import current_target

        target = current_target()
    except BackendUnavailable as exc:
        target = None
        console.print(f"TensorRT version not known here ({exc}): only unused plans are removed")
    installed = {m.sha256 for m in installed_models(settings.identities_dir)}
    removed = cache.prune(installed, target)
    for path, why in removed:
        console.print(f"removed {path.name}: {why}")
    console.print(f"{len(removed)} removed, {len(cache.entries())} plans kept in {cache.root}")


@identity_app.command("list")
def identity_list(
    long: Annotated[
        bool, typer.Option("--long", "-l", help="every field: actor, crop, folder")
    ] = False,
    config: ConfigOpt = None,
) -> None:
    """Installed identity packages: one line each (id, age, purpose, name) to fit a terminal.

    Reads manifests only: no model is loaded (`identity validate` checks one)."""
    import shutil

    from agecast.identities.package import discover

    settings = _settings(config)
    folders = settings.identities_dir
    missing = [str(f) for f in folders if not f.is_dir()]
    if missing:
        console.print(f"[yellow]not a folder:[/] {escape(', '.join(missing))}", soft_wrap=True)
    packages = discover(folders)
    out = sys.stdout
    out.write(f"identities in {', '.join(map(str, folders))}: {len(packages)}\n")
    if long:
        for p in packages:
            m = p.manifest
            out.write(f"\n{m.id}\n")
            for key, value in (
                ("name", m.display_name), ("actor", m.actor), ("age", m.age_label),
                ("purpose", m.purpose), ("crop", f"{m.crop.size} px"), ("folder", p.path),
            ):  # fmt: skip
                out.write(f"  {key:8} {value}\n")
        return
    rows = [("ID", "AGE", "PURPOSE", "NAME")]
    rows += [(p.manifest.id, p.manifest.age_label, p.manifest.purpose, p.manifest.display_name)
             for p in packages]  # fmt: skip
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    width = shutil.get_terminal_size((80, 24)).columns
    for row in rows:
        line = "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=False))
        line = f"{line}  {row[3]}"
        out.write((line if len(line) <= width else line[: width - 1] + "…") + "\n")


@identity_app.command("inspect")
def identity_inspect(name: str, config: ConfigOpt = None) -> None:
    """Print a package's manifest."""
    from agecast.identities.package import resolve

    try:
        package = resolve(name, _settings(config).identities_dir)
    except AgecastError as exc:
        raise _fail(exc) from exc
    Console().print_json(package.manifest.model_dump_json(by_alias=True))


@identity_app.command("validate")
def identity_validate(path: Path, backend: BackendOpt = None) -> None:
    """Check a package: manifest fields, model hash, model tensors against the manifest."""
    from agecast.identities.package import load_model, read_package
    from agecast.inference.registry import get_backend

    try:
        package = read_package(path)
        load_model(package, get_backend(backend or "auto")).close()
    except AgecastError as exc:
        raise _fail(exc) from exc
    console.print(f"[green]ok[/] {package.manifest.id}: {path} is a valid identity package")


@identity_app.command("build-testpattern")
def identity_build_testpattern(
    out: Annotated[Path, typer.Argument(help="package folder to write")] = Path(
        "models/testpattern"
    ),
) -> None:
    """(Re)build the built-in testpattern identity (placement tooling) into OUT."""
    from agecast.identities.testpattern import build_package

    build_package(out)
    console.print(f"wrote testpattern identity to {out}")


faceset_app = typer.Typer(
    help="Facesets: aligned face crops from footage, the training data of an identity.",
    no_args_is_help=True,
)
app.add_typer(faceset_app, name="faceset")


@faceset_app.command("extract")
def faceset_extract(
    source: Annotated[
        str,
        typer.Option(
            help="video file, folder of .jpg/.png pictures, or source URI "
            "(demo, testpattern:WxH, file:///…, rtsp://…)"
        ),
    ],
    out: Annotated[Path, typer.Option(help="faceset folder (an existing one is continued)")],
    size: Annotated[int, typer.Option(help="crop size in pixels")] = 256,
    template: Annotated[
        str, typer.Option(help="alignment template: ffhq | arcface_112 | arcface_128 | dfl_…")
    ] = "ffhq",
    every: Annotated[int, typer.Option(help="look at every Nth frame")] = 1,
    max_faces: Annotated[int, typer.Option(help="keep the N largest faces of a frame")] = 1,
    min_sharpness: Annotated[
        float, typer.Option(help="drop blurrier crops (variance of Laplacian; 0 = off)")
    ] = 10.0,
    max_yaw: Annotated[float, typer.Option(help="drop faces turned further (degrees)")] = 45.0,
    max_pitch: Annotated[float, typer.Option(help="drop faces tilted further (degrees)")] = 40.0,
    dedupe: Annotated[
        float, typer.Option(help="drop faces this close to one just kept (0 = keep all)")
    ] = 0.03,
    limit: Annotated[
        int | None, typer.Option(help="stop at source frame N (needed for testpattern)")
    ] = None,
    backend: Annotated[str, typer.Option(help="auto | onnxruntime | onnxruntime-cuda")] = "auto",
    insightface_dir: Annotated[
        Path | None, typer.Option(help="local insightface pack: SCRFD instead of YuNet")
    ] = None,
    detector_threshold: Annotated[float, typer.Option(help="face detector score threshold")] = 0.6,
) -> None:
    """Detect, align and crop faces from footage into a faceset for `agecast train`.

    Every frame goes through the live path's detector and alignment; faces that are blurred,
    turned too far, or near-duplicates of the last ones kept are dropped (and counted). Writes
    OUT/f<frame>_<face>.png and OUT/faceset.json. Interrupted? Run the same command again: it
    continues after the last frame done. Example:
    `agecast faceset extract --source take.mp4 --out facesets/actor`.
    """
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    from agecast.training.faceset import extract

    done = [0]
    with Progress(
        TextColumn("[bold]faceset"),
        BarColumn(),
        TextColumn("{task.completed} frames"),
        TextColumn("{task.fields[kept]} faces kept"),
        TimeRemainingColumn(),
        console=console,
        transient=True,
    ) as bar:
        task = bar.add_task("extract", total=None, kept=0)

        def shown(frames: int, total: int | None, kept: int) -> None:
            done[0] = frames
            bar.update(task, completed=frames, total=total, kept=kept)

        try:
            report = extract(
                source, out, size=size, template=template, every=every, max_faces=max_faces,
                min_sharpness=min_sharpness, max_yaw=max_yaw, max_pitch=max_pitch,
                dedupe=dedupe, limit=limit, backend=backend, insightface_dir=insightface_dir,
                detector_threshold=detector_threshold, progress=shown,
            )  # fmt: skip
        except AgecastError as exc:
            raise _fail(exc) from exc
        except KeyboardInterrupt:
            console.print(
                f"interrupted after frame {done[0]}; faceset {out} is saved: run the same "
                "command to continue"
            )
            raise typer.Exit(code=130) from None
    if report.nothing_to_do:
        state = "complete" if report.complete else f"done up to frame {report.frames_done}"
        console.print(f"faceset {out} is already {state}: nothing to do")
    dropped = ", ".join(f"{reason} {count}" for reason, count in report.dropped.items())
    console.print(
        f"[green]faceset[/] {out}: kept {report.kept} faces from {report.frames_done} frames"
        f"{'' if report.complete else ' (not finished: run again to continue)'}; "
        f"dropped {dropped}"
    )


# Consent for imported likenesses (see models/README.md); the same options on every import.
_REQUIRED = "required for a likeness with the other --consent-* options (or --consent-file)"
ConsentByOpt = Annotated[
    str | None,
    typer.Option("--consent-granted-by", help=f"who granted the actor's consent; {_REQUIRED}"),
]
ConsentProductionOpt = Annotated[
    str | None,
    typer.Option("--consent-production", help=f"production the consent covers; {_REQUIRED}"),
]
ConsentPurposeOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--consent-purpose",
        help=f"a consented use, e.g. 'on-set monitoring' (repeat); at least one {_REQUIRED}",
    ),
]
ConsentFromOpt = Annotated[
    str | None, typer.Option("--consent-from", help=f"first valid day, YYYY-MM-DD; {_REQUIRED}")
]
ConsentUntilOpt = Annotated[
    str | None, typer.Option("--consent-until", help=f"last valid day, YYYY-MM-DD; {_REQUIRED}")
]
ConsentRefOpt = Annotated[
    str | None, typer.Option("--consent-reference", help="contract or release reference")
]
ConsentFileOpt = Annotated[
    Path | None,
    typer.Option("--consent-file", help="consent record as JSON instead", exists=True),
]
ForceOpt = Annotated[bool, typer.Option("--force", help="replace a package already in --out")]
PurposeOpt = Annotated[
    str,
    typer.Option(
        help="likeness (a real person's face: loads only with their consent recorded) | demo | "
        "tooling (a test model that is no one's likeness: no consent needed)"
    ),
]
PURPOSES = ("likeness", "demo", "tooling")


def _purpose(value: str) -> Any:
    if value not in PURPOSES:
        raise _fail(ValueError(f"--purpose {value!r}: use {', '.join(PURPOSES)}"))
    return value


def _imported(out: Path, consent: Any) -> None:
    from agecast.identities.package import read_package

    m = read_package(out).manifest
    console.print(f"[green]wrote[/] identity {m.id} ({m.display_name}, {m.purpose}) to {out}")
    if consent is None and m.purpose == "likeness":
        console.print(
            f"[yellow]no consent recorded:[/] {m.id} is the likeness of {m.actor} and will not "
            "load (serve, render, identity validate) until their consent is in its manifest — "
            "re-run with --consent-granted-by/--consent-production/--consent-purpose/"
            "--consent-from/--consent-until or --consent-file (see models/README.md)"
        )


@identity_app.command("import-dfm")
def identity_import_dfm(
    file: Annotated[Path, typer.Argument(help="DeepFaceLab/DeepFaceLive .dfm model", exists=True)],
    out: Annotated[Path | None, typer.Option(help="package folder (default models/ID)")] = None,
    id: Annotated[str | None, typer.Option("--id", help="identity id (default from FILE)")] = None,
    actor: Annotated[str | None, typer.Option(help="whose likeness (default from FILE)")] = None,
    display_name: Annotated[
        str | None, typer.Option(help="name shown to the crew (default: --actor, else FILE's)")
    ] = None,
    purpose: PurposeOpt = "likeness",
    template: Annotated[
        str | None, typer.Option(help="crop template: dfl_whole_face (default) | dfl_full_face …")
    ] = None,
    morph: Annotated[
        float | None, typer.Option(help="morph_value 0–1 (default 0.75, DeepFaceLive's)")
    ] = None,
    consent_by: ConsentByOpt = None,
    consent_production: ConsentProductionOpt = None,
    consent_purpose: ConsentPurposeOpt = None,
    consent_from: ConsentFromOpt = None,
    consent_until: ConsentUntilOpt = None,
    consent_reference: ConsentRefOpt = None,
    consent_file: ConsentFileOpt = None,
    backend: BackendOpt = None,
    force: ForceOpt = False,
) -> None:
    """Wrap a DeepFaceLive .dfm model as an identity package (tensor names checked)."""
    from agecast.identities.dfm import consent_record, dfm_names, import_dfm
    from agecast.inference.registry import get_backend

    try:
        default_id, default_name, default_actor = dfm_names(file)
        identity = id or default_id
        actor = actor or default_actor
        consent = consent_record(
            actor,
            granted_by=consent_by,
            production=consent_production,
            purposes=consent_purpose or (),
            valid_from=consent_from,
            valid_until=consent_until,
            reference=consent_reference,
            consent_file=consent_file,
        )
        target = out or Path("models") / identity
        command = ["agecast", "identity", "import-dfm", str(file), "--out", str(target)]
        command += [f"--morph={morph}"] if morph is not None else []
        command += [f"--template={template}"] if template else []
        import_dfm(
            file,
            target,
            id=identity,
            actor=actor,
            display_name=display_name or (actor if actor != default_actor else default_name),
            template=template,
            morph=morph,
            consent=consent,
            purpose=_purpose(purpose),
            backend=get_backend(backend or "auto"),
            overwrite=force,
            command=shlex.join(command),
        )
    except AgecastError as exc:
        raise _fail(exc) from exc
    _imported(target, consent)


@identity_app.command("import-inswapper")
def identity_import_inswapper(
    model: Annotated[Path, typer.Argument(help="inswapper_128.onnx", exists=True)],
    arcface: Annotated[
        Path, typer.Option(help="ArcFace recognition model (w600k_r50.onnx)", exists=True)
    ],
    face: Annotated[Path, typer.Option(help="photo of the face to swap in", exists=True)],
    out: Annotated[Path | None, typer.Option(help="package folder (default models/ID)")] = None,
    id: Annotated[
        str | None, typer.Option("--id", help="identity id (default from --face)")
    ] = None,
    actor: Annotated[str | None, typer.Option(help="whose likeness (default from --face)")] = None,
    display_name: Annotated[
        str | None, typer.Option(help="name shown to the crew (default: --actor, else --face's)")
    ] = None,
    purpose: PurposeOpt = "likeness",
    consent_by: ConsentByOpt = None,
    consent_production: ConsentProductionOpt = None,
    consent_purpose: ConsentPurposeOpt = None,
    consent_from: ConsentFromOpt = None,
    consent_until: ConsentUntilOpt = None,
    consent_reference: ConsentRefOpt = None,
    consent_file: ConsentFileOpt = None,
    backend: BackendOpt = None,
    insightface_dir: Annotated[
        Path | None, typer.Option(help="local insightface pack: detect with its SCRFD")
    ] = None,
    force: ForceOpt = False,
) -> None:
    """Wrap inswapper_128 as an identity package; the face's embedding is computed once here."""
    from agecast.identities.dfm import consent_record, slug
    from agecast.identities.inswapper import import_inswapper
    from agecast.inference.registry import get_backend

    name = display_name or actor or face.stem.replace("_", " ").strip()
    identity = id or slug(f"inswapper-{face.stem}")
    actor = actor or name
    target = out or Path("models") / identity
    try:
        consent = consent_record(
            actor,
            granted_by=consent_by,
            production=consent_production,
            purposes=consent_purpose or (),
            valid_from=consent_from,
            valid_until=consent_until,
            reference=consent_reference,
            consent_file=consent_file,
        )
        command = ["agecast", "identity", "import-inswapper", str(model)]
        command += ["--arcface", str(arcface), "--face", str(face), "--out", str(target)]
        import_inswapper(
            model,
            arcface,
            face,
            target,
            id=identity,
            actor=actor,
            display_name=name,
            consent=consent,
            purpose=_purpose(purpose),
            backend=get_backend(backend or "auto"),
            insightface_dir=insightface_dir,
            overwrite=force,
            command=shlex.join(command),
        )
    except AgecastError as exc:
        raise _fail(exc) from exc
    _imported(target, consent)


@identity_app.command("export-dfm")
def identity_export_dfm(
    package: Annotated[Path, typer.Argument(help="identity package folder")],
    out: Annotated[Path, typer.Option(help=".dfm file to write")],
) -> None:
    """Write an identity package as a DeepFaceLive .dfm (morph_value = age for aged models)."""
    from agecast.identities.dfm import write_dfm

    try:
        write_dfm(package, out)
    except AgecastError as exc:
        raise _fail(exc) from exc
    console.print(f"[green]wrote[/] {out}")


@faceset_app.command("age-synth")
def faceset_age_synth(
    footage: Annotated[Path, typer.Option(help="footage faceset (from `faceset extract`)")],
    out: Annotated[Path, typer.Option(help="new faceset: every face at every age")],
    base_age: Annotated[int, typer.Option(help="the footage's own (nominal) age, years")],
    ages: Annotated[str, typer.Option(help="comma-separated target ages, e.g. 38,50,62,75")],
    seed: Annotated[int, typer.Option(help="places the age spots (same on every face)")] = 7,
) -> None:
    """A synthetic age target: each footage face procedurally aged (grey hair, lines, skin).

    For demos and tests, where no footage of the actor at the target age can be used; the
    faces record their age and the footage face they came from, so `agecast train` learns
    from the pairs. It is stylised ageing, not a prediction of anyone's face.
    """
    from agecast.training.synthetic_age import synthesize_faceset

    try:
        wanted = [int(a) for a in ages.split(",") if a.strip()]
        made = synthesize_faceset(footage, out, wanted, base_age, seed=seed)
    except ValueError as exc:
        raise _fail(ValueError(f"--ages {ages!r}: give whole years separated by commas")) from exc
    except AgecastError as exc:
        raise _fail(exc) from exc
    console.print(f"[green]wrote[/] {out}: {len(made)} faces at ages {wanted}")


@app.command()
def train(
    src: Annotated[Path, typer.Option(help="faceset of the identity (the target face/age)")],
    dst: Annotated[Path, typer.Option(help="faceset of the footage to swap")],
    out: Annotated[Path, typer.Option(help="run folder: checkpoints, previews, run.json")],
    resolution: Annotated[
        int, typer.Option(help="crop size: df a multiple of 16 in 128–320, reage of 32 in 128–1024")
    ] = 128,
    steps: Annotated[int, typer.Option(help="train until this many steps in total")] = 2000,
    batch: Annotated[int, typer.Option(help="faces per branch per step")] = 8,
    lr: Annotated[
        float | None, typer.Option(help="learning rate (default 2e-4 df, 1e-3 reage)")
    ] = None,
    encoder_dims: Annotated[int, typer.Option(help="encoder width (first stage)")] = 24,
    decoder_dims: Annotated[int, typer.Option(help="decoder width (last stage)")] = 16,
    age: Annotated[
        bool | None,
        typer.Option("--age/--no-age", help="age-conditioned (default: if src has ages)"),
    ] = None,
    preview_every: Annotated[int, typer.Option(help="write a preview grid every K steps")] = 250,
    save_every: Annotated[int, typer.Option(help="checkpoint every K steps")] = 250,
    seed: int = 0,
    device: Annotated[str, typer.Option(help="auto | cpu | cuda")] = "auto",
    threads: Annotated[int, typer.Option(help="CPU threads for torch (0 = default)")] = 0,
    minutes: Annotated[
        float | None, typer.Option(help="stop after this many minutes of training (checkpointed)")
    ] = None,
    resume: Annotated[bool, typer.Option(help="continue the run in --out")] = False,
    family: Annotated[
        Family,
        typer.Option(
            help="agecast-df: redraw the face as the identity (another face); agecast-reage: "
            "add an age delta to the plate (the same actor; --src holds the footage faces at "
            "several ages, e.g. from `faceset age-synth`)"
        ),
    ] = Family.DF,
    dims: Annotated[int, typer.Option(help="agecast-reage: channels of the first level")] = 16,
    crop: Annotated[int, typer.Option(help="agecast-reage: training window in pixels")] = 128,
    init_from: Annotated[
        Path | None, typer.Option(help="agecast-reage: start from this run's weights")
    ] = None,
    occluders: Annotated[
        float,
        typer.Option(
            min=0.0, max=1.0, help="agecast-reage: share of samples with a synthetic occluder"
        ),
    ] = 0.5,
    occluder_weight: Annotated[
        float, typer.Option(min=0.0, help="agecast-reage: extra loss weight on occluder pixels")
    ] = 0.0,
) -> None:
    """Train an identity model: src = the identity's faces, dst = the footage's faces."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    from agecast.training.reage_train import ReageOptions, train_reage
    from agecast.training.train import Progress as Step
    from agecast.training.train import TrainOptions
    from agecast.training.train import train as run_df

    common: dict[str, Any] = {
        "steps": steps,
        "batch": batch,
        "resolution": resolution,
        "save_every": save_every,
        "preview_every": preview_every,
        "seed": seed,
        "device": device,
        "threads": threads,
        "minutes": minutes,
    }
    options: TrainOptions | ReageOptions
    if family is Family.REAGE:
        options = ReageOptions(
            **common,
            lr=lr or 1e-3,
            dims=dims,
            crop=crop,
            init_from=str(init_from) if init_from else None,
            occluders=occluders,
            occluder_weight=occluder_weight,
        )
        run_training: Callable[..., Any] = train_reage
    else:
        options = TrainOptions(
            **common, lr=lr or 2e-4, encoder_dims=encoder_dims, decoder_dims=decoder_dims, age=age
        )
        run_training = run_df
    with Progress(
        TextColumn("[bold]train"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TextColumn("{task.fields[info]}"),
        TimeRemainingColumn(),
        console=console,
    ) as bar:
        task = bar.add_task("train", total=steps, info="")

        def shown(p: Step) -> None:
            info = f"loss {p.losses['total']:.3f}  {p.steps_per_s:.2f} it/s"
            bar.update(task, completed=p.step, info=info)

        try:
            record = run_training(
                src, dst, out, options, resume=resume, on_progress=shown, command=_command_line()
            )
        except (AgecastError, ValueError) as exc:
            raise _fail(exc) from exc
    last = record.history[-1]["loss"] if record.history else float("nan")
    console.print(
        f"[green]trained[/] {out}: step {record.step}, loss {last:.3f}, "
        f"{record.seconds / 60:.1f} min on {record.device}; previews in {out / 'previews'}"
    )


@app.command("export")
def export_cmd(
    run: Annotated[Path, typer.Argument(help="training run folder")],
    out: Annotated[Path, typer.Option(help="identity package folder to write, e.g. models/NAME")],
    id: Annotated[str | None, typer.Option(help="identity id (default: OUT's name)")] = None,
    actor: Annotated[str, typer.Option(help="whose face this is")] = "unknown",
    display_name: Annotated[str | None, typer.Option(help="name shown to the crew")] = None,
    purpose: Annotated[str, typer.Option(help="likeness | demo | tooling")] = "likeness",
    target_age: Annotated[int | None, typer.Option(help="default age on set (years)")] = None,
    consent_by: ConsentByOpt = None,
    consent_production: ConsentProductionOpt = None,
    consent_purpose: ConsentPurposeOpt = None,
    consent_from: ConsentFromOpt = None,
    consent_until: ConsentUntilOpt = None,
    consent_reference: ConsentRefOpt = None,
    consent_file: ConsentFileOpt = None,
    source_footage: Annotated[str, typer.Option(help="what the model was trained on")] = "",
    notes: Annotated[str, typer.Option(help="what the crew should know")] = "",
    format: Annotated[str, typer.Option(help="onnx | dfm (also a DeepFaceLive .dfm)")] = "onnx",
    color_transfer: Annotated[
        str | None,
        typer.Option(help="colour match this identity needs on auto: rct | rct-lab | none"),
    ] = None,
) -> None:
    """Export a trained run as an identity package, checking onnxruntime against torch."""
    from agecast.identities.dfm import consent_record
    from agecast.training.export import export_run

    if purpose not in ("likeness", "demo", "tooling"):
        raise _fail(ValueError(f"--purpose {purpose!r}: use likeness, demo or tooling"))
    if format not in ("onnx", "dfm"):
        raise _fail(ValueError(f"--format {format!r}: use onnx or dfm"))
    if color_transfer not in (None, "rct", "rct-lab", "none"):
        raise _fail(ValueError(f"--color-transfer {color_transfer!r}: use rct, rct-lab or none"))
    try:
        # the same consent options, and checks, as the import commands
        consent = consent_record(
            actor,
            granted_by=consent_by,
            production=consent_production,
            purposes=consent_purpose or (),
            valid_from=consent_from,
            valid_until=consent_until,
            reference=consent_reference,
            consent_file=consent_file,
        )
        report = export_run(
            run,
            out,
            identity_id=id or out.name,
            display_name=display_name,
            actor=actor,
            purpose=purpose,  # type: ignore[arg-type]
            target_age=target_age,
            consent=consent,
            source_footage=source_footage,
            notes=notes,
            fmt=format,  # type: ignore[arg-type]
            color_transfer=color_transfer,  # type: ignore[arg-type]
            command=_command_line(),
        )
    except (AgecastError, ValueError, OSError) as exc:
        raise _fail(exc) from exc
    console.print(
        f"[green]exported[/] {report.package} ({report.model_bytes / 1e6:.1f} MB model); "
        f"onnxruntime vs torch max |diff| {report.parity_max_abs_diff:.2e} over "
        f"{report.parity_crops} held-out crops"
        + (f"; DeepFaceLive model {report.dfm}" if report.dfm else "")
    )
    if purpose == "likeness" and consent is None:
        console.print(
            "[yellow]note:[/] no consent recorded: this likeness will not load until "
            "a consent record is added (see models/README.md)"
        )


# agecast record / takes / presets live in their own module (they reuse the flags above)
from agecast.takes.commands import register as _register_takes  # noqa: E402

_register_takes(app, settings_flags)

# agecast quality lives in its own module too
from agecast.quality.command import register as _register_quality  # noqa: E402

_register_quality(app, settings_flags)

if __name__ == "__main__":  # pragma: no cover
    run()

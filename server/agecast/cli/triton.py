"""``agecast triton``: a Triton Inference Server model repository from installed identities."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from agecast.cli.options import ConfigOpt, command_group, load_settings
from agecast.cli.output import console, fail
from agecast.errors import AgecastError

group = triton_app = command_group(
    "NVIDIA Triton Inference Server: the model repository that --backend triton calls."
)


@triton_app.command("repo")
def repo(
    out: Annotated[Path, typer.Option("--out", help="the model repository folder to write")],
    identity: Annotated[
        list[str] | None,
        typer.Option("--identity", help="an identity id (repeat; default: every installed one)"),
    ] = None,
    max_batch: Annotated[
        int, typer.Option("--max-batch", min=1, max=256, help="Triton's dynamic batch limit")
    ] = 8,
    instances: Annotated[
        int, typer.Option("--instances", min=1, max=64, help="model instances per GPU")
    ] = 1,
    platform: Annotated[
        str,
        typer.Option(
            "--platform",
            help="onnxruntime (Triton's ONNX Runtime backend) | tensorrt (a plan built here, "
            "on Triton's GPU) | python (Triton's Python backend running onnxruntime)",
        ),
    ] = "onnxruntime",
    kind: Annotated[str, typer.Option("--kind", help="instances on the gpu | cpu")] = "gpu",
    delay_us: Annotated[
        int,
        typer.Option(
            "--delay-us",
            min=0,
            max=100_000,
            help="dynamic batching's queue delay (0: none; what queued while busy still batches)",
        ),
    ] = 0,
    python_env: Annotated[
        Path | None,
        typer.Option(help="--platform python: the Python environment with onnxruntime"),
    ] = None,
    prune: Annotated[
        bool, typer.Option("--prune", help="remove the identity's other versions")
    ] = False,
    wire: Annotated[
        str | None,
        typer.Option(
            "--wire",
            help="how tensors travel: compact (8-bit face crops and results, half-float maps: "
            "a quarter of the bytes; default, but float32 for tensorrt) | float32 (the model's "
            "own tensors)",
        ),
    ] = None,
    config: ConfigOpt = None,
) -> None:
    """Write (or add to) a Triton model repository: one model per identity, its version taken
    from the ONNX sha256, with a config.pbtxt Triton accepts (names, shapes, dynamic batch)."""
    from agecast.identities.package import discover, resolve
    from agecast.identities.vouch import Vouches
    from agecast.inference.triton_wire import WIRE_KINDS
    from agecast.triton.repository import PLATFORMS, RepoOptions, write_repository

    if platform not in PLATFORMS:
        raise fail(ValueError(f"--platform {platform!r}: choose {' | '.join(PLATFORMS)}"))
    if wire is not None and wire not in WIRE_KINDS:
        raise fail(ValueError(f"--wire {wire!r}: choose {' | '.join(WIRE_KINDS)}"))
    if kind not in ("gpu", "cpu"):
        raise fail(ValueError(f"--kind {kind!r}: choose gpu | cpu"))
    settings = load_settings(config)
    vouches = Vouches(settings.state_dir)
    try:
        if identity:
            packages = [
                resolve(name, settings.identities_dir, installed_only=True, vouches=vouches)
                for name in identity
            ]
        else:
            packages = discover(settings.identities_dir)
        options = RepoOptions(
            platform=platform,  # type: ignore[arg-type]
            max_batch=max_batch,
            instances=instances,
            kind=kind,  # type: ignore[arg-type]
            delay_us=delay_us,
            python_env=python_env,
            prune=prune,
            wire=wire,  # type: ignore[arg-type]
        )
        written = write_repository(out, packages, options, vouches=vouches)
    except AgecastError as exc:
        raise fail(exc) from exc
    for w in written:
        console.print(f"{w.identity} → {w.folder} version {w.version}")

"""``agecast backends`` (what can run inference here) and ``agecast engines`` (TensorRT plans)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from agecast.cli.options import ConfigOpt, load_settings
from agecast.cli.output import console, fail
from agecast.errors import AgecastError

engines_app = typer.Typer(
    help="TensorRT plans: built offline from each installed identity's and the detector's ONNX.",
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    app.command()(backends)
    app.add_typer(engines_app, name="engines")


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
    from agecast.identities.engine_models import installed_models
    from agecast.inference.engines import EngineCache, build_engines

    if (identity is None) == (not all_):
        raise fail(ValueError("give --identity ID or --all"))
    settings = load_settings(config)
    cache = EngineCache(settings.engines_dir)
    try:
        results = build_engines(
            installed_models(settings.identities_dir, identity), cache, fp16=fp16
        )
    except AgecastError as exc:
        raise fail(exc) from exc
    for r in results:
        console.print(f"{'built' if r.built else 'present'}: {r.label} → {r.path}")


@engines_app.command("list")
def engines_list(config: ConfigOpt = None) -> None:
    """Plans in the engine cache and what each was built for."""
    from agecast.inference.engines import EngineCache

    cache = EngineCache(load_settings(config).engines_dir)
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
    from agecast.identities.engine_models import installed_models
    from agecast.inference.engines import EngineCache

    settings = load_settings(config)
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

"""The container's settings are real settings: every AGECAST_ variable that docker/compose.yaml,
docker/Dockerfile or docker/entrypoint.sh sets or reads is one agecast knows, and together they
load (an unknown one stops the server before it starts: issue 21; this replaces the regex
check of compose.yaml that was in tests/security/test_low_findings.py). No Docker needed."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, get_args

import pytest
import yaml

from agecast.cli.options import LogLevel
from agecast.errors import SettingsError
from agecast.inference.registry import available_backends
from agecast.settings import Settings, env_names

LOG_LEVELS = get_args(LogLevel)
DOCKER = Path(__file__).resolve().parents[1] / "docker"
# ${NAME:-default} / ${NAME-default} / ${NAME}: compose's interpolation, with its default
_ENV_ITEM = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)=(\"[^\"]*\"|'[^']*'|\S+)")
_INTERPOLATION = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?-([^}]*))?\}")


def _interpolate(value: str) -> str:
    return _INTERPOLATION.sub(lambda m: m.group(2) or "", value)


def compose_environments(text: str) -> dict[str, dict[str, str]]:
    """Each service's environment in a compose file (anchors and ``<<`` merges resolved)."""
    doc = yaml.safe_load(text)
    found: dict[str, dict[str, str]] = {}
    for name, service in (doc.get("services") or {}).items():
        env: Any = service.get("environment") or {}
        if isinstance(env, list):  # ["KEY=value", …]
            env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
        found[name] = {str(k): _interpolate(str(v)) for k, v in env.items()}
    return found


def dockerfile_environment(text: str) -> dict[str, str]:
    """The ENV settings of a Dockerfile (KEY=value form, continuation lines joined)."""
    joined = re.sub(r"\\\n\s*", " ", text)
    env: dict[str, str] = {}
    for line in joined.splitlines():
        if line.startswith("ENV "):
            for key, value in _ENV_ITEM.findall(line):
                env[key] = value.strip("\"'")
    return env


def problems(env: dict[str, str]) -> list[str]:
    """What is wrong with the AGECAST_ variables of ``env`` (empty: they all load)."""
    ours = {k: v for k, v in env.items() if k.startswith("AGECAST_")}
    wrong = [f"{k} is not a setting" for k in sorted(set(ours) - env_names())]
    if wrong:
        return wrong
    level = ours.pop("AGECAST_LOG_LEVEL", "info")
    if level.lower() not in LOG_LEVELS:
        wrong.append(f"AGECAST_LOG_LEVEL={level!r} is not one of {LOG_LEVELS}")
    backend = ours.get("AGECAST_BACKEND", "auto")
    if backend != "auto" and backend not in available_backends():
        wrong.append(f"AGECAST_BACKEND={backend!r} is not a backend")
    saved = {k: v for k, v in os.environ.items() if k.startswith("AGECAST_")}
    try:
        for key in saved:
            del os.environ[key]
        os.environ.update(ours)
        Settings.load()
    except SettingsError as exc:
        wrong.append(str(exc))
    finally:
        for key in ours:
            os.environ.pop(key, None)
        os.environ.update(saved)
    return wrong


def test_every_compose_service_sets_only_real_settings() -> None:
    services = compose_environments((DOCKER / "compose.yaml").read_text())
    assert {"agecast-cpu", "agecast-gpu"} <= set(services)
    for name, env in services.items():
        assert any(k.startswith("AGECAST_") for k in env), name  # the check reaches them
        assert problems(env) == [], name


def test_the_dockerfile_sets_only_real_settings_and_they_load() -> None:
    env = dockerfile_environment((DOCKER / "Dockerfile").read_text())
    assert {"AGECAST_STATE_DIR", "AGECAST_TAKES_DIR", "AGECAST_ENGINES_DIR"} <= set(env)
    assert problems(env) == []
    # and a compose service's settings on top of the image's
    for service in compose_environments((DOCKER / "compose.yaml").read_text()).values():
        assert problems({**env, **service}) == []


def test_the_entrypoint_reads_no_variable_the_settings_would_refuse() -> None:
    used = set(re.findall(r"AGECAST_[A-Z0-9_]+", (DOCKER / "entrypoint.sh").read_text()))
    assert used <= env_names(), sorted(used - env_names())


@pytest.mark.parametrize(
    ("environment", "says"),
    [
        ("AGECAST_ENGINES_FP16: '1'", "AGECAST_ENGINES_FP16 is not a setting"),
        ("AGECAST_BLEND: '2.5'", "blend must be at most 1"),
        ("AGECAST_LOG_LEVEL: loud", "AGECAST_LOG_LEVEL='loud'"),
        ("AGECAST_BACKEND: tensorrt-fast", "is not a backend"),
    ],
)
def test_a_wrong_variable_in_a_compose_file_is_named(environment: str, says: str) -> None:
    text = f"services:\n  a:\n    image: x\n    environment:\n      {environment}\n"
    found = problems(compose_environments(text)["a"])
    assert any(says in p for p in found), found


def test_list_form_and_interpolation_defaults_are_read() -> None:
    text = (
        "services:\n  a:\n    environment:\n"
        "      - AGECAST_BLEND=${BLEND:-0.5}\n      - AGECAST_LAYOUT=aged\n"
    )
    env = compose_environments(text)["a"]
    assert env == {"AGECAST_BLEND": "0.5", "AGECAST_LAYOUT": "aged"}
    assert problems(env) == []

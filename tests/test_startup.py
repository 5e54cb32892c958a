"""Starting agecast with something wrong: one clear message, a non-zero exit, no traceback, and
no sign-in URL for a server that will not serve."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
FAST = ["--identity", "testpattern"]


def agecast(
    *args: str, env: dict[str, str] | None = None, cwd: Path = REPO
) -> subprocess.CompletedProcess[str]:
    """The real program in a subprocess (this interpreter, this checkout)."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("AGECAST_")}
    clean["PYTHONPATH"] = str(REPO / "server")
    return subprocess.run(
        [sys.executable, "-m", "agecast.cli", *args],
        cwd=cwd,
        env={**clean, **(env or {})},
        capture_output=True,
        text=True,
        timeout=300,
    )


def assert_one_clear_error(result: subprocess.CompletedProcess[str], *needles: str) -> None:
    text = result.stdout + result.stderr
    assert result.returncode != 0, text
    assert "Traceback" not in text, text
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, text
    for needle in needles:
        assert needle in errors[0], text
    assert "token=" not in text, text  # no sign-in URL for a server that will not serve


@pytest.fixture
def state(tmp_path: Path) -> dict[str, str]:
    return {"AGECAST_STATE_DIR": str(tmp_path / "state")}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.parametrize(
    ("source", "needle"),
    [
        ("missing.mp4", "not found"),
        ("corrupt.mp4", "not a video FFmpeg can read"),
        ("v4l2:///dev/video97", "camera /dev/video97 not found"),
    ],
)
def test_serve_with_a_bad_source_says_so_before_any_url(
    tmp_path: Path, state: dict[str, str], source: str, needle: str
) -> None:
    (tmp_path / "corrupt.mp4").write_bytes(os.urandom(20_000))
    uri = source if "://" in source else str(tmp_path / source)
    result = agecast("serve", "--source", uri, *FAST, "--port", str(_free_port()), env=state)
    assert_one_clear_error(result, needle)


def test_serve_on_a_port_in_use_says_so_before_any_url(state: dict[str, str]) -> None:
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]
        result = agecast(
            "serve", "--source", "testpattern:64x64@30", *FAST, "--port", str(port), env=state
        )
    assert_one_clear_error(result, f"port {port}", "already in use", "--port")


def test_render_into_an_unwritable_place_fails_before_rendering(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    out = blocker / "take.mp4"  # a folder that cannot be made: a file is in the way
    result = agecast("render", "--source", "testpattern:64x64@30", *FAST, "--out", str(out))
    assert_one_clear_error(result, "--out", str(out))
    assert "built pipeline" not in result.stderr  # said before any model was loaded

    folder = tmp_path / "outputs"
    folder.mkdir()
    result = agecast("render", "--source", "testpattern:64x64@30", *FAST, "--out", str(folder))
    assert_one_clear_error(result, "is a folder")


def test_a_failed_render_leaves_no_partial_file(tmp_path: Path) -> None:
    clip = tmp_path / "half.mp4"
    clip.write_bytes(os.urandom(5000))
    out = tmp_path / "out" / "take.mp4"
    result = agecast("render", "--source", str(clip), *FAST, "--out", str(out))
    assert_one_clear_error(result, "half.mp4")
    assert not out.exists() and list(out.parent.iterdir()) == []


def test_a_render_writes_its_file_whole(tmp_path: Path) -> None:
    out = tmp_path / "take.mp4"
    result = agecast(
        "render", "--source", "testpattern:64x64@30", *FAST, "--frames", "4", "--out", str(out)
    )
    assert result.returncode == 0, result.stderr
    assert out.stat().st_size > 0 and [p.name for p in tmp_path.iterdir()] == ["take.mp4"]


def test_bad_environment_values_are_one_line(tmp_path: Path) -> None:
    bad = agecast("identity", "list", env={"AGECAST_BLEND": "lots"})
    assert_one_clear_error(bad, "blend", "'lots'")
    json_ish = agecast("identity", "list", env={"AGECAST_CAMERAS": "[not json"})
    assert_one_clear_error(json_ish, "JSON list")


def test_list_settings_take_plain_paths(tmp_path: Path) -> None:
    from agecast.identities.testpattern import build_package

    build_package(tmp_path / "one" / "tp")
    listed = agecast(
        "identity",
        "list",
        env={"AGECAST_IDENTITIES_DIR": f"{tmp_path / 'none'}:{tmp_path / 'one'}"},
    )
    assert listed.returncode == 0, listed.stderr
    assert "testpattern" in listed.stdout and "Traceback" not in listed.stderr


def test_a_traceback_only_with_debug_logging(tmp_path: Path) -> None:
    args = [
        "render",
        "--source",
        str(tmp_path / "gone.mp4"),
        *FAST,
        "--out",
        str(tmp_path / "o.mp4"),
    ]
    quiet = agecast(*args)
    assert_one_clear_error(quiet, "gone.mp4")
    loud = agecast("--log-level", "debug", *args)
    assert loud.returncode != 0 and "Traceback" in loud.stderr and "gone.mp4" in loud.stderr


def test_serve_with_a_bad_display_lut_names_the_file_and_line(
    tmp_path: Path, state: dict[str, str]
) -> None:
    bad = tmp_path / "show.cube"
    bad.write_text("LUT_3D_SIZE 2\n0 0 0\n1 0 zero\n")
    result = agecast(
        "serve", "--source", "testpattern:64x64@30", *FAST, "--port", str(_free_port()),
        "--display-luts", f"show={bad}", env=state,
    )  # fmt: skip
    assert_one_clear_error(result, "display_luts", str(bad), "line 3")

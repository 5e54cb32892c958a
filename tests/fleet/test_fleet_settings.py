"""The fleet setting, the key file and signed requests, as an operator setting up carts meets
them: entries read the way they are written, and every mistake says what to write instead."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from agecast.errors import FleetError, SettingsError
from agecast.fleet.signing import FleetKey, Replays, check_request, init_key, request_header
from agecast.settings import FleetEntry, Settings, fleet_entries
from tests.fleet.conftest import Clock

PIN = "AB:" * 31 + "CD"


def test_entries_read_as_written(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "AGECAST_FLEET", f"B=https://10.0.0.12:8443/,C=https://cart-c:8443#sha256={PIN}"
    )
    monkeypatch.setenv("AGECAST_NODE_NAME", "A")
    settings = Settings.load()
    assert fleet_entries(settings.fleet) == [
        FleetEntry("B", "https://10.0.0.12:8443", None),
        FleetEntry("C", "https://cart-c:8443", "ab" * 31 + "cd"),
    ]
    assert settings.resolved_fleet_secret == settings.state_dir / "fleet_secret"


@pytest.mark.parametrize(
    ("entry", "why"),
    [
        ("https://cart-b:8443", "no NAME= before the address"),
        ("B=ftp://cart-b", "must be http://HOST:PORT or https://HOST:PORT"),
        ("B=https://cart-b:8443/monitor", "no user, path or query"),
        ("B=https://cart-b:8443#ab12", "after # only sha256="),
        (f"B=http://cart-b:8000#sha256={PIN}", "a certificate pin needs an https address"),
        ("cart b=https://cart-b:8443", "cannot name a node"),
        ("B=https://cart-b:99999", "not a URL"),
    ],
)
def test_a_bad_entry_names_itself_and_the_fix(entry: str, why: str) -> None:
    with pytest.raises(SettingsError) as err:
        Settings.load(fleet=[entry], node_name="A")
    message = str(err.value)
    assert f"fleet entry {entry!r}" in message and why in message
    assert 'e.g. "B=https://10.0.0.12:8443"' in message


def test_a_name_twice_or_this_node_itself_is_refused() -> None:
    with pytest.raises(SettingsError, match="'B' is used twice"):
        Settings.load(fleet=["B=http://x:1", "B=http://y:1"], node_name="A")
    with pytest.raises(SettingsError, match="this node's own name"):
        Settings.load(fleet=["A=http://x:1"], node_name="A")
    with pytest.raises(SettingsError, match="cannot name a node"):
        Settings.load(node_name="cart a")


def test_the_key_file_is_made_once_and_checked(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "fleet_secret"
    with pytest.raises(SettingsError, match="agecast fleet init"):
        FleetKey.load(path)
    assert init_key(path) and not init_key(path)  # a second init keeps the first key
    assert path.stat().st_mode & 0o777 == 0o600
    FleetKey.load(path)
    path.write_text("not hex")
    with pytest.raises(SettingsError, match="copy it again"):
        FleetKey.load(path)


def test_a_signed_request_works_once_for_the_node_it_names(clock: Clock) -> None:
    key, replays = FleetKey(b"k" * 32), Replays()
    clock.now += 1  # (a request is stamped in whole seconds: one from the start's is refused)
    header = request_header(key, "A", "B", "GET", "/api/peer/status")
    assert check_request(key, replays, "B", header, "GET", "/api/peer/status")[0] == "A"
    with pytest.raises(FleetError, match="replay"):
        check_request(key, replays, "B", header, "GET", "/api/peer/status")
    with pytest.raises(FleetError, match="do not share one fleet key"):
        check_request(key, replays, "B", header, "GET", "/api/peer/links?ids=x")
    other = request_header(key, "A", "C", "GET", "/api/peer/status")
    with pytest.raises(FleetError, match="this node is 'B', not 'C'"):
        check_request(key, replays, "B", other, "GET", "/api/peer/status")
    old = header.split(" ")
    old[3] = str(int(old[3]) - 120)
    old[5] = key.sign("v1", "A", "B", old[3], old[4], "GET", "/api/peer/status")
    with pytest.raises(FleetError, match="off this node's clock"):
        check_request(key, Replays(), "B", " ".join(old), "GET", "/api/peer/status")


def test_a_newer_peer_s_extra_fields_are_left_aside() -> None:
    """A fleet is upgraded one node at a time: what a newer node adds to its reply is ignored."""
    from agecast.live.status import FleetNode, PeerReply

    camera = {
        "name": "A", "source": "testpattern:64x64@30", "state": "live", "fx": "on",
        "identity": "testpattern", "fps_in": 30.0, "fps_out": 30.0, "frames_out": 9,
        "dropped": {}, "frame_to_output_ms": {"p50": 1.0, "p95": 2.0},
        "server_latency_ms": {"p50": 1.0, "p95": 2.0}, "viewers": 0, "width": 64, "height": 64,
        "recording": None, "error": None,
    }  # fmt: skip
    reply = PeerReply.model_validate(
        {"node": "B", "version": "9.9", "cameras": [{**camera, "hdr": True}], "racks": 3}
    )
    node = FleetNode(
        name="B", url="https://b", here=False, reachable=True, last_seen_s=0.1, error=None,
        version=reply.version, cameras=list(reply.cameras),
    )  # fmt: skip
    assert node.model_dump(mode="json")["cameras"][0] == {**camera, "fx": "on"}
    with pytest.raises(ValidationError, match="identity"):  # a field this node needs, missing
        PeerReply.model_validate({"node": "B", "version": "0.1", "cameras": [
            {k: v for k, v in camera.items() if k != "identity"}
        ]})  # fmt: skip

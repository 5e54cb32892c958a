"""A captured ticket or request is refused after the node restarts as before it: used ticket
nonces are kept in the state folder, and what was signed before the start is refused when
this node cannot know whether it was used (docs/fleet.md, SECURITY.md)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from agecast.errors import FleetError
from agecast.fleet.peers import Fleet
from agecast.fleet.signing import NONCES_FILE, FleetKey, Replays, check_request, request_header
from agecast.fleet.tickets import TICKET_S, make_ticket, read_ticket
from agecast.settings import Settings
from tests.fleet.conftest import Clock

KEY = FleetKey(b"k" * 32)
PATH = "/api/peer/status"


def ticket() -> str:
    """A fresh ticket from node A to node B, signed now."""
    return make_ticket(
        KEY, issuer="A", audience="B", link="x", role="viewer", label="", burn_label=False,
        link_expires=None,
    )  # fmt: skip


def redeem(replays: Replays, text: str) -> str:
    """B reads ``text``: the link it carries, or FleetError."""
    return read_ticket(KEY, replays, text, me="B", known=frozenset({"A"})).link


def test_a_used_ticket_stays_used_after_a_restart(tmp_path: Path, clock: Clock) -> None:
    path = tmp_path / NONCES_FILE
    early = ticket()  # signed before B's first start: an agecast before the file may have used it
    clock.now += 1
    first = Replays(path)
    with pytest.raises(FleetError, match="signed before this node started"):
        redeem(first, early)
    clock.now += 1
    text = ticket()
    assert redeem(first, text) == "x"
    assert path.stat().st_mode & 0o777 == 0o600
    clock.now += 10  # B restarts within the ticket's 60 s
    after = Replays(path)
    with pytest.raises(FleetError, match="this fleet ticket was already used"):
        redeem(after, text)
    clock.now += 1
    assert redeem(after, ticket()) == "x"  # a fresh one still signs in
    clock.now += TICKET_S + 1  # both expired: the next use leaves them out of the file
    fresh = ticket()
    redeem(Replays(path), fresh)
    used = json.loads(path.read_text())["used"]
    assert list(used) == [json.loads(_body(fresh))["nonce"]]


def _body(text: str) -> bytes:
    import base64

    body = text.partition(".")[0]
    return base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))


@pytest.mark.parametrize(
    "contents", ["{not json", "[1, 2]", '{"since": 0, "used": {"n": "soon"}}', None]
)
def test_an_unreadable_nonce_file_refuses_what_came_before_the_start(
    tmp_path: Path, clock: Clock, caplog: pytest.LogCaptureFixture, contents: str | None
) -> None:
    path = tmp_path / NONCES_FILE
    if contents is None:
        path.mkdir()  # not a file at all
    else:
        path.write_text(contents)
    old = ticket()  # maybe used before the restart: the file that would say so is unreadable
    clock.now += 5
    with caplog.at_level(logging.WARNING, logger="agecast.fleet.signing"):
        replays = Replays(path)
    assert f"cannot read the used fleet tickets in {path}" in caplog.text
    with pytest.raises(FleetError, match="signed before this node started"):
        redeem(replays, old)
    clock.now += 1
    if contents is None:
        path.rmdir()
    assert redeem(replays, ticket()) == "x"  # tickets signed since the start: as ever
    clock.now += 5  # and a restart once the file is whole again still refuses the old one
    with pytest.raises(FleetError, match="signed before this node started"):
        redeem(Replays(path), old)


def test_a_nonce_file_that_cannot_be_written_refuses_the_ticket(
    tmp_path: Path, clock: Clock
) -> None:
    replays = Replays(tmp_path / "gone" / NONCES_FILE)
    text = ticket()
    with pytest.raises(FleetError, match="cannot note this ticket as used"):
        redeem(replays, text)
    with pytest.raises(FleetError, match="already used"):  # and it is spent all the same
        redeem(replays, text)


def test_a_request_signed_before_the_restart_is_refused(clock: Clock) -> None:
    before = Replays()
    clock.now += 0.2
    header = request_header(KEY, "A", "B", "GET", PATH)
    assert check_request(KEY, before, "B", header, "GET", PATH)[0] == "A"
    clock.now += 0.5  # B restarts; its request nonces are gone
    after = Replays()
    with pytest.raises(FleetError, match="signed before this node started"):
        check_request(KEY, after, "B", header, "GET", PATH)
    clock.now += 1  # the peer's next round
    fresh = request_header(KEY, "A", "B", "GET", PATH)
    assert check_request(KEY, after, "B", fresh, "GET", PATH)[0] == "A"


def test_a_node_keeps_its_ticket_nonces_in_its_state_folder(tmp_path: Path) -> None:
    settings = Settings.load(fleet=["B=http://127.0.0.1:9"], node_name="A", state_dir=tmp_path)
    (tmp_path / "fleet_secret").write_text("ab" * 32)
    fleet = Fleet.from_settings(settings)
    assert fleet is not None and fleet.replays.path == tmp_path / NONCES_FILE

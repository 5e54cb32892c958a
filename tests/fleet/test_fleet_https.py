"""Trusting a node over https: a self-signed node is trusted by its certificate's pin (or a CA
file that holds its certificate), never by no check at all; a node outside the fleet setting
is refused even with the key."""

from __future__ import annotations

import os
import ssl
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from agecast.api.certs import write_selfsigned
from agecast.errors import FleetError
from agecast.fleet.client import PeerClient, certificate_pin
from agecast.fleet.peers import PEER_STATUS
from agecast.fleet.signing import FleetKey, init_key
from agecast.settings import FleetEntry
from tests.e2e.conftest import free_port
from tests.fleet.nodes import Node

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def https_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Node, Path, FleetKey]]:
    """Node B serving https with a self-signed certificate (A, in its fleet, is not running)."""
    tmp = tmp_path_factory.mktemp("fleet-https")
    cert, key_file = write_selfsigned(tmp / "certs", ["localhost", "127.0.0.1"], 1)
    b = Node(free_port(), tmp / "b.log", tmp / "b", host="localhost", scheme="https")
    init_key(b.state_dir / "fleet_secret")
    b.args = ["--node-name", "B", "--fleet", "A=http://127.0.0.1:9",
              "--tls-cert", str(cert), "--tls-key", str(key_file)]  # fmt: skip
    before = os.environ.get("SSL_CERT_FILE")
    os.environ["SSL_CERT_FILE"] = str(cert)  # so the start-up health check trusts it
    try:
        try:
            b.start()
        finally:  # only the health check trusts it: the tests' clients must not
            if before is None:
                os.environ.pop("SSL_CERT_FILE", None)
            else:
                os.environ["SSL_CERT_FILE"] = before
        yield b, cert, FleetKey.load(b.state_dir / "fleet_secret")
    finally:
        b.stop()  # also a node whose start timed out


def client(b: Node, key: FleetKey, *, pin: str | None, ca: Path | None = None,
           me: str = "A") -> PeerClient:  # fmt: skip
    url = f"https://localhost:{b.port}"
    return PeerClient(FleetEntry("B", url, pin), me, key, ca=ca, timeout_s=5)


def test_a_pinned_self_signed_node_answers(https_node: tuple[Node, Path, FleetKey]) -> None:
    b, cert, key = https_node
    printed = subprocess.run(
        [sys.executable, "-m", "agecast.cli", "fleet", "pin", str(cert)],
        capture_output=True, text=True, check=True, timeout=60,
    ).stdout.strip()  # fmt: skip
    pin = certificate_pin(ssl.PEM_cert_to_DER_cert(cert.read_text()))
    assert printed == f"sha256={pin}"  # what the fleet entry takes after #
    reply = client(b, key, pin=pin).get(PEER_STATUS)
    assert reply["node"] == "B" and [c["name"] for c in reply["cameras"]] == ["cam1"]


def test_a_wrong_pin_is_refused_naming_both(https_node: tuple[Node, Path, FleetKey]) -> None:
    b, _, key = https_node
    with pytest.raises(FleetError, match="not the pinned 00000000"):
        client(b, key, pin="0" * 64).get(PEER_STATUS)


def test_without_a_pin_the_certificate_must_chain_to_a_trusted_ca(
    https_node: tuple[Node, Path, FleetKey],
) -> None:
    b, cert, key = https_node
    with pytest.raises(FleetError, match="not trusted.*pin it in the fleet entry"):
        client(b, key, pin=None).get(PEER_STATUS)
    assert client(b, key, pin=None, ca=cert).get(PEER_STATUS)["node"] == "B"


def test_a_node_outside_the_fleet_setting_is_refused(
    https_node: tuple[Node, Path, FleetKey],
) -> None:
    b, cert, key = https_node
    with pytest.raises(FleetError, match="'C' is not in B's fleet setting"):
        client(b, key, pin=None, ca=cert, me="C").get(PEER_STATUS)
    with pytest.raises(FleetError, match="do not share one fleet key"):
        client(b, FleetKey(b"\x02" * 32), pin=None, ca=cert).get(PEER_STATUS)

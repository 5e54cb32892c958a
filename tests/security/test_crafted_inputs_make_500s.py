"""Attack 10: inputs that made the server answer 500 or crash: a cookie with a non-ASCII
character, a manifest declaring a tensor of a trillion numbers, a manifest nested thousands deep
(a RecursionError that broke `identity list`, every identity switch and identity=auto)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from agecast.errors import IdentityError
from agecast.identities.package import discover, read_package, resolve
from tests.api.conftest import Running
from tests.identities.conftest import PackageFactory

BAD_COOKIE = "agecast_session=a.b.\xe9".encode("latin-1")


def test_a_non_ascii_cookie_is_not_signed_in_not_a_server_error(server: Running) -> None:
    r = httpx.get(server.base + "/api/status", headers={"cookie": BAD_COOKIE})
    assert r.status_code == 401, r.status_code

    async def socket() -> int:
        try:
            async with connect(
                f"{server.ws}/ws/monitor", additional_headers={"Cookie": "agecast_session=a.b.é"}
            ) as ws:
                await asyncio.wait_for(ws.recv(), 5)
        except InvalidStatus as refused:
            return refused.response.status_code
        return 0

    assert asyncio.run(socket()) in (401, 403)
    assert httpx.get(server.base + "/api/health").status_code == 200


def test_a_trillion_number_input_is_not_a_valid_identity(make_package: PackageFactory) -> None:
    folder = make_package()
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["model"]["inputs"][0]["shape"] = [1, 1e6, 1e6]
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(IdentityError, match="model.inputs.0.shape"):
        read_package(folder)


def test_a_deeply_nested_manifest_is_refused_and_skipped(
    make_package: PackageFactory, tmp_path: Path
) -> None:
    good = make_package("good")
    bad = tmp_path / "nested"
    bad.mkdir()
    (bad / "manifest.json").write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(IdentityError, match="nested too deeply"):
        read_package(bad)
    assert [p.path for p in discover([tmp_path])] == [good]  # the listing still works
    assert resolve("auto", [tmp_path]).path == good

"""Attack 8: several `agecast links` processes and the server change links.json at once.
Before the fix they shared one fixed temp file and no lock: links were lost, calls failed,
and a revoke could be undone by a concurrent create."""

from __future__ import annotations

import multiprocessing
import stat
from pathlib import Path

from agecast.api.auth import Auth, LinkStore

PROCESSES = 6
EACH = 20


def _create(state: str, who: int) -> list[str]:
    store = LinkStore(Path(state))
    return [store.create("viewer", label=f"p{who}-{i}", expires_s=3600)[0].id for i in range(EACH)]


def _revoke_then_check(state: str, label: str) -> bool:
    return bool(LinkStore(Path(state)).revoke(label))


def test_concurrent_creates_lose_no_link_and_fail_no_call(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(PROCESSES) as pool:
        made = pool.starmap(_create, [(str(tmp_path), who) for who in range(PROCESSES)])
    ids = {link_id for batch in made for link_id in batch}
    assert len(ids) == PROCESSES * EACH
    assert {link.id for link in LinkStore(tmp_path).all()} == ids
    assert not list(tmp_path.glob("*.tmp")) and not list(tmp_path.glob(".*.tmp"))


def test_a_revoke_is_never_undone_by_a_concurrent_create(tmp_path: Path) -> None:
    store = LinkStore(tmp_path)
    targets = [store.create("operator", label=f"crew{i}", expires_s=3600)[0] for i in range(8)]
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(PROCESSES) as pool:
        creating = pool.starmap_async(_create, [(str(tmp_path), who) for who in range(3)])
        revoked = pool.starmap(_revoke_then_check, [(str(tmp_path), t.label) for t in targets])
        creating.get(120)
    assert all(revoked)
    after = {link.id: link for link in LinkStore(tmp_path).all()}
    assert all(after[t.id].revoked for t in targets), "a revoke was undone"


def test_state_files_are_private(tmp_path: Path) -> None:
    state = tmp_path / "state"
    auth = Auth.at(state)
    auth.links.create("viewer", label="x", expires_s=60)
    auth.audit.write("probe")
    assert stat.S_IMODE(state.stat().st_mode) == 0o700
    for name in ("links.json", "secret", "audit.jsonl"):
        assert stat.S_IMODE((state / name).stat().st_mode) == 0o600, name


def test_creating_and_revoking_links_is_audited(tmp_path: Path) -> None:
    auth = Auth.at(tmp_path)
    link, _ = auth.links.create("operator", label="2nd-ac", expires_s=60)
    auth.links.revoke("2nd-ac")
    events = (tmp_path / "audit.jsonl").read_text()
    assert '"event": "link_created"' in events and f'"link": "{link.id}"' in events
    assert '"event": "link_revoked"' in events
    assert link.token_sha256 not in events

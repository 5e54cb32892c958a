"""Vouches: which identity packages may run without an actor's consent record.

A package's ``purpose`` is what its author wrote. ``demo`` and ``tooling`` say "no real person's
likeness", which lets a package run with no consent record, so the claim counts only when
someone this server trusts stands behind it:

* the packages shipped in agecast's own ``models/`` folder (the install belongs to the owner);
* packages the server's owner vouched for on this machine, with ``agecast identity vouch PATH``
  or by making them here (``agecast export``, ``import-dfm``, ``import-inswapper`` or
  ``identity build-testpattern`` with ``--purpose demo|tooling``): whoever runs those holds the
  state folder, the trust SECURITY.md gives the owner. The monitor's operators cannot vouch.

A vouch names the package's manifest digest, the sha256 of ``manifest.json``'s bytes. The
manifest holds the sha256 of every file the model reads, checked whenever the model loads, so
the digest stands for the whole package: change the purpose, the model or a weights file and
the vouch no longer applies. Vouches are kept in ``<state_dir>/vouched.json`` (0600, changed
under a lock and written atomically).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from agecast.errors import IdentityError
from agecast.outfiles import file_lock, private_dir, write_private
from agecast.settings import REPO_MODELS_DIR, default_state_dir

if TYPE_CHECKING:
    from agecast.identities.package import IdentityPackage

log = logging.getLogger(__name__)

VOUCH_FILE = "vouched.json"


@dataclass(frozen=True, slots=True)
class Vouch:
    """Someone on this machine stood behind a package's purpose."""

    digest: str  # sha256 of the package's manifest.json
    id: str
    purpose: str
    folder: str  # where it was when vouched (for people reading the list)
    by: str  # the command that vouched
    at: float


def shipped(package: IdentityPackage) -> bool:
    """The package is one of agecast's own, in the install's ``models/`` folder."""
    return package.path.resolve().is_relative_to(REPO_MODELS_DIR.resolve())


class Vouches:
    """The vouches of one state folder (``None``: only the shipped packages are vouched)."""

    @classmethod
    def default(cls) -> Vouches:
        """This user's vouches (``AGECAST_STATE_DIR`` or the XDG state folder): for code that
        loads an identity without settings at hand."""
        return cls(default_state_dir())

    def __init__(self, state_dir: Path | None) -> None:
        self.path = None if state_dir is None else state_dir / VOUCH_FILE
        self._lock_path = None if state_dir is None else state_dir / "vouched.lock"

    def covers(self, package: IdentityPackage) -> bool:
        """Someone this server trusts vouched for ``package`` exactly as it is now."""
        return shipped(package) or any(v.digest == package.digest for v in self.all())

    def all(self) -> list[Vouch]:
        if self.path is None:
            return []
        try:
            raw = json.loads(self.path.read_text())
            return [Vouch(**item) for item in raw]
        except FileNotFoundError:
            return []
        except (OSError, ValueError, TypeError) as exc:
            raise IdentityError(
                f"{self.path} is not a readable list of vouches ({exc}): move it away and vouch "
                "for the packages again with 'agecast identity vouch PATH'"
            ) from exc

    def add(self, package: IdentityPackage, by: str) -> Vouch:
        """Vouch for ``package``'s purpose as it is now; replaces an older vouch for its id."""
        m = package.manifest
        if m.purpose == "likeness":
            raise IdentityError(
                f"identity {m.id!r} is a likeness: it runs with its actor's consent recorded in "
                "the manifest, not with a vouch"
            )
        vouch = Vouch(package.digest, m.id, m.purpose, str(package.path), by, time.time())
        self._change(lambda old: [v for v in old if v.id != m.id] + [vouch])
        log.info("vouched for %s (%s) at %s", m.id, m.purpose, package.path)
        return vouch

    def remove(self, identity_id: str) -> bool:
        """Withdraw the vouch for ``identity_id``; False when there was none."""
        before = len(self.all())
        self._change(lambda old: [v for v in old if v.id != identity_id])
        return len(self.all()) < before

    def _change(self, edit: Callable[[list[Vouch]], list[Vouch]]) -> None:
        if self.path is None or self._lock_path is None:
            raise IdentityError("no state folder to keep vouches in: set --state-dir")
        private_dir(self.path.parent)
        with file_lock(self._lock_path):
            kept = edit(self.all())
            write_private(self.path, json.dumps([asdict(v) for v in kept], indent=1).encode())

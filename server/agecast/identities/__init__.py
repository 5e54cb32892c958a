"""Identity packages (an actor × age model) and running them on aligned crops.

The runtime (torch, the face stages) is imported when first used, so reading manifests
(``agecast identity list``) starts fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from agecast.identities.package import IdentityPackage, discover, read_package, resolve
from agecast.manifest import Manifest

if TYPE_CHECKING:
    from agecast.identities.runtime import IdentityModel, SwapResult

_RUNTIME = {"IdentityModel", "SwapResult"}


def __getattr__(name: str) -> Any:
    if name in _RUNTIME:
        from agecast.identities import runtime

        return getattr(runtime, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "IdentityModel",
    "IdentityPackage",
    "Manifest",
    "SwapResult",
    "discover",
    "read_package",
    "resolve",
]

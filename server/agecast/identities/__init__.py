"""Identity packages (an actor × age model) and running them on aligned crops."""

from agecast.identities.manifest import Manifest
from agecast.identities.package import IdentityPackage, discover, read_package, resolve
from agecast.identities.runtime import IdentityModel, SwapResult

__all__ = [
    "IdentityModel",
    "IdentityPackage",
    "Manifest",
    "SwapResult",
    "discover",
    "read_package",
    "resolve",
]

"""Takes: record the live pipeline, keep raw and aged pictures with a sidecar, re-render."""

from agecast.takes.store import Take, TakeInfo, TakeStore

__all__ = ["Take", "TakeInfo", "TakeStore"]

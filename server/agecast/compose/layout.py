"""Layouts of the raw and aged pictures into the one output picture."""

from __future__ import annotations

import torch

from agecast.settings import Layout


def compose_layout(raw: torch.Tensor, aged: torch.Tensor, layout: Layout) -> torch.Tensor:
    """raw | aged side by side (H, 2W, 3), or one of them. Both come from the same source frame."""
    if layout == "side-by-side":
        return torch.cat([raw, aged], dim=1)
    if layout == "aged":
        return aged
    if layout == "raw":
        return raw
    raise ValueError(f"unknown layout {layout!r}; use side-by-side, aged or raw")

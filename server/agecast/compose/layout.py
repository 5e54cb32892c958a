"""Layouts of the raw and aged pictures into the one output picture.

The output picture is allocated once per frame with the raw frame copied in; the aged side is
a view into it that paste-back writes into directly, so raw and aged come from the same source
frame and no extra full-frame copy is made to join them.
"""

from __future__ import annotations

import torch

from agecast.settings import Layout


def layout_canvas(raw: torch.Tensor, layout: Layout) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(picture, aged canvas): the picture for ``layout`` holding raw pixels, and the view of it
    where the aged face goes (None for ``raw``, which shows no aged side)."""
    if layout == "side-by-side":
        height, width, channels = raw.shape
        picture = torch.empty((height, 2 * width, channels), dtype=raw.dtype, device=raw.device)
        picture[:, :width] = raw
        picture[:, width:] = raw
        return picture, picture[:, width:]
    if layout == "aged":
        picture = raw.clone()
        return picture, picture
    if layout == "raw":
        return raw, None
    raise ValueError(f"unknown layout {layout!r}; use side-by-side, aged or raw")

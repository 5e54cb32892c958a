"""``GET /api/luts``: the display LUTs (setting ``display_luts``) a monitor may view a side
through, and ``GET /api/luts/{name}``: one as a 3D texture the page uploads as is (n³ RGBA8
texels, red fastest; ``X-Lut-Size: n``). Viewers may read them: a LUT changes only what that
browser shows, never the picture, the takes or the outputs.

The files are read when ``serve`` starts (a bad one stops the start, naming the file and line)
and kept; a changed file is read again at the next start.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from fastapi import APIRouter, HTTPException, Response

from agecast.api.deps import FirstCamera, Viewer
from agecast.compose.lut import display_luts, texture_bytes

router = APIRouter()


@cache
def _textures(entries: tuple[str, ...]) -> dict[str, tuple[int, bytes]]:
    return {
        name: (int(lattice.shape[0]), texture_bytes(lattice))
        for name, lattice in display_luts(list(entries)).items()
    }


def textures(entries: list[str]) -> dict[str, tuple[int, bytes]]:
    """Every display LUT of ``entries`` by name: (points per axis, texture bytes)."""
    return _textures(tuple(entries))


@router.get("/api/luts")
def luts(live: FirstCamera, _: Viewer) -> dict[str, Any]:
    found = textures(live.settings.display_luts)
    return {"luts": [{"name": name, "size": size} for name, (size, _) in found.items()]}


@router.get("/api/luts/{name}")
def lut(name: str, live: FirstCamera, _: Viewer) -> Response:
    found = textures(live.settings.display_luts).get(name)
    if found is None:
        raise HTTPException(
            status_code=404,
            detail=f"no display LUT {name!r}: the server offers "
            f"{', '.join(textures(live.settings.display_luts)) or 'none'} (setting display_luts)",
        )
    size, data = found
    return Response(
        content=data,
        media_type="application/octet-stream",
        headers={"X-Lut-Size": str(size), "Cache-Control": "private, max-age=3600"},
    )

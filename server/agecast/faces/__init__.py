"""Faces: detect (YuNet bundled, SCRFD from a local insightface folder), track, smooth, align.

Heavy pieces (onnx, cv2) load with the modules that need them; importing this package pulls in
nothing until a name in it is used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from agecast.faces.align import (
        TEMPLATES,
        crop_region_in_frame,
        estimate_affine,
        invert_affine,
        template_points,
        transform_points,
        warp_crop,
    )
    from agecast.faces.detector import FaceDetector, make_detector
    from agecast.faces.smoothing import OneEuroFilter

# name → module: imported on first use, so importing the package pulls in nothing heavy
_LAZY = {
    **dict.fromkeys(
        ("TEMPLATES", "crop_region_in_frame", "estimate_affine", "invert_affine",
         "template_points", "transform_points", "warp_crop"),
        "agecast.faces.align",
    ),
    "FaceDetector": "agecast.faces.detector",
    "make_detector": "agecast.faces.detector",
    "OneEuroFilter": "agecast.faces.smoothing",
}  # fmt: skip


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "TEMPLATES",
    "FaceDetector",
    "OneEuroFilter",
    "crop_region_in_frame",
    "estimate_affine",
    "invert_affine",
    "make_detector",
    "template_points",
    "transform_points",
    "warp_crop",
]

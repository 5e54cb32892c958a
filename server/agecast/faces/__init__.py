"""Faces: detect (YuNet bundled, SCRFD from a local insightface folder), track, smooth, align.

Heavy pieces (onnx, cv2) load with the modules that need them; importing this package pulls in
torch only.
"""

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

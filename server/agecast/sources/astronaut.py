"""The real face the demo clip and the test pattern are made from (``skimage.data.astronaut``)."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from numpy.typing import NDArray

# Astronaut-image pixels (x0, y0, x1, y1) around the head: hair, face and chin.
FACE_BOX = (150, 10, 305, 200)
# Hand-labelled five landmarks (±2 px) in astronaut-image pixels, in the usual order: eye on the
# image's left, eye on the right, nose tip, mouth corner on the left, on the right. Carry them
# into demo-frame truth with ``demo_truth(index)``.
FACE_LANDMARKS5 = ((203.0, 100.0), (246.0, 104.0), (225.0, 126.0), (201.0, 140.0), (245.0, 140.0))


@lru_cache(maxsize=1)
def astronaut_rgb() -> NDArray[np.uint8]:
    """The 512×512 RGB photo, read-only (shipped inside scikit-image, no download)."""
    from skimage import data  # scikit-image is slow to import; only the demo needs it

    image = np.ascontiguousarray(data.astronaut(), dtype=np.uint8)
    image.setflags(write=False)
    return image


def astronaut_face() -> NDArray[np.uint8]:
    """The head region of the photo (FACE_BOX), read-only."""
    x0, y0, x1, y1 = FACE_BOX
    return astronaut_rgb()[y0:y1, x0:x1]

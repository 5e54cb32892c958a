"""Putting the replaced face back into the frame and laying out raw | aged pictures."""

from agecast.compose.colour import rct
from agecast.compose.layout import compose_layout
from agecast.compose.mask import MaskMaker
from agecast.compose.paste import paste_back

__all__ = ["MaskMaker", "compose_layout", "paste_back", "rct"]

"""Putting the replaced face back into the frame and laying out raw | aged pictures."""

from agecast.compose.colour import rct
from agecast.compose.layout import layout_canvas
from agecast.compose.mask import MaskMaker
from agecast.compose.paste import paste_back

__all__ = ["MaskMaker", "layout_canvas", "paste_back", "rct"]

"""Where frames come from: files, the demo clip, a test pattern, cameras and network streams.

``open_source(uri)`` builds the right :class:`Source`; every source has the same interface
(``open`` / ``read`` / ``close``, ``state``, ``fps``) and delivers :class:`agecast.frames.Frame`.
"""

from agecast.sources.base import Source, SourceState
from agecast.sources.demo import DEMO_URI
from agecast.sources.uris import ACCEPTED_FORMS, open_source

__all__ = ["ACCEPTED_FORMS", "DEMO_URI", "Source", "SourceState", "open_source"]

"""Secrets in source addresses, hidden in one place.

A camera or stream address may carry a password (``rtsp://admin:pass@cam/1``,
``http://cam/feed?password=…``). :class:`SourceURI` is a ``str`` whose *text* is the address
with those hidden (``rtsp://admin:***@cam/1``), so whatever prints, logs, serialises or shows it
(status, takes, audit, errors, ``model_dump``) cannot leak the password; only :meth:`reveal`,
called by the code that connects, gives the real address.
"""

from __future__ import annotations

import re

HIDDEN = "***"
_USERINFO = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.-]*://[^:@/?#\s]*):(?P<secret>[^@/?#\s]*)@")
_QUERY_SECRET = re.compile(
    r"(?P<head>[?&;](?:pass(?:word)?|pwd|passwd|token|secret|key|auth)=)(?P<secret>[^&;#\s]*)",
    re.IGNORECASE,
)


def redact(text: str) -> str:
    """``text`` with the password of any ``scheme://user:password@`` and the value of any
    password-like query parameter replaced by ``***``."""
    text = _USERINFO.sub(lambda m: f"{m['head']}:{HIDDEN}@", text)
    return _QUERY_SECRET.sub(lambda m: f"{m['head']}{HIDDEN}", text)


class SourceURI(str):
    """A source address that prints without its password; :meth:`reveal` connects."""

    _real: str

    def __new__(cls, text: str) -> SourceURI:
        if isinstance(text, SourceURI):
            return text
        made = super().__new__(cls, redact(text))
        made._real = str(text)
        return made

    def reveal(self) -> str:
        """The real address, password included: only for the call that opens it."""
        return self._real

    def __repr__(self) -> str:
        return f"SourceURI({str.__repr__(self)})"


def reveal(uri: str) -> str:
    """The real address behind ``uri`` (``uri`` itself when it is a plain string)."""
    return uri.reveal() if isinstance(uri, SourceURI) else uri


def hide_in(message: str, uri: str) -> str:
    """``message`` (e.g. an FFmpeg error naming the address) with ``uri``'s secrets hidden."""
    real = reveal(uri)
    return redact(message.replace(real, redact(real)) if real else message)

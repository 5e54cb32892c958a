"""The HTTP/WebSocket service: monitor page, status, metrics, operator controls, picture stream."""

from agecast.api.app import create_app

__all__ = ["create_app"]

#!/usr/bin/env python3
"""The container's health check: GET /api/health on the address the server recorded.

`agecast serve` writes the address it serves on (port, http or https) to
``$AGECAST_STATE_DIR/serve.json``; before it has, the default http://127.0.0.1:8000 is asked.
Standard library only (it runs every few seconds): exit 0 when healthy, 1 otherwise.
"""

import json
import os
import ssl
import sys
import urllib.request
from pathlib import Path

DEFAULT = "http://127.0.0.1:8000"


def address() -> str:
    state = Path(os.environ.get("AGECAST_STATE_DIR", "/state"))
    try:
        url = json.loads((state / "serve.json").read_text())["url"]
    except (OSError, ValueError, KeyError, TypeError):
        return DEFAULT
    return url if isinstance(url, str) and url.startswith("http") else DEFAULT


def main() -> int:
    url = address().rstrip("/") + "/api/health"
    # the container's own server on its loopback: a self-signed LAN certificate is fine here
    context = ssl._create_unverified_context() if url.startswith("https") else None
    try:
        with urllib.request.urlopen(url, timeout=4, context=context) as reply:
            healthy = reply.status == 200 and json.load(reply).get("ok") is True
    except (OSError, ValueError) as exc:
        print(f"agecast-health: {url}: {exc}", file=sys.stderr)
        return 1
    return 0 if healthy else 1


if __name__ == "__main__":
    sys.exit(main())

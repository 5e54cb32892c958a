"""How every bench script hands over its result: JSON on stdout, and in ``--json`` if given."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any


def write_report(result: Any, path: Path | None, *, ensure_ascii: bool = True) -> None:
    """``result`` as indented JSON to stdout and, when ``path`` is given, to that file."""
    text = json.dumps(result, indent=2, ensure_ascii=ensure_ascii)
    if path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text + "\n")
    sys.stdout.write(text + "\n")

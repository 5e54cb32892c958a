"""Drives a running agecast container the way an operator would (used by docker/test.sh).

Run with the project's venv (httpx, websockets and PyAV come from the lock)::

    python docker/drive.py first-picture URL TOKEN --since EPOCH --session FILE   (and the page)
    python docker/drive.py record URL --session FILE --scene S --take T --seconds 3
    python docker/drive.py start URL --session FILE --scene S --take T
    python docker/drive.py after-restart URL --session FILE --take-id ID --viewer-link LINK
    python docker/drive.py take URL --session FILE --take-id ID --status STATUS
    python docker/drive.py plays FILE.mp4 --frames N

Each step prints one JSON line of what it saw and exits 1, saying why, when the container does
not behave. Only the monitor's own address is ever contacted (127.0.0.1 in the test).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
from websockets.asyncio.client import connect

log = logging.getLogger("agecast.docker.drive")
COOKIE = "agecast_session"


class Failed(Exception):
    """The container did not do what an operator needs."""


def sign_in(url: str, token: str) -> str:
    """The session cookie a sign-in link's token is exchanged for."""
    reply = httpx.get(f"{url}/", params={"token": token}, follow_redirects=False, timeout=30)
    cookie = reply.cookies.get(COOKIE)
    if reply.status_code != 303 or not cookie:
        raise Failed(f"signing in failed: HTTP {reply.status_code} {reply.text[:200]}")
    return cookie


def client(url: str, cookie: str) -> httpx.Client:
    return httpx.Client(base_url=url, cookies={COOKIE: cookie}, timeout=30)


async def pictures(url: str, cookie: str, count: int, timeout_s: float) -> float:
    """Wait for ``count`` pictures on /ws/monitor; the wall time the first one arrived."""
    ws_url = url.replace("http", "ws", 1) + "/ws/monitor"
    headers = {"Cookie": f"{COOKIE}={cookie}"}
    first = 0.0
    async with connect(ws_url, additional_headers=headers, max_size=None, compression=None) as ws:
        hello = json.loads(await asyncio.wait_for(ws.recv(), timeout_s))
        if hello.get("type") != "hello":
            raise Failed(f"/ws/monitor's first message is not its hello: {hello}")
        got = 0
        while got < count:
            message = await asyncio.wait_for(ws.recv(), timeout_s)
            if isinstance(message, bytes) and message:
                got += 1
                first = first or time.time()
    return first


def frames_flowing(http: httpx.Client) -> dict[str, Any]:
    """/api/status twice, a second apart: frames must have gone out in between."""
    before = http.get("/api/status").json()
    time.sleep(1.0)
    after: dict[str, Any] = http.get("/api/status").json()
    if after["frames_out"] <= before["frames_out"]:
        raise Failed(f"/api/status shows no frames flowing: frames_out {before['frames_out']} "
                     f"then {after['frames_out']}")  # fmt: skip
    return after


def first_picture(args: argparse.Namespace) -> dict[str, Any]:
    cookie = sign_in(args.url, args.token)
    Path(args.session).write_text(cookie)
    first = asyncio.run(pictures(args.url, cookie, 10, args.timeout))
    http = client(args.url, cookie)
    page = http.get("/")  # the monitor's page, from the image's monitor_ui/
    if page.status_code != 200 or "<html" not in page.text.lower():
        raise Failed(f"the monitor page is not served: HTTP {page.status_code} {page.text[:200]}")
    status = frames_flowing(http)
    return {
        "first_picture_s": round(first - args.since, 2),
        "fps_out": status["fps_out"],
        "frames_out": status["frames_out"],
        "backend": status.get("backend"),
    }


def start_take(args: argparse.Namespace) -> tuple[httpx.Client, str]:
    """Start recording take ``args.scene``/``args.take``, then let it record ``args.seconds``."""
    http = client(args.url, Path(args.session).read_text())
    started = http.post("/api/takes/record", json={"scene": args.scene, "take": args.take})
    if started.status_code != 200:
        raise Failed(f"recording refused: HTTP {started.status_code} {started.text[:300]}")
    time.sleep(args.seconds)
    return http, str(started.json()["id"])


def record(args: argparse.Namespace) -> dict[str, Any]:
    http, _ = start_take(args)
    stopped = http.post("/api/takes/stop")
    if stopped.status_code != 200:
        raise Failed(f"stopping the take failed: HTTP {stopped.status_code} {stopped.text[:300]}")
    take = stopped.json()
    if take["status"] != "complete" or take["frames"] < 10:
        raise Failed(f"the take did not finish well: {take}")
    return {
        "take": take["id"], "frames": take["frames"], "seconds": take["seconds"],
        "dropped_frames": take["dropped_frames"],
    }  # fmt: skip


def start(args: argparse.Namespace) -> dict[str, Any]:
    """Start a take and leave it recording (the test then stops or kills the container)."""
    return {"take": start_take(args)[1]}


def take_status(args: argparse.Namespace) -> dict[str, Any]:
    """A take's status (its status must start with ``--status``) and frame count."""
    reply = client(args.url, Path(args.session).read_text()).get(f"/api/takes/{args.take_id}")
    if reply.status_code != 200:
        raise Failed(f"take {args.take_id}: HTTP {reply.status_code} {reply.text[:300]}")
    take = reply.json()
    if not take["status"].startswith(args.status) or take["frames"] < 1:
        raise Failed(f"take {args.take_id} is {take['status']!r} with {take['frames']} frames; "
                     f"expected {args.status!r} with frames")  # fmt: skip
    return {"take": take["id"], "frames": take["frames"], "status": take["status"]}


def after_restart(args: argparse.Namespace) -> dict[str, Any]:
    cookie = Path(args.session).read_text()
    http = client(args.url, cookie)
    listed = http.get("/api/takes")
    if listed.status_code != 200:
        raise Failed(f"the session from before the restart is refused: HTTP {listed.status_code}")
    takes = {t["id"]: t for t in listed.json()["takes"]}
    take = takes.get(args.take_id)
    if take is None:
        raise Failed(f"take {args.take_id} is gone after the restart (takes: {sorted(takes)})")
    if take["status"] != "complete":
        raise Failed(f"take {args.take_id} is {take['status']!r} after the restart, not complete")
    token = parse_qs(urlsplit(args.viewer_link).query)["token"][0]
    viewer = sign_in(args.url, token)  # the link made before the restart still signs in
    asyncio.run(pictures(args.url, viewer, 5, args.timeout))
    frames_flowing(http)
    return {"take": take["id"], "frames": take["frames"], "status": take["status"]}


def plays(args: argparse.Namespace) -> dict[str, Any]:
    import av

    with av.open(args.file) as container:
        decoded = sum(1 for _ in container.decode(video=0))
    if decoded != args.frames:
        raise Failed(f"{args.file}: {decoded} frames decode, the take says {args.frames}")
    return {"file": Path(args.file).name, "frames": decoded}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    steps = parser.add_subparsers(dest="step", required=True)

    def step(name: str, run: Any, *args: str) -> argparse.ArgumentParser:
        """A step against the server at ``url``, signed in with the cookie in ``--session``."""
        sub = steps.add_parser(name)
        sub.add_argument("url")
        for arg in args:
            sub.add_argument(arg)
        sub.add_argument("--session", required=True, help="file the session cookie is kept in")
        sub.add_argument("--timeout", type=float, default=60.0)
        sub.set_defaults(run=run)
        return sub

    step("first-picture", first_picture, "token").add_argument(
        "--since", type=float, required=True, help="epoch of `compose up`"
    )
    for name, run, seconds in (("record", record, 3.0), ("start", start, 2.0)):
        sub = step(name, run)
        sub.add_argument("--scene", default="docker")
        sub.add_argument("--take", default="1")
        sub.add_argument("--seconds", type=float, default=seconds, help="recorded (s)")
    sub = step("take", take_status)
    sub.add_argument("--take-id", required=True)
    sub.add_argument("--status", required=True)
    sub = step("after-restart", after_restart)
    sub.add_argument("--take-id", required=True)
    sub.add_argument("--viewer-link", required=True)
    sub = steps.add_parser("plays")
    sub.add_argument("file")
    sub.add_argument("--frames", type=int, required=True)
    sub.set_defaults(run=plays)
    return parser


def main() -> int:
    parser = _parser()
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="drive: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    try:
        result = args.run(args)
    except (Failed, httpx.HTTPError, OSError, TimeoutError, KeyError) as exc:
        log.error("%s: %s", args.step, exc)
        return 1
    sys.stdout.write(json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

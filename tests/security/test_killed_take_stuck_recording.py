"""Attack 7: the server is killed mid-take and the next one gets the same PID (in Docker the
server is PID 1 every time). Before the fix the take stayed "recording" for ever, because the
PID in .recorder.pid was alive: it was the new server's own."""

from __future__ import annotations

import multiprocessing
import os
import signal
import stat
from pathlib import Path

from agecast.takes.store import OWNER, TakeStore


def _record_then_hang(root: str, ready: multiprocessing.synchronize.Event) -> None:
    TakeStore(Path(root)).create("sc1", "1", source="testpattern", fps=30.0)
    ready.set()
    signal.pause()


def test_a_killed_take_is_interrupted_even_when_the_new_server_has_its_pid(
    tmp_path: Path,
) -> None:
    ctx = multiprocessing.get_context("fork")
    ready = ctx.Event()
    recorder = ctx.Process(target=_record_then_hang, args=(str(tmp_path), ready))
    recorder.start()
    assert ready.wait(30)
    store = TakeStore(tmp_path)
    assert store.get("sc1_1").info.status == "recording"  # while its recorder lives
    os.kill(recorder.pid, signal.SIGKILL)
    recorder.join(10)
    # the new server is given the dead one's PID, as Docker gives PID 1 to both
    (tmp_path / "sc1_1" / OWNER).write_text(f"{os.getpid()}\n")
    assert store.get("sc1_1").info.status == "interrupted"


def test_this_process_still_sees_its_own_take_recording(tmp_path: Path) -> None:
    take = TakeStore(tmp_path).create("sc2", "1", source="testpattern", fps=30.0)
    assert TakeStore(tmp_path).get(take.id).info.status == "recording"
    take.release()
    assert TakeStore(tmp_path).get(take.id).info.status == "interrupted"  # never finished


def test_takes_are_private_to_the_user_who_records_them(tmp_path: Path) -> None:
    root = tmp_path / "takes"
    take = TakeStore(root).create("sc3", "1", source="testpattern", fps=30.0)
    take.release()
    assert stat.S_IMODE(root.stat().st_mode) == 0o700
    assert stat.S_IMODE(take.path.stat().st_mode) == 0o700

import threading
import time

import pytest

from agecast.pipeline.metrics import Timings, percentiles
from agecast.pipeline.slot import Slot, SlotClosed


def test_latest_slot_keeps_newest_and_counts_drops() -> None:
    slot: Slot[int] = Slot("t")
    for i in range(5):
        slot.put(i)
    assert slot.get(timeout=0) == 4
    assert slot.dropped == 4
    assert slot.get(timeout=0.01) is None


def test_lossless_slot_blocks_producer_until_taken() -> None:
    slot: Slot[int] = Slot("t", "lossless")
    got: list[int] = []

    def consume() -> None:
        for _ in range(50):
            time.sleep(0.001)
            value = slot.get(timeout=2)
            assert value is not None
            got.append(value)

    consumer = threading.Thread(target=consume)
    consumer.start()
    for i in range(50):
        slot.put(i)
    consumer.join(5)
    assert got == list(range(50))
    assert slot.dropped == 0


def test_close_wakes_waiters_and_rejects_puts() -> None:
    slot: Slot[int] = Slot("t")
    errors: list[BaseException] = []

    def wait() -> None:
        try:
            slot.get(timeout=5)
        except SlotClosed as exc:
            errors.append(exc)

    waiter = threading.Thread(target=wait)
    waiter.start()
    time.sleep(0.05)
    slot.close()
    waiter.join(1)
    assert not waiter.is_alive() and len(errors) == 1
    with pytest.raises(SlotClosed):
        slot.put(1)


def test_percentiles_and_timings() -> None:
    p = percentiles(float(i) for i in range(1, 101))
    assert p["count"] == 100 and p["p50"] == pytest.approx(50.5) and p["max"] == 100
    t = Timings()
    t.add_all({"a": 1.0, "b": 2.0})
    t.add("a", 3.0)
    summary = t.summary()
    assert summary["a"]["count"] == 2 and summary["b"]["p50"] == 2.0
    assert percentiles([])["count"] == 0


def test_timings_summary_is_reused_within_cache_s() -> None:
    t = Timings(cache_s=60.0)
    t.add("a", 1.0)
    first = t.summary()
    t.add("a", 100.0)
    assert t.summary() is first  # reused
    t.clear()
    t.add("a", 5.0)
    assert t.summary()["a"]["max"] == 5.0  # clear() drops the cached summary
    assert Timings().summary() is not Timings().summary()

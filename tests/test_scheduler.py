"""Due timers: the index, and a loop that wakes at the due time instead of polling."""

from __future__ import annotations

import asyncio
import time

import pytest

from nudge.clock import SystemClock
from nudge.streams.scheduler import DueIndex, next_wait_s, run_timers


def test_pop_due_returns_each_key_once_at_its_earliest_due() -> None:
    due = DueIndex()
    due.push(b"a", 300)
    due.push(b"a", 100)  # earlier: replaces
    due.push(b"a", 200)  # later than the known one: the re-check re-pushes it
    due.push(b"b", 150)
    due.push(b"c", None)
    assert due.pop_due(99) == []
    assert due.pop_due(160) == [b"a", b"b"]
    assert len(due) == 0 and due.next_due_ms() == 300  # stale heap entry, checked on pop
    assert due.pop_due(400) == []


def test_only_an_earlier_due_time_wakes_the_loop() -> None:
    due = DueIndex()
    pokes: list[int] = []
    due.on_earlier = lambda: pokes.append(1)
    due.push(b"a", 200)
    due.push(b"b", 300)
    due.push(b"c", 250)
    assert len(pokes) == 1
    due.push(b"d", 100)
    assert len(pokes) == 2
    due.rebuild([(b"x", 5)])
    assert len(pokes) == 3


@pytest.mark.parametrize(
    ("next_due", "round_ms", "now_ms", "expected"),
    [
        (None, 1000, 1000, 1.0),  # nothing armed: the longest sleep
        (1500, 1000, 1010, 0.49),  # until the due time, from now
        (9000, 1000, 1000, 1.0),  # far away: at most max_s
        (900, 1000, 1010, 0.1),  # due before the round and still there: retry later
        (1005, 1000, 1010, 0.0),  # fell due during the round: at once
    ],
)
def test_next_wait(next_due: int | None, round_ms: int, now_ms: int, expected: float) -> None:
    assert next_wait_s(next_due, round_ms, now_ms, retry_s=0.1, max_s=1.0) == pytest.approx(
        expected
    )


async def test_a_timer_armed_while_the_loop_sleeps_fires_at_its_due_time() -> None:
    due, clock = DueIndex(), SystemClock()
    fired: list[float] = []

    async def fire() -> None:
        if due.pop_due(clock.now_ms()):
            fired.append(time.monotonic())

    loop = asyncio.create_task(run_timers(fire, due, clock, retry_s=0.1, max_s=30.0))
    try:
        await asyncio.sleep(0.05)  # the loop now sleeps up to 30 s
        armed = time.monotonic()
        due.push(b"k", clock.now_ms() + 50)
        deadline = time.monotonic() + 10
        while not fired and time.monotonic() < deadline:
            await asyncio.sleep(0.005)
    finally:
        loop.cancel()
    assert fired, "the new timer woke the loop"
    assert fired[0] - armed >= 0.045, "not before its due time"


async def test_a_failing_round_is_retried() -> None:
    due, clock = DueIndex(), SystemClock()
    rounds: list[int] = []

    async def fire() -> None:
        rounds.append(1)
        if len(rounds) == 1:
            raise ConnectionError("broker away")

    loop = asyncio.create_task(run_timers(fire, due, clock, retry_s=0.01, max_s=0.01))
    try:
        deadline = time.monotonic() + 10
        while len(rounds) < 3 and time.monotonic() < deadline:
            await asyncio.sleep(0.005)
    finally:
        loop.cancel()
    assert len(rounds) >= 3

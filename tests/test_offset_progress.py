"""OffsetProgress: the commit position never passes a record that was not applied."""

from __future__ import annotations

from streams.offsets import OffsetProgress

TP = ("clicks", 0)


def progress(position: int = 0, stall_after_s: float = 5.0) -> OffsetProgress[tuple[str, int]]:
    p: OffsetProgress[tuple[str, int]] = OffsetProgress(["clicks"], stall_after_s=stall_after_s)
    p.assign(TP, position, now=0.0)
    return p


def test_position_follows_contiguous_applied_offsets() -> None:
    p = progress(10)
    p.fetched(TP, [10, 11, 12], p.seeks)
    p.applied(TP, [10, 11], now=1.0)
    assert p.position(TP) == 12
    p.applied(TP, [12], now=1.0)
    assert p.position(TP) == 13


def test_a_hole_holds_the_position_however_much_is_applied_after_it() -> None:
    p = progress(49)
    p.fetched(TP, list(range(49, 200)), p.seeks)
    p.applied(TP, range(165, 200), now=1.0)  # 49..164 dropped on the way
    assert p.position(TP) == 49
    assert p.holes() == {TP: 35}


def test_offsets_missing_inside_one_fetch_are_absent_and_skipped() -> None:
    p = progress(0)
    p.fetched(TP, [0, 1, 5, 6], p.seeks)  # 2..4 compacted away or control records
    p.applied(TP, [0, 1, 5, 6], now=1.0)
    assert p.position(TP) == 7


def test_absence_is_learned_across_consecutive_fetches_and_from_the_seek_position() -> None:
    p = progress(3)
    p.fetched(TP, [7, 8], p.seeks)  # the log starts at 7 after retention
    p.fetched(TP, [12], p.seeks)
    p.applied(TP, [7, 8, 12], now=1.0)
    assert p.position(TP) == 13


def test_a_fetch_that_overlapped_a_seek_proves_nothing() -> None:
    p = progress(0)
    before = p.seeks
    p.sought(TP, 0, now=0.5)  # a seek while that fetch was in flight
    p.fetched(TP, [40, 41], before)  # stale records from the old position
    p.applied(TP, [40, 41], now=1.0)
    assert p.position(TP) == 0, "0..39 were never seen: the position must not jump"
    p.fetched(TP, [0, 1], p.seeks)  # continuity stays unknown until the next seek
    p.applied(TP, [0, 1], now=1.0)
    assert p.position(TP) == 2


def test_a_stalled_partition_is_reported_once_the_stall_lasts() -> None:
    p = progress(0, stall_after_s=5.0)
    p.fetched(TP, [0, 1, 2], p.seeks)
    p.applied(TP, [1, 2], now=1.0)  # 0 dropped
    assert p.stalled(now=4.0) == []
    assert p.stalled(now=5.0) == [(TP, 0)]
    p.sought(TP, 0, now=5.0)
    assert p.stalled(now=6.0) == []
    p.fetched(TP, [0, 1, 2], p.seeks)
    p.applied(TP, [0, 1, 2], now=6.5)
    assert p.position(TP) == 3 and p.stalled(now=100.0) == []


def test_a_fetched_record_never_applied_stalls_even_with_nothing_after_it() -> None:
    p = progress(0)
    p.fetched(TP, [0], p.seeks)  # the last record, dropped; no traffic after it
    assert p.stalled(now=10.0) == [(TP, 0)]


def test_an_idle_partition_does_not_stall() -> None:
    p = progress(5)
    assert p.stalled(now=1000.0) == []
    p.fetched(TP, [5], p.seeks)
    p.applied(TP, [5], now=1.0)
    assert p.stalled(now=1000.0) == []


def test_seeking_behind_the_position_restarts_from_there() -> None:
    p = progress(0)
    p.fetched(TP, [0, 1, 2, 3], p.seeks)
    p.applied(TP, [0, 1, 2, 3], now=1.0)
    p.sought(TP, 1, now=2.0)
    assert p.position(TP) == 1
    p.fetched(TP, [1, 2, 3], p.seeks)
    p.applied(TP, [1, 2, 3], now=3.0)
    assert p.position(TP) == 4


def test_offsets_of_partitions_not_owned_are_ignored() -> None:
    p = progress(0)
    p.forget(TP)
    p.applied(TP, [0, 1], now=1.0)
    assert p.position(TP) is None and p.partitions() == []
    assert p.guards("clicks") and not p.guards("catalog")

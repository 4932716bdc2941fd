"""OffsetProgress: the commit position never passes a record that was not applied."""

from __future__ import annotations

from nudge.streams.offsets import OffsetProgress

TP = ("clicks", 0)


def progress(position: int = 0, stall_after_s: float = 5.0) -> OffsetProgress[tuple[str, int]]:
    p: OffsetProgress[tuple[str, int]] = OffsetProgress(["clicks"], stall_after_s=stall_after_s)
    p.assign(TP, position, now=0.0)
    return p


def test_position_follows_contiguous_applied_offsets() -> None:
    p = progress(10)
    p.fetched(TP, [10, 11, 12])
    p.applied(TP, [10, 11], now=1.0)
    assert p.position(TP) == 12
    p.applied(TP, [12], now=1.0)
    assert p.position(TP) == 13


def test_a_hole_holds_the_position_however_much_is_applied_after_it() -> None:
    p = progress(49)
    p.fetched(TP, list(range(49, 200)))
    p.applied(TP, range(165, 200), now=1.0)  # 49..164 dropped on the way
    assert p.position(TP) == 49
    assert p.holes() == {TP: 35}


def test_offsets_missing_inside_one_fetch_are_absent_and_skipped() -> None:
    p = progress(0)
    p.fetched(TP, [0, 1, 5, 6])  # 2..4 compacted away, or transaction markers
    p.applied(TP, [0, 1, 5, 6], now=1.0)
    assert p.position(TP) == 7


def test_a_jump_between_fetches_or_from_the_position_proves_nothing() -> None:
    """A fetch racing a seek returns records from elsewhere: 27..48 taken by a fetch
    that completed before the bookkeeping knew of the seek, then 49.. next."""
    p = progress(27)
    p.fetched(TP, [49, 50])
    p.applied(TP, [49, 50], now=1.0)
    assert p.position(TP) == 27, "27..48 were never applied: the position must not jump"
    p.fetched(TP, [10, 11])
    p.fetched(TP, [15])
    p.applied(TP, [10, 11, 15], now=1.0)
    assert p.position(TP) == 27


def test_a_log_that_starts_later_moves_the_position() -> None:
    p = progress(3)
    p.fetched(TP, [7, 8])  # retention deleted 3..6
    p.applied(TP, [7, 8], now=1.0)
    assert p.position(TP) == 3
    p.log_starts_at(TP, 7, now=2.0)
    assert p.position(TP) == 9
    p.log_starts_at(TP, 2, now=3.0)
    assert p.position(TP) == 9


def test_a_stalled_partition_is_sought_one_record_before_its_position() -> None:
    p = progress(0, stall_after_s=5.0)
    p.fetched(TP, [0, 1, 2])
    p.applied(TP, [0], now=1.0)
    p.applied(TP, [2], now=1.0)  # 1 dropped
    assert p.stalled(now=5.0) == []
    assert p.stalled(now=6.0) == [(TP, 0)]
    p.sought(TP, 0, now=6.0)
    assert p.position(TP) == 1, "a seek back changes nothing of what is applied"
    assert p.stalled(now=7.0) == []
    p.fetched(TP, [0, 1, 2])
    p.applied(TP, [0, 1, 2], now=7.5)
    assert p.position(TP) == 3 and p.stalled(now=100.0) == []


def test_a_gap_at_a_fetch_boundary_proves_itself_after_the_seek_back() -> None:
    p = progress(0, stall_after_s=5.0)
    p.fetched(TP, [0, 1, 2])
    p.applied(TP, [0, 1, 2], now=1.0)
    p.fetched(TP, [4, 5])  # 3 is a transaction marker, at a fetch boundary
    p.applied(TP, [4, 5], now=1.5)
    assert p.position(TP) == 3
    assert p.stalled(now=7.0) == [(TP, 2)]
    p.sought(TP, 2, now=7.0)
    p.fetched(TP, [2, 4, 5])
    p.applied(TP, [2, 4, 5], now=7.5)
    assert p.position(TP) == 6


def test_a_fetched_record_never_applied_stalls_even_with_nothing_after_it() -> None:
    p = progress(0)
    p.fetched(TP, [0])  # the last record, dropped; no traffic after it
    assert p.stalled(now=10.0) == [(TP, 0)]


def test_an_idle_partition_does_not_stall() -> None:
    p = progress(5)
    assert p.stalled(now=1000.0) == []
    p.fetched(TP, [5])
    p.applied(TP, [5], now=1.0)
    assert p.stalled(now=1000.0) == []


def test_offsets_of_partitions_not_owned_are_ignored() -> None:
    p = progress(0)
    p.forget(TP)
    p.applied(TP, [0, 1], now=1.0)
    p.fetched(TP, [0, 5])
    assert p.position(TP) is None and p.partitions() == []
    assert p.guards("clicks") and not p.guards("catalog")


def test_records_dropped_before_the_partition_was_tracked_stall_once_the_log_end_is_known() -> None:
    # Faust fetched records 5.. while the worker started, before its seek told
    # OffsetProgress the partition's position, and dropped them: nothing was fetched
    # or applied as far as OffsetProgress knows, and nothing new arrives.
    p = progress(5, stall_after_s=5.0)
    assert p.idle(now=4.0) == [] and p.idle(now=5.0) == [TP]
    assert p.stalled(now=100.0) == []
    p.log_ends_at(TP, 9)
    assert p.stalled(now=100.0) == [(TP, 4)]


def test_a_log_ending_at_the_position_is_no_hole() -> None:
    p = progress(5)
    p.log_ends_at(TP, 5)
    assert p.stalled(now=100.0) == []
    p.applied(TP, [5, 6], now=101.0)  # the position moves past what the broker said
    p.log_ends_at(TP, 7)
    assert p.position(TP) == 7 and p.stalled(now=1000.0) == []

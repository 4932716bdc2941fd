"""Which input offsets may be committed: those whose effects are durable, and no others.

Faust commits what its streams *acknowledged*, and acknowledges a batch even when the
code that handled it raised; records it drops (a cleared buffer in a rebalance, a
cancelled hand-off, a fetch that raced a seek) leave holes that its gap bookkeeping
can mistake for compacted offsets. A committed offset past a record that was never
applied loses that record for good: an abandoned cart never mailed, an unsubscribe
never stored.

``OffsetProgress`` keeps, per input partition, the *commit position*: every offset
below it was applied (its state change, commands and dead letters acknowledged by the
broker) or is known not to exist. Absence is learned only from what the broker
returned in one continuous fetch sequence since the last seek; anything else keeps
the position where it is. Offsets applied above the position are a hole: when one
stays open for ``stall_after_s``, the partition is sought back to the position and
the hole is fetched again (reprocessing is harmless: event ids and command ids make
every effect idempotent).

Pure bookkeeping with an injected ``now``: the consumer and the agents call it.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

TP = TypeVar("TP")


@dataclass
class _Partition:
    #: Every offset below is applied or absent: what may be committed.
    position: int
    #: Offsets at or above ``position`` whose effects are durable.
    applied: set[int] = field(default_factory=set)
    #: Ranges [start, end) the broker showed do not exist (compaction, control records).
    absent: list[tuple[int, int]] = field(default_factory=list)
    #: The offset the next fetched record continues from; None when continuity is unknown.
    fetch_next: int | None = None
    #: When ``position`` last moved (or the partition was sought), for stall detection.
    moved_at: float = 0.0


class OffsetProgress(Generic[TP]):
    """Commit positions of the partitions of ``topics`` that this worker owns."""

    def __init__(self, topics: Iterable[str], *, stall_after_s: float = 5.0) -> None:
        self.topics = frozenset(topics)
        self.stall_after_s = stall_after_s
        self._parts: dict[TP, _Partition] = {}
        #: Bumped on every seek: a fetch that overlapped one proves nothing.
        self.seeks = 0

    def guards(self, topic: str) -> bool:
        return topic in self.topics

    def __contains__(self, tp: object) -> bool:
        return tp in self._parts

    # -- positions -------------------------------------------------------------
    def assign(self, tp: TP, position: int, now: float) -> None:
        """``tp`` starts (again) at ``position``, its committed offset or log start."""
        self.seeks += 1
        self._parts[tp] = _Partition(position=position, fetch_next=position, moved_at=now)

    def sought(self, tp: TP, offset: int, now: float) -> None:
        """The consumer was sought to ``offset``: fetches continue from there."""
        part = self._parts.get(tp)
        self.seeks += 1
        if part is None:
            return
        if offset < part.position:
            # Behind the position: everything from there on will come again.
            self._parts[tp] = _Partition(position=offset, fetch_next=offset, moved_at=now)
            return
        part.fetch_next = offset
        part.moved_at = now

    def forget(self, tp: TP) -> None:
        self._parts.pop(tp, None)

    # -- what the broker returned ---------------------------------------------
    def fetched(self, tp: TP, offsets: Sequence[int], seeks_before: int) -> None:
        """Records of ``tp`` returned by one fetch, in log order.

        ``seeks_before`` is ``self.seeks`` read before the fetch was issued: if any
        seek happened since, the records may predate it and prove nothing; the
        continuity is then unknown until the next seek.
        """
        part = self._parts.get(tp)
        if part is None or not offsets:
            return
        if seeks_before != self.seeks:
            part.fetch_next = None
            return
        expected = part.fetch_next
        for offset in offsets:
            if expected is not None and offset > expected:
                self._mark_absent(part, expected, offset)
            if expected is None or offset >= expected:
                expected = offset + 1
        part.fetch_next = expected

    def _mark_absent(self, part: _Partition, start: int, end: int) -> None:
        start = max(start, part.position)
        if start < end:
            bisect.insort(part.absent, (start, end))

    # -- what the agents made durable -----------------------------------------
    def applied(self, tp: TP, offsets: Iterable[int], now: float) -> None:
        part = self._parts.get(tp)
        if part is None:
            return  # not ours (any more): the owner applies it again
        position = part.position
        part.applied.update(o for o in offsets if o >= position)
        self._advance(part, now)

    def _advance(self, part: _Partition, now: float) -> None:
        start = part.position
        position = start
        applied, absent = part.applied, part.absent
        while True:
            if position in applied:
                applied.discard(position)
                position += 1
            elif absent and absent[0][0] <= position:
                position = max(position, absent.pop(0)[1])
            else:
                break
        if position != start:
            part.position = position
            part.moved_at = now

    # -- what to do ------------------------------------------------------------
    def position(self, tp: TP) -> int | None:
        part = self._parts.get(tp)
        return None if part is None else part.position

    def partitions(self) -> list[TP]:
        return list(self._parts)

    def stalled(self, now: float) -> list[tuple[TP, int]]:
        """Partitions whose position has not moved for ``stall_after_s`` although
        records past it were fetched (or later ones applied, or the fetch continuity
        is unknown). Each must be sought back to its position and fetched again.

        The caller skips this while a handler is knowingly waiting (a dependency
        down): the position then stands still on purpose.
        """
        return [
            (tp, part.position)
            for tp, part in self._parts.items()
            if now - part.moved_at >= self.stall_after_s and _behind(part)
        ]

    def holes(self) -> dict[TP, int]:
        """Per partition with a hole, how many applied offsets wait above it."""
        return {tp: len(p.applied) for tp, p in self._parts.items() if p.applied}


def _behind(part: _Partition) -> bool:
    """Something at or past the position was seen but the position did not follow."""
    return bool(part.applied) or part.fetch_next is None or part.fetch_next > part.position

"""Which input offsets may be committed: those whose effects are durable, and no others.

Faust commits what its streams *acknowledged*, and acknowledges a batch even when the
code that handled it raised; records it drops (a cleared buffer in a rebalance, a
cancelled hand-off, a fetch that raced a seek) leave holes that its gap bookkeeping
can mistake for compacted offsets. A committed offset past a record that was never
applied loses that record for good: an abandoned cart never mailed, an unsubscribe
never stored.

``OffsetProgress`` keeps, per input partition, the *commit position*: every offset
below it was applied (its state change, commands and dead letters acknowledged by the
broker) or is known not to exist. Absence is a fact about the log, learned only where
the broker showed it: two records returned next to each other in one fetch, with
offsets missing between them (compaction, transaction markers), or a log start past
the position. Positions, seeks and fetch timing never count as proof, so no race
with Faust's own seeks can fake one.

Offsets fetched or applied past a position that stands still are a hole, and so is a
log that ends past it (``log_ends_at``): records Faust fetched and dropped before this
worker even knew the partition (a fetch racing its start-up seek) are seen by nothing
else. Once a hole stays open for ``stall_after_s``, the partition is sought back and
fetched again, starting
one record *before* the position, so that the record after it arrives in the same fetch
as one before it and a real gap proves itself. Reprocessing is harmless: event ids
and command ids make every effect idempotent.

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
    #: When ``position`` last moved (or the partition was sought), for stall detection.
    moved_at: float
    #: Offsets at or above ``position`` whose effects are durable.
    applied: set[int] = field(default_factory=set)
    #: Ranges [start, end) the broker showed do not exist.
    absent: list[tuple[int, int]] = field(default_factory=list)
    #: One past the highest offset fetched: records up to here exist, or did.
    fetched_to: int = 0
    #: The log's end offset, as last asked of the broker.
    log_end: int = 0


class OffsetProgress(Generic[TP]):
    """Commit positions of the partitions of ``topics`` that this worker owns."""

    def __init__(self, topics: Iterable[str], *, stall_after_s: float = 5.0) -> None:
        self.topics = frozenset(topics)
        self.stall_after_s = stall_after_s
        self._parts: dict[TP, _Partition] = {}

    def guards(self, topic: str) -> bool:
        return topic in self.topics

    # -- positions -------------------------------------------------------------
    def assign(self, tp: TP, position: int, now: float) -> None:
        """``tp`` starts (again) at ``position``, its committed offset or log start."""
        self._parts[tp] = _Partition(position=position, moved_at=now)

    def sought(self, tp: TP, offset: int, now: float) -> None:
        """The consumer was sought to ``offset``: what follows comes again.

        The position stays: what it says (applied or absent below it) is true of the
        log whatever is read next, and records read again are applied again harmlessly.
        """
        part = self._parts.get(tp)
        if part is None:
            return
        part.fetched_to = min(part.fetched_to, offset)
        part.moved_at = now

    def forget(self, tp: TP) -> None:
        self._parts.pop(tp, None)

    # -- what the broker showed ------------------------------------------------
    def fetched(self, tp: TP, offsets: Sequence[int]) -> None:
        """Records of ``tp`` returned together by one fetch, in log order."""
        part = self._parts.get(tp)
        if part is None or not offsets:
            return
        previous = offsets[0]
        for offset in offsets[1:]:
            if offset > previous + 1:
                self._mark_absent(part, previous + 1, offset)
            previous = offset
        part.fetched_to = max(part.fetched_to, offsets[-1] + 1)

    def log_starts_at(self, tp: TP, offset: int, now: float) -> None:
        """The broker's first offset of ``tp``: nothing below it exists any more."""
        part = self._parts.get(tp)
        if part is not None and offset > part.position:
            self._mark_absent(part, part.position, offset)
            self._advance(part, now)

    def log_ends_at(self, tp: TP, offset: int) -> None:
        """The broker's end offset of ``tp``: records below it exist, or did."""
        part = self._parts.get(tp)
        if part is not None:
            part.log_end = offset

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

    def idle(self, now: float) -> list[TP]:
        """Partitions whose position has not moved for ``stall_after_s``: whether
        their log ends past it is worth asking the broker (``log_ends_at``)."""
        return [tp for tp, p in self._parts.items() if now - p.moved_at >= self.stall_after_s]

    def stalled(self, now: float) -> list[tuple[TP, int]]:
        """Partitions whose position has not moved for ``stall_after_s`` although
        records at or past it were fetched or applied, or the log ends past it. Each
        must be sought back to the returned offset (one before its position, where
        there is one).

        The caller skips this while a handler is knowingly waiting (a dependency
        down): the position then stands still on purpose.
        """
        return [
            (tp, max(part.position - 1, 0))
            for tp, part in self._parts.items()
            if now - part.moved_at >= self.stall_after_s
            and (part.applied or max(part.fetched_to, part.log_end) > part.position)
        ]

    def holes(self) -> dict[TP, int]:
        """Per partition with a hole, how many applied offsets wait above it."""
        return {tp: len(p.applied) for tp, p in self._parts.items() if p.applied}

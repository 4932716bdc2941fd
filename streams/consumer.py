"""Faust's consumer, with commits that never run ahead of what was applied.

``GuardedConsumer`` keeps Faust's fetching, rebalancing and table recovery, and
replaces, for the topics ``OffsetProgress`` guards, the one thing that loses records:
the choice of the offset to commit. Faust derives it from acknowledgements (given
even when a handler raised) and from gaps it infers from read offsets (which a fetch
racing a seek can fake). Here the commit position comes from ``OffsetProgress``,
which the agents advance only once a batch's effects are acknowledged by the broker.
Other topics (the compacted catalogue) keep Faust's own bookkeeping.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import faust
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP

from streams.offsets import OffsetProgress

log = logging.getLogger(__name__)


class GuardedConsumer(faust_aiokafka.Consumer):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.progress: OffsetProgress[TP] = self.app.offset_progress  # type: ignore[attr-defined]
        self._fetched = 0

    # -- learning what exists --------------------------------------------------
    async def _getmany(self, active_partitions: Any, timeout: float) -> Any:
        progress = self.progress
        records = await super()._getmany(active_partitions, timeout)
        for tp, batch in records.items():
            if progress.guards(tp.topic):
                progress.fetched(tp, [r.offset for r in batch])
        self._fetched += sum(map(len, records.values()))
        return records

    def describe(self) -> str:
        """One line on fetching since the last call, for the logs of a stuck worker."""
        fetched, self._fetched = self._fetched, 0
        active = self._active_partitions
        return (
            f"fetched {fetched} records; {len(active or ())} active partitions, "
            f"{len(self._paused_partitions)} paused, flow "
            f"{'active' if self.flow_active else 'stopped'}; positions "
            + ", ".join(
                f"{tp.topic}[{tp.partition}]={self.progress.position(tp)}"
                for tp in self.progress.partitions()
            )
        )

    async def perform_seek(self) -> None:
        """Faust seeks every assigned partition to its committed offset after a
        rebalance (and whenever it fetched while its flow was stopped): positions
        restart there."""
        await super().perform_seek()
        progress = self.progress
        tps = [tp for tp in self.assignment() if progress.guards(tp.topic)]
        committed = {tp: self._committed_offset.get(tp) for tp in tps}
        unknown = [tp for tp, offset in committed.items() if offset is None]
        # No committed offset: the group reads from the log start (auto reset
        # "earliest"), which is where the position begins.
        earliest: Mapping[TP, int] = await self.earliest_offsets(*unknown) if unknown else {}
        now = time.monotonic()
        for tp in tps:
            offset = committed[tp]
            progress.assign(tp, offset if offset is not None else earliest.get(tp, 0), now)
        log.info(
            "positions after seeking to committed offsets: %s",
            {f"{tp.topic}[{tp.partition}]": progress.position(tp) for tp in tps},
        )

    async def seek(self, partition: TP, offset: int) -> None:
        await super().seek(partition, offset)
        if self.progress.guards(partition.topic):
            self.progress.sought(partition, offset, time.monotonic())

    async def on_partitions_revoked(self, revoked: Any) -> None:
        for tp in revoked:
            self.progress.forget(tp)
        await super().on_partitions_revoked(revoked)

    # -- committing --------------------------------------------------------------
    def _new_offset(self, tp: TP) -> int | None:
        if not self.progress.guards(tp.topic):
            return super()._new_offset(tp)
        # Faust's acknowledgement lists are not what decides here: keep them empty.
        self._acked.pop(tp, None)
        self._acked_index.pop(tp, None)
        position = self.progress.position(tp)
        committed = self._committed_offset.get(tp)
        if position is None or (committed is not None and position <= committed):
            return None
        return position

    def _filter_tps_with_pending_acks(self, topics: Any = None) -> Iterator[TP]:
        tps = set(super()._filter_tps_with_pending_acks(topics))
        tps.update(tp for tp in self.progress.partitions() if _selected(tp, topics))
        return iter(tps)

    async def _add_gap(self, tp: TP, offset_from: int, offset_to: int) -> None:
        # A gap in read offsets is not proof of absence (see OffsetProgress.fetched).
        if not self.progress.guards(tp.topic):
            await super()._add_gap(tp, offset_from, offset_to)


def _selected(tp: TP, topics: Iterable[Any] | None) -> bool:
    if topics is None:
        return True
    chosen = set(topics)
    return tp in chosen or tp.topic in chosen


class GuardedTransport(faust_aiokafka.Transport):
    Consumer = GuardedConsumer


class NudgeApp(faust.App):
    """A Faust app whose consumer commits only what ``offset_progress`` allows."""

    def __init__(self, *args: Any, offset_progress: OffsetProgress[TP], **kwargs: Any) -> None:
        self.offset_progress = offset_progress
        super().__init__(*args, **kwargs)

    def _new_transport(self) -> Any:
        return GuardedTransport(self.conf.broker_consumer, self)

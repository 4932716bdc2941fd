"""Faust's consumer, with commits that never run ahead of what was applied, and a
batch path for the topics nudge handles itself.

``GuardedConsumer`` keeps Faust's fetching, rebalancing and table recovery, and
replaces, for the topics ``OffsetProgress`` guards, the one thing that loses records:
the choice of the offset to commit. Faust derives it from acknowledgements (given
even when a handler raised) and from gaps it infers from read offsets (which a fetch
racing a seek can fake). Here the commit position comes from ``OffsetProgress``,
which the handlers advance only once a batch's effects are acknowledged by the broker.
Other topics (the compacted catalogue) keep Faust's own bookkeeping.

Faust hands records to agents one at a time (a task per record, a queue per stream,
an acknowledgement per record): for a worker folding thousands of events a second
that machinery costs more than the folding. A topic with a handler in
``NudgeApp.batch_handlers`` skips it: what one fetch returned for the topic goes to
its handler as one list. Other topics (table changelogs while recovering, the
catalogue) take Faust's path unchanged.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

import faust
from faust.transport.consumer import CONSUMER_FETCHING
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP

from nudge.streams.offsets import OffsetProgress

log = logging.getLogger(__name__)

#: Handles every record one fetch returned for a topic (Faust ``ConsumerMessage``s).
BatchHandler = Callable[[Sequence[Any]], Awaitable[None]]


class GuardedConsumer(faust_aiokafka.Consumer):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.progress: OffsetProgress[TP] = self.app.offset_progress  # type: ignore[attr-defined]
        self.batch_handlers: Mapping[str, BatchHandler] = self.app.batch_handlers  # type: ignore[attr-defined]
        self._fetched = 0
        self._batches_idle = asyncio.Event()
        self._batches_idle.set()

    # -- the batch path ------------------------------------------------------------
    async def _drain_messages(self, fetcher: Any) -> None:
        if not self.batch_handlers:
            await super()._drain_messages(fetcher)
            return
        stopped, fetcher_stopped = self._stopped.is_set, fetcher._stopped.is_set
        try:
            while not (stopped() or fetcher_stopped()):
                self.diag.set_flag(CONSUMER_FETCHING)
                records, active = await self._wait_next_records(1.0)
                await self.sleep(0)
                if records and not self.should_stop:
                    await self._dispatch(records, active)
                self.diag.unset_flag(CONSUMER_FETCHING)
        except self.consumer_stopped_errors:
            if not self.transport.app.should_stop:
                raise
            log.info("broker stopped the consumer while shutting down")
        except asyncio.CancelledError:
            if not self.transport.app.should_stop:
                raise
        finally:
            self.diag.unset_flag(CONSUMER_FETCHING)

    async def _dispatch(self, records: Mapping[TP, Sequence[Any]], active: Any) -> None:
        if not self.flow_active:
            # As Faust's own getmany: records fetched while the flow was stopped are
            # dropped, and the partitions go back to their committed offsets.
            await self.perform_seek()
            return
        generation = self.app.consumer_generation_id
        batches: dict[str, list[Any]] = {}
        for tp, batch in records.items():
            if active is not None and tp not in active and tp not in self._buffered_partitions:
                continue
            if tp.topic in self.batch_handlers:
                batches.setdefault(tp.topic, []).extend(self._to_message(tp, r) for r in batch)
                self._read_offset[tp] = batch[-1].offset
            else:
                await self._deliver_each(tp, batch)
        for topic, messages in batches.items():
            if self.app.consumer_generation_id != generation or not self.flow_active:
                # Partitions moved meanwhile: their new owner reads these again.
                return
            # In a task of its own: stopping the worker cancels this fetch loop, and
            # a batch cut short would leave states in the table that never reached
            # the changelog. ``wait_empty`` lets it finish before the last commit.
            self._batches_idle.clear()
            handling = asyncio.ensure_future(self.batch_handlers[topic](messages))
            handling.add_done_callback(lambda _: self._batches_idle.set())
            await asyncio.shield(handling)

    async def _deliver_each(self, tp: TP, batch: Sequence[Any]) -> None:
        """Faust's path: record by record to the conductor (agents, table recovery)."""
        callback, read_offset = self.callback, self._read_offset
        for record in batch:
            if not self.flow_active:
                return
            offset = record.offset
            seen = read_offset[tp]
            if seen is not None and offset < seen:
                continue
            if seen and offset - seen > 1 and self.app.topics.acks_enabled_for(tp.topic):
                await self._add_gap(tp, seen + 1, offset)
            if self._commit_every is not None and self._n_acked >= self._commit_every:
                self._n_acked = 0
                await self.commit()
            message = self._to_message(tp, record)
            await self.wait_first(callback(message), self.suspend_flow.wait())
            read_offset[tp] = offset

    async def wait_empty(self) -> None:
        """Before a rebalance or a stop commits: let the batch in hand finish, so its
        offsets are committed by this worker rather than read again by the next."""
        await self._batches_idle.wait()
        await super().wait_empty()

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
        await self._batches_idle.wait()
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
    """A Faust app whose consumer commits only what ``offset_progress`` allows, and
    hands the topics of ``batch_handlers`` to them a fetch at a time."""

    def __init__(self, *args: Any, offset_progress: OffsetProgress[TP], **kwargs: Any) -> None:
        self.offset_progress = offset_progress
        self.batch_handlers: dict[str, BatchHandler] = {}
        self._batch_topics: list[Any] = []
        super().__init__(*args, **kwargs)

    def batch_handler(self, topic: Any, handler: BatchHandler) -> None:
        """Subscribe to ``topic`` (a Faust topic) and hand its records to ``handler``."""
        self.batch_handlers[topic.get_topic_name()] = handler
        self._batch_topics.append(topic)

    async def on_start(self) -> None:
        # With the agents' topics, before the conductor first subscribes.
        for topic in self._batch_topics:
            self.topics.add(topic)
        await super().on_start()

    def _new_transport(self) -> Any:
        return GuardedTransport(self.conf.broker_consumer, self)

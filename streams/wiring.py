"""The pieces ``create_app`` wires together: how topics reach the handlers, how
commands reach delivery, and the replay of a partition stalled behind its fetches."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from aiokafka.errors import KafkaError

from nudge.models.catalog import CatalogSignal
from nudge.models.commands import SendCommand
from nudge.models.sellers import SellerRecord
from nudge.streams.consumer import NudgeApp
from nudge.streams.metrics import StreamMetrics
from nudge.streams.offsets import OffsetProgress
from nudge.trigger_registry import TriggerRegistry

log = logging.getLogger(__name__)

#: The catalogue's agent takes up to this many records, or what came within the time.
BATCH_MAX = 1000
BATCH_WITHIN_S = 0.05


def forget_on_recover(table: Any, store: Any) -> None:
    """Once ``table`` is recovered, ``store`` drops the values it kept decoded."""

    async def recovered() -> None:
        store.recovered()

    table.on_recover(recovered)


def settled(
    app: Any, registry: TriggerRegistry, fire: Callable[[], Awaitable[int]]
) -> Callable[[], Awaitable[None]]:
    """``fire``, skipped while partitions move or before the flows are known."""

    async def fire_when_settled() -> None:
        if not app.rebalancing and registry.ready.is_set():
            await fire()

    return fire_when_settled


def mark_applied(progress: OffsetProgress[Any], messages: Sequence[Any]) -> None:
    now = time.monotonic()
    for tp, offsets in _offsets_by_partition(messages).items():
        progress.applied(tp, offsets, now)


def command_sender(commands: Any, seller_messages: Any) -> Callable[[SendCommand], Awaitable[None]]:
    """Sending a command to delivery; one to a seller goes by the seller side first,
    which holds the seller's contact. Returns once the broker acknowledged it."""

    async def send_command(command: SendCommand) -> None:
        if command.seller_id and not command.recipient:
            record = SellerRecord(message=command)
            future = await seller_messages.send(
                key=command.seller_id.encode(), value=record.to_bytes()
            )
        else:
            future = await commands.send(key=command.customer_id.encode(), value=command.to_bytes())
        await future

    return send_command


def batch_path(
    app: NudgeApp, registry: TriggerRegistry, topic: Any, handler: Any, decode: Any
) -> None:
    """``handler`` takes each fetch of ``topic`` (``NudgeApp.batch_handler``), once the
    flows are known."""
    name = topic.get_topic_name()

    async def handle(messages: Sequence[Any]) -> None:
        await registry.ready.wait()
        try:
            await handler(messages, decode, name)
        except Exception:
            # The handler did not report the batch applied, so the commit stays
            # behind it and the stalled partition is fetched again.
            log.exception("handling a batch of %s failed; it will be replayed", name)

    app.batch_handler(topic, handle)


def batch_agent(app: Any, registry: TriggerRegistry, topic: Any, handler: Any, decode: Any) -> None:
    """An agent on ``topic`` handing ``handler`` its records in batches, once the flows
    are known."""
    name = topic.get_topic_name()

    async def agent(stream: Any) -> None:
        await registry.ready.wait()
        async for events in stream.take_events(BATCH_MAX, within=BATCH_WITHIN_S):
            # Records fetched before a rebalance may belong to a partition that
            # moved to another worker; the current owner reads them again.
            generation = app.consumer_generation_id
            messages = [e.message for e in events if e.message.generation_id == generation]
            if len(messages) < len(events):
                log.info(
                    "%s: %d records of an earlier generation left to their owner",
                    name,
                    len(events) - len(messages),
                )
            try:
                await handler(messages, decode, name)
            except Exception:
                # Faust acknowledges the batch anyway; the handler did not report
                # it applied, so the commit stays behind it and the stalled
                # partition is fetched again.
                log.exception("handling a batch of %s failed; it will be replayed", name)

    agent.__name__ = f"on_{name.replace('-', '_')}"
    app.agent(topic, name=agent.__name__)(agent)


async def replay_stalled(app: Any, progress: OffsetProgress[Any], metrics: StreamMetrics) -> None:
    """Seek every partition stalled behind records it fetched back to its position."""
    now = time.monotonic()
    for tp in progress.idle(now):
        # Records fetched and dropped before this worker tracked the partition
        # leave no trace but the log's end, which every fetch response reports.
        end = _cached_log_end(app.consumer, tp)
        if end is not None:
            progress.log_ends_at(tp, end)
    stalled = progress.stalled(now)
    if not stalled:
        return
    for tp, _ in stalled:
        position = progress.position(tp)
        log.warning("%s stalled at offset %s behind fetched records; replaying", tp, position)
    # Records below the log start are gone (retention): not a hole to wait on.
    starts = await _bounded(
        app.consumer.earliest_offsets(*(tp for tp, _ in stalled)), "log start offsets"
    )
    for tp, offset in stalled:
        progress.log_starts_at(tp, starts.get(tp, 0), time.monotonic())
        metrics.replays.inc()
        await app.consumer.seek(tp, offset)


def keyed(topic: Any) -> Callable[[bytes, bytes], Awaitable[Any]]:
    """Sending ``(key, value)`` to ``topic``: the returned future is the broker's ack."""

    async def send(key: bytes, value: bytes) -> Any:
        return await topic.send(key=key, value=value)

    return send


def decode_signal(value: bytes | None, headers: Any, max_bytes: int) -> CatalogSignal:
    return CatalogSignal.from_bytes(value)


def _cached_log_end(consumer: Any, tp: Any) -> int | None:
    """The partition's end offset as the last fetch response gave it (no request)."""
    try:
        end = consumer.highwater(tp)
    except (KafkaError, AssertionError, AttributeError):
        return None  # not assigned (any more), or no fetch yet
    return end if isinstance(end, int) else None


async def _bounded(request: Awaitable[Mapping[Any, int]], what: str) -> Mapping[Any, int]:
    """Offsets from the broker, or none: a Faust timer whose run hangs never runs again."""
    try:
        return await asyncio.wait_for(request, timeout=10.0)
    except (TimeoutError, KafkaError) as exc:
        log.warning("could not read %s (%s)", what, exc)
        return {}


def _offsets_by_partition(messages: Sequence[Any]) -> dict[Any, list[int]]:
    offsets: dict[Any, list[int]] = {}
    for message in messages:
        offsets.setdefault(message.tp, []).append(message.offset)
    return offsets

"""Reading what the pipeline wrote, for checks and diagnostics: records, states, commands.

Topics are read without a consumer group, from the beginning. A partition with a bound
is read up to it (input topics, below a committed offset). The others are read at least
to the last batch their high watermark announces (Tansu reports the base offset of the
last batch, not the end of the log), then on until they go quiet; a topic a live worker
keeps writing never quite ends, hence a cap.
"""

from __future__ import annotations

import time
import uuid
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from nudge.settings import Settings

TP = tuple[str, int]  # (short topic name, partition)


def changelog(settings: Settings) -> str:
    """The short name of the state table's changelog: Faust names it
    ``{app id}-{table}-changelog``, and nudge's Faust app id is prefix + app id."""
    return f"{settings.app_id}-customer-state-changelog"


def read_records(
    settings: Settings,
    topics: Iterable[str],
    *,
    below: Mapping[TP, int] | None = None,
    quiet_s: float = 1.0,
    cap_s: float = 30.0,
) -> dict[str, list[Any]]:
    """``{topic: [confluent Message]}``, read from the beginning.

    With ``below``, each partition is read up to its bound (a partition without one is
    not read at all). Without it, each partition at least up to the last batch its high
    watermark announces, then on until the topics go quiet for ``quiet_s``."""
    names = list(topics)
    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka_bootstrap,
            "group.id": f"fault-reader-{uuid.uuid4().hex[:8]}",
            "enable.auto.commit": False,
        }
    )
    by_full = {settings.topic(n): n for n in names}
    out: dict[str, list[Any]] = {n: [] for n in names}
    try:
        targets: dict[TP, int] = {}  # partition -> the last offset it must reach
        assignment: list[TopicPartition] = []
        for full, short in by_full.items():
            meta = consumer.list_topics(full, timeout=10).topics[full]
            for p in meta.partitions:
                if below is not None:
                    target = below.get((short, p), 0) - 1
                else:
                    target = consumer.get_watermark_offsets(TopicPartition(full, p), 10)[1] - 1
                if below is None or target >= 0:
                    assignment.append(TopicPartition(full, p, OFFSET_BEGINNING))
                if target >= 0:
                    targets[(short, p)] = target
        if not assignment:
            return out
        consumer.assign(assignment)
        deadline = time.monotonic() + cap_s
        while time.monotonic() < deadline:
            batch = consumer.consume(num_messages=1000, timeout=quiet_s)
            if not batch and not targets:
                break  # quiet, and everything announced was read
            for msg in batch:
                topic, partition, offset = msg.topic(), msg.partition(), msg.offset() or 0
                if msg.error() is not None or topic is None or partition is None:
                    continue
                key = (by_full[topic], partition)
                if below is not None and offset >= below.get(key, 0):
                    continue
                out[key[0]].append(msg)
                if offset >= targets.get(key, offset + 1):
                    del targets[key]
            if below is not None and not targets:
                break
        return out
    finally:
        consumer.close()


def committed_offsets(settings: Settings, group: str, topics: Iterable[str]) -> dict[TP, int]:
    """The group's committed offsets (the next record to read); absent where none."""
    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka_bootstrap,
            "group.id": group,
            "enable.auto.commit": False,
        }
    )
    try:
        wanted: list[TopicPartition] = []
        for short in topics:
            full = settings.topic(short)
            meta = consumer.list_topics(full, timeout=10).topics[full]
            wanted += [TopicPartition(full, p) for p in meta.partitions]
        result: dict[TP, int] = {}
        prefix = len(settings.topic_prefix)
        for tp in consumer.committed(wanted, timeout=15):
            if tp.error is None and tp.offset >= 0:
                result[(tp.topic[prefix:], tp.partition)] = tp.offset
        return result
    finally:
        consumer.close()


@dataclass
class Effects:
    """What the pipeline made durable, per customer id."""

    carts: set[str] = field(default_factory=set)  # a changelog state with a cart or timer
    profiles: set[str] = field(default_factory=set)  # a changelog state with an email
    commands: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    events: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    #: diagnostics only (``full=True``): where each customer's input records sit
    inputs: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    dead_letters: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    latest: dict[str, str] = field(default_factory=dict)  # the last changelog state, briefly
    undecodable: int = 0


def read_effects(settings: Settings, *, full: bool = False) -> Effects:
    """Changelog states and send commands; with ``full`` also delivery events, dead
    letters and the positions of the input records, for diagnostics."""
    topics = [changelog(settings), "send-commands"]
    if full:
        topics += ["delivery-events", "dead-letter", "customers", "clickstream"]
    records = read_records(settings, topics)
    effects = Effects()
    for msg in records[changelog(settings)]:
        _fold_state(effects, _key(msg), msg.value())
    for msg in records["send-commands"]:
        command = _json(msg.value())
        if command:
            effects.commands[str(command.get("customer_id"))].append(str(command.get("id")))
    for msg in records.get("delivery-events", []):
        event = _json(msg.value())
        if event:
            what = f"{event.get('status')}/{event.get('reason') or 'ok'}"
            effects.events[str(event.get("customer_id"))].append(what)
    for msg in records.get("dead-letter", []):
        headers = {k: (v or b"").decode(errors="replace") for k, v in msg.headers() or []}
        effects.dead_letters[_key(msg)].append(headers.get("nudge.dlq.reason", "?"))
    for topic in ("customers", "clickstream"):
        for msg in records.get(topic, []):
            kind = (_json(msg.value()) or {}).get("type", "profile")
            where = f"{topic}[{msg.partition()}]@{msg.offset()} {kind}"
            effects.inputs[_key(msg)].append(where)
    return effects


def _fold_state(effects: Effects, cid: str, raw: bytes | None) -> None:
    if raw is None:
        return
    try:
        from nudge.streams.state_codec import state_from_bytes

        state = state_from_bytes(raw)
    except Exception:
        effects.undecodable += 1
        effects.carts.add(cid)  # cannot tell: count it as an effect (never a false alarm)
        effects.profiles.add(cid)
        return
    if state.cart or state.runs:
        effects.carts.add(cid)
    if state.profile.email:
        effects.profiles.add(cid)
    effects.latest[cid] = (
        f"cart lines {len(state.cart)}, runs {len(state.runs)}, "
        f"email {'yes' if state.profile.email else 'no'}, "
        f"consent {state.profile.consent.get('email', 'none')}"
    )


def _key(msg: Any) -> str:
    return (msg.key() or b"").decode(errors="replace")


def uncertain_commands(settings: Settings) -> dict[str, str]:
    """Command id -> customer id of what the delivery side reported ``interrupted_uncertain``."""
    found: dict[str, str] = {}
    for msg in read_records(settings, ["delivery-events"])["delivery-events"]:
        event = _json(msg.value())
        if event and event.get("reason") == "interrupted_uncertain":
            found[str(event.get("command_id"))] = str(event.get("customer_id"))
    return found


def ended_without_mail(settings: Settings) -> set[str]:
    """Customers with a ``failed`` or ``suppressed`` delivery event."""
    found: set[str] = set()
    for msg in read_records(settings, ["delivery-events"])["delivery-events"]:
        event = _json(msg.value())
        if event and event.get("status") in ("failed", "suppressed"):
            found.add(str(event.get("customer_id")))
    return found


def _json(raw: bytes | None) -> dict[str, Any] | None:
    try:
        value = orjson.loads(raw or b"")
    except orjson.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None

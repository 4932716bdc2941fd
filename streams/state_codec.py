"""The changelog codec for ``CustomerState``: positional JSON arrays, versioned.

It runs on every changelog write, so it avoids orjson's dataclass path (four times
slower) and field names (twice the bytes). The first element is the format version;
a new field is appended at the end and older records decode with its default.
The memory store keeps live objects, so decoding runs only on recovery.
"""

from __future__ import annotations

from typing import Any

import orjson

from nudge.models.state import CartLine, CustomerState, FlowMark, Profile, Run, Seen

CODEC_NAME = "nudge-state"
VERSION = 2
#: Version 1 kept abandonment timers: (trigger id, message number, due, episode,
#: payload). Their shorthand flows send message 0 at step 1 and message 1 at step 3.
_V1_SEND_STEPS = {0: (1,), 1: (3,)}


def _seen(items: tuple[Seen, ...]) -> list[list[Any]]:
    return [[s.value, s.ts, s.category_id] for s in items]


def state_to_bytes(state: CustomerState) -> bytes:
    p = state.profile
    return orjson.dumps(
        [
            VERSION,
            state.customer_id,
            state.partition,
            [
                p.email, p.phone, p.first_name, p.last_name, p.timezone, p.consent, p.attributes,
                list(p.tags), p.consent_at, p.bounced_email, p.consent_before_bounce,
            ],
            [[c.product_id, c.quantity, c.price] for c in state.cart],
            _seen(state.views),
            _seen(state.categories),
            _seen(state.searches),
            state.last_activity_ms,
            state.last_order_ms,
            state.orders,
            [
                [r.flow_id, list(r.at), r.due_ms, r.episode, r.payload, r.version, r.key,
                 r.variant, r.waiting_for]
                for r in state.runs
            ],
            list(state.recent_events),
            _seen(state.bought),
            [[m.flow_id, m.started_ms, m.sent_ms, m.sent_episode] for m in state.flow_marks],
            state.total_spent,
            state.first_order_ms,
            state.created_ms,
            _seen(state.bought_categories),
        ]
    )  # fmt: skip


def state_from_bytes(raw: bytes) -> CustomerState:
    data = orjson.loads(raw)
    if not isinstance(data, list) or not data or data[0] not in (1, VERSION):
        raise ValueError(f"unknown customer-state format: {raw[:40]!r}")
    (version, customer_id, partition, profile, cart, views, categories, searches,
     last_activity_ms, last_order_ms, orders, runs, recent) = data[:13]  # fmt: skip
    bought = data[13] if len(data) > 13 else []  # appended later: older records lack it
    if version == 1:
        runs = [_v1_run(*timer) for timer in runs]
        marks, total_spent, first_order_ms = [], 0.0, 0
        created_ms = 1  # known before flows: never "created" again
    else:
        runs = [Run(r[0], tuple(r[1]), *r[2:]) for r in runs]
        marks, total_spent, first_order_ms, created_ms = data[14:18]
    bought_categories = data[18] if len(data) > 18 else []  # appended later
    if len(profile) > 7:
        profile = [*profile[:7], tuple(profile[7]), *profile[8:]]
    return CustomerState(
        customer_id=customer_id,
        partition=partition,
        profile=Profile(*profile),
        cart=tuple(CartLine(*c) for c in cart),
        views=tuple(Seen(*s) for s in views),
        categories=tuple(Seen(*s) for s in categories),
        searches=tuple(Seen(*s) for s in searches),
        last_activity_ms=last_activity_ms,
        last_order_ms=last_order_ms,
        orders=orders,
        runs=tuple(runs),
        recent_events=tuple(recent),
        bought=tuple(Seen(*s) for s in bought),
        flow_marks=tuple(FlowMark(*m) for m in marks),
        total_spent=total_spent,
        first_order_ms=first_order_ms,
        created_ms=created_ms,
        bought_categories=tuple(Seen(*s) for s in bought_categories),
    )


def _v1_run(trigger_id: str, step: int, due_ms: int, episode: int, payload: dict[str, Any]) -> Run:
    return Run(trigger_id, _V1_SEND_STEPS.get(step, (1,)), due_ms, episode, payload)

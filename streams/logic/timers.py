"""Due timers become send commands.

A command's id is ``trigger:customer:episode:step``: if the worker dies after sending
and before its table write lands, the replayed timer yields the same id and the
delivery worker's idempotency keeps it to one message.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from models.commands import SendCommand, TemplateRef
from models.state import CustomerState, Pending
from models.triggers import TriggerDef, TriggerSet

#: A timer this late (a replay after a long outage) no longer describes a live moment.
STALE_AFTER_MS = 24 * 3600 * 1000
#: Kinds whose follow-up makes sense (a reminder about the same, still-open episode).
FOLLOW_UP_KINDS = frozenset({"abandoned_cart"})


def fire_due(
    state: CustomerState, triggers: TriggerSet, now_ms: int
) -> tuple[CustomerState, list[SendCommand]]:
    """Send what is due at ``now_ms``; returns the same state object if nothing was due."""
    if not state.pending or min(p.due_ms for p in state.pending) > now_ms:
        return state, []
    kept: list[Pending] = []
    commands: list[SendCommand] = []
    for pending in state.pending:
        if pending.due_ms > now_ms:
            kept.append(pending)
            continue
        trigger = triggers.get(pending.trigger_id)
        if trigger is None or not trigger.enabled:
            continue
        if now_ms - pending.due_ms > STALE_AFTER_MS:
            continue  # stale: dropped, follow-up included
        command = build_command(state, trigger, pending, now_ms)
        if command is None:
            continue  # nobody or nothing to send: no reminder of a message never sent
        commands.append(command)
        follow_up = trigger.follow_up
        if pending.step == 0 and follow_up is not None and trigger.kind in FOLLOW_UP_KINDS:
            kept.append(replace(pending, step=1, due_ms=pending.due_ms + follow_up.delay_ms))
    return state.evolve(pending=tuple(kept)), commands


def command_id(trigger_id: str, customer_id: str, episode: int, step: int) -> str:
    return f"{trigger_id}:{customer_id}:{episode}:{step}"


def build_command(
    state: CustomerState, trigger: TriggerDef, pending: Pending, now_ms: int
) -> SendCommand | None:
    """The message for one due timer, or None when there is nobody or nothing to send."""
    profile = state.profile
    if not profile.email or profile.consent.get("email") == "unsubscribed":
        return None
    context: dict[str, Any] = {
        "customer": profile.as_context(state.customer_id),
        # What the recommender personalises from: viewed, then carted products, oldest first.
        "history": _history(state),
        # What it must not offer again: the latest products bought.
        "bought": [seen.value for seen in state.bought],
    }
    kind = trigger.kind
    if kind == "abandoned_cart":
        if not state.cart:
            return None
        context["items"] = [
            {"product_id": line.product_id, "quantity": line.quantity, "price": line.price}
            for line in state.cart
        ]
    elif kind == "abandoned_view":
        context["items"] = [
            {"product_id": pid, "quantity": 1} for pid in pending.payload.get("product_ids", ())
        ]
        if not context["items"]:
            return None
    elif kind == "abandoned_category":
        context["category"] = {"category_id": pending.payload.get("category_id")}
        context["items"] = []
    elif kind == "abandoned_search":
        context["search_query"] = pending.payload.get("query", "")
        context["items"] = []
    return SendCommand(
        id=command_id(trigger.id, state.customer_id, pending.episode, pending.step),
        trigger_id=trigger.id,
        kind=kind,
        step=pending.step,
        channel=trigger.channel,
        customer_id=state.customer_id,
        recipient=profile.email,
        template=TemplateRef(trigger.id, pending.step, trigger.version),
        context=context,
        due_ms=pending.due_ms,
        created_ms=now_ms,
    )


def _history(state: CustomerState) -> list[str]:
    viewed = [seen.value for seen in reversed(state.views)]
    carted = [line.product_id for line in state.cart if line.product_id not in viewed]
    return viewed + carted

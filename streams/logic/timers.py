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
#: A due timer waiting for the customer's address looks again after this long...
ADDRESS_RECHECK_MIN_MS = 10_000
#: ...and at least this often, however old its episode.
ADDRESS_RECHECK_MAX_MS = 5 * 60_000
#: Marks, in a timer's payload, one that waits for an address (see ``awaits_address``).
AWAITING_ADDRESS = "awaiting_address"
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
            if awaits_address(state, pending, now_ms):
                kept.append(park_for_address(pending, now_ms))
            continue  # nobody or nothing to send: no reminder of a message never sent
        commands.append(command)
        follow_up = trigger.follow_up
        if pending.step == 0 and follow_up is not None and trigger.kind in FOLLOW_UP_KINDS:
            kept.append(replace(pending, step=1, due_ms=pending.due_ms + follow_up.delay_ms))
    return state.evolve(pending=tuple(kept)), commands


def awaits_address(state: CustomerState, pending: Pending, now_ms: int) -> bool:
    """A due timer of a customer with no address yet: the profile may be on its way.

    Input topics are consumed independently, and after a crash both are replayed: a
    cart event can be applied before the sign-up that came first, its timer already
    due. Spending the timer then would lose the message; it waits for the address
    instead, as long as the episode is not stale. Opted-out customers do not wait.
    """
    profile = state.profile
    return (
        not profile.email
        and profile.consent.get("email") != "unsubscribed"
        and now_ms - pending.episode <= STALE_AFTER_MS
    )


def park_for_address(pending: Pending, now_ms: int) -> Pending:
    """Look again later, less often the older the episode (anonymous carts are many)."""
    wait = min(max((now_ms - pending.episode) // 4, ADDRESS_RECHECK_MIN_MS), ADDRESS_RECHECK_MAX_MS)
    return replace(
        pending, due_ms=now_ms + wait, payload={**pending.payload, AWAITING_ADDRESS: True}
    )


def release_for_address(state: CustomerState, now_ms: int) -> CustomerState:
    """The customer now has an address: timers that waited for one are due at once."""
    if not state.profile.email or not any(AWAITING_ADDRESS in p.payload for p in state.pending):
        return state
    pending = tuple(
        replace(p, due_ms=min(p.due_ms, now_ms)) if AWAITING_ADDRESS in p.payload else p
        for p in state.pending
    )
    return state.evolve(pending=pending)


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

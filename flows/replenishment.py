"""Replenishment: when a product bought is likely used up.

A flow triggered by ``{event: order_placed, per_item: true}`` runs once per product
ordered; its ``wait: {replenish: {lead, fallback}}`` waits for the product's interval
less ``lead``. The interval is, in order: the customer's own repurchase interval for
the product (this order against their previous one); else the median interval across
customers (``Repurchase.median_ms``, kept by the stream worker in Redis); else the
product's ``replenish_days`` catalogue param; else ``fallback``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from nudge.models.events import OrderEvent
from nudge.models.state import CustomerState

DAY_MS = 86_400_000
#: A repurchase sooner than this is a second order of the same thing, not a refill.
MIN_INTERVAL_MS = DAY_MS


@dataclass(frozen=True, slots=True)
class Repurchase:
    """What is known of a product's refills beyond this customer."""

    median_ms: int | None = None
    #: the catalogue's ``replenish_days`` param, in ms
    param_ms: int | None = None


NOTHING_KNOWN: Mapping[str, Repurchase] = {}


def own_intervals(state: CustomerState, event: OrderEvent, base_ms: int) -> dict[str, int]:
    """Per product of the order bought before by this customer: how long ago."""
    previous = {seen.value: seen.ts for seen in state.bought}
    found = {}
    for item in event.items:
        before = previous.get(item.product_id)
        if before is not None and base_ms - before >= MIN_INTERVAL_MS:
            found[item.product_id] = base_ms - before
    return found


def item_payloads(
    state: CustomerState,
    event: OrderEvent,
    data: dict[str, Any],
    base_ms: int,
    known: Mapping[str, Repurchase],
) -> list[tuple[str, dict[str, Any]]]:
    """(run key, payload) per product ordered: one run each, keyed by product."""
    own = own_intervals(state, event, base_ms)
    runs = []
    for item in event.items:
        pid = item.product_id
        facts = known.get(pid, Repurchase())
        payload = {
            "event": data,
            "item": {"product_id": pid, "quantity": item.quantity, "price": item.price},
            "interval": {"own": own.get(pid), "median": facts.median_ms, "param": facts.param_ms},
        }
        runs.append((pid, payload))
    return runs


def interval_ms(payload: Mapping[str, Any], fallback_ms: int) -> int:
    """The first known of the customer's own, the median, the param; else ``fallback``."""
    known = payload.get("interval") or {}
    for source in ("own", "median", "param"):
        value = known.get(source)
        if isinstance(value, int) and value > 0:
            return value
    return fallback_ms


def param_ms(product: Mapping[str, Any]) -> int | None:
    """A catalogue product's ``replenish_days`` param, in ms; None if absent or bad."""
    raw = (product.get("params") or {}).get("replenish_days")
    try:
        days = float(raw) if raw is not None else None
    except (TypeError, ValueError):
        return None
    return round(days * DAY_MS) if days and days > 0 else None


def median(values: list[int]) -> int | None:
    if not values:
        return None
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) // 2

"""What the stream worker knows of products' refill intervals, for replenishment.

Per order batch, with a flow running per ordered product: the catalogue's
``replenish_days`` and the median interval other customers showed, read from Redis in
one round trip (``facts``). The intervals this batch shows (a customer buying a
product again) are collected and written once a second, off the event path, like
popularity: best effort, a crash loses at most a second of them.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from nudge.flows.replenishment import Repurchase, median, own_intervals, param_ms
from nudge.models.events import OrderEvent
from nudge.models.state import CustomerState
from nudge.shared_state import SharedState

log = logging.getLogger(__name__)


class RepurchaseStats:
    def __init__(self, shared: SharedState) -> None:
        self.shared = shared
        self._pending: dict[str, list[int]] = {}

    @staticmethod
    def products(decoded: Sequence[tuple[Any, Any]]) -> set[str]:
        """The products of the batch's placed orders, history aside."""
        return {
            item.product_id
            for _, event in decoded
            if isinstance(event, OrderEvent)
            and event.type == "order_placed"
            and not event.historical
            for item in event.items
        }

    async def facts(
        self, product_ids: Iterable[str], products: Mapping[str, Mapping[str, Any]]
    ) -> dict[str, Repurchase]:
        ids = list(product_ids)
        intervals = await self.shared.repurchase_intervals(ids)
        return {
            pid: Repurchase(median(intervals.get(pid, [])), param_ms(products.get(pid, {})))
            for pid in ids
        }

    def saw(self, before: CustomerState, event: OrderEvent, base_ms: int) -> None:
        """Note the intervals an order shows against the customer's previous purchases."""
        for pid, interval in own_intervals(before, event, base_ms).items():
            self._pending.setdefault(pid, []).append(interval)

    async def flush(self) -> None:
        pending, self._pending = self._pending, {}
        try:
            await self.shared.record_repurchases(pending)
        except Exception as exc:
            log.warning("repurchase intervals not recorded, kept for the next pass: %s", exc)
            for pid, values in pending.items():
                self._pending.setdefault(pid, []).extend(values)

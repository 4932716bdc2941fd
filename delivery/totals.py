"""What a cart or an order adds up to: each line's total and the subtotal, exact.

Prices arrive as floats from feeds and events; they are read through ``str`` into
``Decimal``, so 0.1 x 3 is 0.3 and a subtotal is the sum of the lines it shows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any


@dataclass(frozen=True, slots=True)
class Subtotal:
    amount: Decimal
    currency: str


def line_total(item: Mapping[str, Any]) -> Decimal | None:
    """Price times quantity, exact in decimal; ``None`` when the price is not a number."""
    price = item.get("price")
    if price is None or isinstance(price, bool):
        return None
    try:
        amount = Decimal(str(price))  # str(): a float price adds up as it reads
    except (InvalidOperation, ValueError, TypeError):
        return None
    return amount * int(item.get("quantity") or 1) if amount.is_finite() else None


def subtotal(items: Sequence[Mapping[str, Any]]) -> Subtotal | None:
    """The items' line totals added up, in their one currency; ``None`` when there are
    no items, a price is missing, or currencies differ (no sum would be honest)."""
    totals = [item.get("line_total") for item in items]
    amounts = [total for total in totals if isinstance(total, Decimal)]
    currencies = {item.get("currency") or "" for item in items}
    if not items or len(amounts) != len(totals) or len(currencies) != 1:
        return None
    return Subtotal(sum(amounts, Decimal(0)), currencies.pop())

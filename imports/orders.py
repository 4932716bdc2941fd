"""An order row as a historical ``order_placed`` record.

Fields: order_id, customer_id, date (ISO 8601, or epoch milliseconds; an all-digit
value under 10^11 is read as epoch seconds, since no order predates 1973), items,
total (default: the sum of the items), currency (default: ``--currency``), status.
Items are a list in JSONL and a JSON array in the CSV ``items`` column: one order per
row, so an order never depends on rows around it. Each item: product_id (or id/sku),
quantity (default 1), price. ``historical: true`` feeds state and models and never
fires transactional mail.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import orjson

from nudge.imports.errors import RowError
from nudge.imports.tabular import pick, required_text

FIELDS = frozenset({"order_id", "customer_id", "date", "items", "total", "currency", "status"})


def parse_date(raw: Any) -> int:
    if isinstance(raw, bool):
        raise RowError(f"bad date {raw!r}")
    if isinstance(raw, int | float) or (isinstance(raw, str) and raw.strip().isdigit()):
        value = int(raw)
        return value * 1000 if value < 10**11 else value
    if not isinstance(raw, str) or not raw.strip():
        raise RowError("missing date")
    try:
        moment = datetime.fromisoformat(raw.strip())
    except ValueError:
        raise RowError(f"bad date {raw!r:.40}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)  # a date without offset is taken as UTC
    return int(moment.timestamp() * 1000)


def _number(raw: Any, name: str) -> float:
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise RowError(f"bad {name} {raw!r:.40}") from None
    if not math.isfinite(value) or value < 0 or isinstance(raw, bool):
        raise RowError(f"bad {name} {raw!r:.40}")
    return value


def _items(raw: Any) -> list[dict[str, Any]]:
    if isinstance(raw, str):
        try:
            raw = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise RowError("items: not a JSON array") from None
    if not isinstance(raw, list) or not raw:
        raise RowError("items: expected a non-empty list")
    items = []
    for i, item in enumerate(raw):
        if not isinstance(item, dict):
            raise RowError(f"items[{i}]: not an object")
        pid = item.get("product_id") or item.get("id") or item.get("sku")
        quantity = item.get("quantity", 1)
        if isinstance(quantity, str) and quantity.strip().isdigit():
            quantity = int(quantity)
        if type(quantity) is not int or quantity < 1:
            raise RowError(f"items[{i}]: bad quantity {quantity!r:.20}")
        if item.get("price") is None:
            raise RowError(f"items[{i}]: missing price")
        items.append(
            {
                "product_id": required_text(pid, f"items[{i}].product_id"),
                "quantity": quantity,
                "price": _number(item["price"], f"items[{i}].price"),
            }
        )
    return items


def order_event(data: Mapping[str, Any], default_currency: str) -> dict[str, Any]:
    none: dict[str, str] = {}
    items = _items(pick(data, none, "items"))
    total_raw = pick(data, none, "total")
    total = (
        _number(total_raw, "total")
        if total_raw is not None
        else round(sum(i["price"] * i["quantity"] for i in items), 2)
    )
    currency = str(pick(data, none, "currency") or default_currency).strip().upper()
    if not currency:
        raise RowError("missing currency (add a currency column or pass --currency)")
    date = pick(data, none, "date")
    event: dict[str, Any] = {
        "type": "order_placed",
        "order_id": required_text(pick(data, none, "order_id"), "order_id"),
        "customer_id": required_text(pick(data, none, "customer_id"), "customer_id"),
        "ts": parse_date(date if date is not None else pick(data, none, "ts")),
        "items": items,
        "total": total,
        "currency": currency,
        "historical": True,
    }
    status = pick(data, none, "status")
    if status is not None:
        event["status"] = str(status)
    # Same row, same id: a re-run is a duplicate downstream, not a second order.
    digest = hashlib.blake2b(orjson.dumps(event, option=orjson.OPT_SORT_KEYS), digest_size=12)
    return {"event_id": f"import-{digest.hexdigest()}", **event}

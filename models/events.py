"""Storefront events as Faust records: the payloads of the input topics.

Field names and types mirror ``schemas/*.avsc``, which are the source of truth.
"""

from __future__ import annotations

from typing import Any

import faust

CLICK_TYPES = frozenset(
    {"product_view", "category_view", "search", "cart_add", "cart_remove", "product_subscribe"}
)
ORDER_TYPES = frozenset({"order_placed", "order_status"})
CONSENT_VALUES = frozenset({"subscribed", "unsubscribed", "pending"})


class _Record(faust.Record, abstract=True, include_metadata=False, isodates=False):
    pass


class ClickEvent(_Record):
    event_id: str
    type: str
    customer_id: str
    ts: int
    product_id: str | None = None
    category_id: str | None = None
    query: str | None = None
    quantity: int | None = None
    price: float | None = None
    session_id: str | None = None
    #: ``product_subscribe``: what to hear about, ``price_drop`` or ``back_in_stock``
    topic: str | None = None


class OrderItem(_Record):
    product_id: str
    quantity: int = 1
    price: float = 0.0
    #: marketplaces: who sells this item (else the order's ``seller_id``)
    seller_id: str | None = None


class OrderEvent(_Record):
    event_id: str
    type: str
    order_id: str
    customer_id: str
    ts: int
    items: list[OrderItem]
    total: float = 0.0
    currency: str = ""
    status: str | None = None
    historical: bool = False
    seller_id: str | None = None


class Consent(_Record):
    email: str | None = None
    sms: str | None = None


class CustomerEvent(_Record):
    """An upsert: a field left as ``None`` keeps its previous value."""

    event_id: str
    customer_id: str
    ts: int
    email: str | None = None
    phone: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    timezone: str | None = None
    consent: dict[str, str] | None = None
    attributes: dict[str, Any] | None = None
    historical: bool = False
    #: Evidence for a consent change (both needed to undo an opt-out): when the
    #: customer gave it, epoch ms, and where (``double_opt_in``, ``checkout``, ...).
    consent_ts: int | None = None
    consent_source: str | None = None


class Product(_Record):
    product_id: str
    title: str
    url: str
    price: float
    currency: str = ""
    image_url: str | None = None
    category_ids: list[str] = []
    available: bool = True
    category_path: list[str] | None = None
    old_price: float | None = None
    description: str | None = None
    params: dict[str, str] | None = None

    def as_context(self, quantity: int | None = None) -> dict[str, Any]:
        data: dict[str, Any] = {
            "product_id": self.product_id,
            "title": self.title,
            "url": self.url,
            "image_url": self.image_url,
            "price": self.price,
            "currency": self.currency,
            "old_price": self.old_price,
            "description": self.description,
            "category_path": self.category_path,
            "params": self.params,
        }
        if quantity is not None:
            data["quantity"] = quantity
        return data


def event_data(event: ClickEvent | OrderEvent | CustomerEvent) -> dict[str, Any]:
    """An event as plain data, as flows keep it in a run and templates see it."""
    data: dict[str, Any] = event.asdict()
    if "items" in data:
        data["items"] = [item.asdict() for item in data["items"]]
    return data

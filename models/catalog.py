"""Records of the catalogue triggers' join: a product's news, told to its audience.

``catalog-changes`` (keyed by product) says a price dropped or a product is back.
``product-interest`` (keyed by product) is the clickstream repartitioned: who viewed,
carted or subscribed to a product. ``catalog-signals`` (keyed by customer) is the
fan-out: one record per customer in a change's audience, naming the flows it starts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

import orjson

from nudge.errors import InvalidMessage
from nudge.models.json_records import json_object

ChangeType = Literal["price_drop", "back_in_stock"]
CHANGE_TYPES: frozenset[str] = frozenset({"price_drop", "back_in_stock"})
InterestKind = Literal["viewed", "carted", "subscribed"]


def _text(data: dict[str, Any], name: str) -> str:
    value = data.get(name)
    if type(value) is not str or not value:
        raise InvalidMessage("missing_field", name)
    return value


def _number(data: dict[str, Any], name: str) -> float | None:
    value = data.get(name)
    if value is None:
        return None
    if type(value) not in (int, float):
        raise InvalidMessage("bad_field", f"{name}: {value!r}"[:200])
    return float(value)


def _ms(data: dict[str, Any], name: str) -> int:
    value = data.get(name)
    if type(value) is not int:
        raise InvalidMessage("bad_field", f"{name}: {value!r}"[:200])
    return value


@dataclass(frozen=True, slots=True)
class CatalogChange:
    """A price drop or a return to stock, as ``nudge import catalog`` emits them."""

    event_id: str
    type: str
    product_id: str
    ts: int
    old_price: float | None = None
    new_price: float | None = None
    currency: str = ""

    @classmethod
    def from_bytes(cls, raw: bytes | None) -> CatalogChange:
        data = json_object(raw, "catalog change")
        kind = _text(data, "type")
        if kind not in CHANGE_TYPES:
            raise InvalidMessage("unknown_type", kind[:80])
        return cls(
            event_id=_text(data, "event_id"),
            type=kind,
            product_id=_text(data, "product_id"),
            ts=_ms(data, "ts"),
            old_price=_number(data, "old_price"),
            new_price=_number(data, "new_price"),
            currency=str(data.get("currency") or ""),
        )

    @property
    def drop_percent(self) -> float | None:
        """How much cheaper, in percent of the old price; None when not a known drop."""
        if self.old_price is None or self.new_price is None or self.old_price <= 0:
            return None
        return max(0.0, (self.old_price - self.new_price) / self.old_price * 100)


@dataclass(frozen=True, slots=True)
class Interest:
    """A customer showed interest in a product: the index's input."""

    product_id: str
    customer_id: str
    kind: str  # InterestKind
    ts: int
    #: for ``subscribed``: what the customer asked to hear about (a ChangeType)
    topic: str | None = None

    @classmethod
    def from_data(cls, data: Any) -> Interest:
        if type(data) is not list or len(data) != 5:
            raise InvalidMessage("bad_field", f"interest: {data!r}"[:200])
        product_id, customer_id, kind, ts, topic = data
        if kind not in ("viewed", "carted", "subscribed"):
            raise InvalidMessage("unknown_type", str(kind)[:80])
        if type(product_id) is not str or type(customer_id) is not str or type(ts) is not int:
            raise InvalidMessage("bad_field", f"interest: {data!r}"[:200])
        if kind == "subscribed" and topic not in CHANGE_TYPES:
            raise InvalidMessage("bad_field", f"topic: {topic!r}"[:200])
        return cls(product_id, customer_id, kind, ts, topic)


def encode_interests(interests: Sequence[Interest]) -> bytes:
    """One ``product-interest`` record for many interests (all of one partition): the
    repartition costs a record per batch and partition, not one per click."""
    return orjson.dumps(
        {"interests": [[i.product_id, i.customer_id, i.kind, i.ts, i.topic] for i in interests]}
    )


def decode_interests(raw: bytes | None) -> list[Interest]:
    data = json_object(raw, "product interests")
    rows = data.get("interests")
    if type(rows) is not list:
        raise InvalidMessage("missing_field", "interests")
    return [Interest.from_data(row) for row in rows]


@dataclass(frozen=True, slots=True)
class CatalogSignal:
    """One customer of a change's audience, and the flows the change starts for them."""

    event_id: str
    type: str  # ChangeType
    customer_id: str
    product_id: str
    ts: int
    flows: tuple[str, ...]
    old_price: float | None = None
    new_price: float | None = None
    currency: str = ""
    #: why the customer is in the audience: subscribed, viewed, carted
    reasons: tuple[str, ...] = ()

    def to_bytes(self) -> bytes:
        return orjson.dumps(asdict(self))

    @classmethod
    def from_bytes(cls, raw: bytes | None) -> CatalogSignal:
        data = json_object(raw, "catalog signal")
        try:
            return cls(**{**data, "flows": tuple(data["flows"]), "reasons": tuple(data["reasons"])})
        except (KeyError, TypeError) as exc:
            raise InvalidMessage("bad_field", str(exc)[:200]) from exc

    def event_data(self) -> dict[str, Any]:
        """The signal as the flows see it: ``event`` in conditions and templates."""
        data = asdict(self)
        del data["flows"]
        data["reasons"] = list(self.reasons)
        return data

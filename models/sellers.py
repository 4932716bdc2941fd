"""Marketplace sellers: their contact, their sales, the messages addressed to them.

``sellers`` (keyed by seller id) is an input topic: a seller's contact, upserted.
``seller-messages`` (keyed by seller id) is internal: what the customer-keyed side
has for a seller, a sale (for milestones) or a message from a buyer's flow
(``send.to: seller``), repartitioned so that it meets the seller's state.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import orjson

from nudge.errors import InvalidMessage
from nudge.models.commands import SendCommand
from nudge.models.json_records import json_object

#: Orders a seller's state remembers, so that a replayed sale is counted once.
RECENT_ORDERS = 64
#: Messages held for a seller whose contact has not arrived yet, at most.
MAX_HELD = 100


@dataclass(frozen=True, slots=True)
class SellerProfile:
    """A record of ``sellers``; a field left out keeps its previous value."""

    seller_id: str
    email: str | None = None
    name: str | None = None
    phone: str | None = None
    attributes: dict[str, Any] | None = None

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> SellerProfile:
        """From a ``sellers`` record as parsed (``nudge.codec.decode_seller`` checks the
        address); unknown fields are ignored, as on the other input topics."""
        seller_id = data.get("seller_id")
        if type(seller_id) is not str or not seller_id.strip():
            raise InvalidMessage("missing_field", "seller_id")
        values: dict[str, Any] = {"seller_id": seller_id}
        for name in ("email", "name", "phone"):
            value = data.get(name)
            if value is None:
                continue
            if type(value) is not str:
                raise InvalidMessage("bad_field", f"{name}: {value!r}"[:200])
            values[name] = value.strip()
        attributes = data.get("attributes")
        if attributes is not None:
            if type(attributes) is not dict:
                raise InvalidMessage("bad_field", "attributes: not an object")
            values["attributes"] = attributes
        return cls(**values)

    def to_bytes(self) -> bytes:
        return orjson.dumps({k: v for k, v in asdict(self).items() if v is not None})


@dataclass(frozen=True, slots=True)
class SellerSale:
    """An order placed with items of this seller: only those items."""

    seller_id: str
    order_id: str
    customer_id: str
    ts: int
    items: tuple[dict[str, Any], ...]
    currency: str = ""
    historical: bool = False

    @property
    def total(self) -> float:
        return round(sum(i.get("price", 0.0) * i.get("quantity", 1) for i in self.items), 2)


@dataclass(frozen=True, slots=True)
class SellerRecord:
    """One record of ``seller-messages``: a sale or a message, never both."""

    sale: SellerSale | None = None
    message: SendCommand | None = None

    @property
    def seller_id(self) -> str:
        if self.sale is not None:
            return self.sale.seller_id
        assert self.message is not None and self.message.seller_id is not None
        return self.message.seller_id

    def to_bytes(self) -> bytes:
        if self.sale is not None:
            return orjson.dumps({"sale": asdict(self.sale)})
        assert self.message is not None
        return b'{"message":' + self.message.to_bytes() + b"}"

    @classmethod
    def from_bytes(cls, raw: bytes | None) -> SellerRecord:
        data = json_object(raw, "seller record")
        try:
            if "sale" in data:
                sale = data["sale"]
                return cls(sale=SellerSale(**{**sale, "items": tuple(sale["items"])}))
            message = SendCommand.from_bytes(orjson.dumps(data["message"]))
        except (KeyError, TypeError) as exc:
            raise InvalidMessage("bad_field", str(exc)[:200]) from exc
        if not message.seller_id:
            raise InvalidMessage("missing_field", "message.seller_id")
        return cls(message=message)


@dataclass(frozen=True, slots=True)
class SellerState:
    """A value of the ``seller-state`` table, keyed by seller id; never mutated."""

    seller_id: str
    partition: int
    profile: SellerProfile | None = None
    #: orders with this seller's items, history included
    sales: int = 0
    recent_orders: tuple[str, ...] = ()
    #: messages waiting for the seller's contact (oldest first)
    held: tuple[SendCommand, ...] = field(default_factory=tuple)

    @property
    def email(self) -> str | None:
        return self.profile.email if self.profile else None

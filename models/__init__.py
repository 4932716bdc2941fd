"""Records that cross topics, and the per-customer state kept in tables."""

from nudge.models.commands import DeadLetter, DeliveryEvent, SendCommand
from nudge.models.events import (
    CLICK_TYPES,
    ORDER_TYPES,
    ClickEvent,
    Consent,
    CustomerEvent,
    OrderEvent,
    OrderItem,
    Product,
)
from nudge.models.message import Message, Recommendations
from nudge.models.state import CartLine, CustomerState, FlowMark, Profile, Run, Seen

__all__ = [
    "CLICK_TYPES",
    "ORDER_TYPES",
    "CartLine",
    "ClickEvent",
    "Consent",
    "CustomerEvent",
    "CustomerState",
    "DeadLetter",
    "DeliveryEvent",
    "FlowMark",
    "Message",
    "OrderEvent",
    "OrderItem",
    "Product",
    "Profile",
    "Recommendations",
    "Run",
    "Seen",
    "SendCommand",
]

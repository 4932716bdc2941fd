"""Records that cross topics, and the per-customer state kept in tables."""

from models.commands import DeadLetter, DeliveryEvent, SendCommand
from models.events import (
    CLICK_TYPES,
    ORDER_TYPES,
    ClickEvent,
    Consent,
    CustomerEvent,
    OrderEvent,
    OrderItem,
    Product,
)
from models.state import CartLine, CustomerState, Pending, Profile, Seen
from models.triggers import FollowUp, Message, Recommendations, TriggerDef, TriggerSet

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
    "FollowUp",
    "Message",
    "OrderEvent",
    "OrderItem",
    "Pending",
    "Product",
    "Profile",
    "Recommendations",
    "Seen",
    "SendCommand",
    "TriggerDef",
    "TriggerSet",
]

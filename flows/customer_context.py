"""What every message's context holds about the customer, whatever its trigger."""

from __future__ import annotations

from nudge.models.message import MessageContext
from nudge.models.state import CustomerState


def base_context(state: CustomerState) -> MessageContext:
    """What every message knows of the customer: the profile; what the recommender
    personalises from (viewed, then carted products, oldest first); what it must not
    offer again (the latest products bought)."""
    viewed = [seen.value for seen in reversed(state.views)]
    carted = [line.product_id for line in state.cart if line.product_id not in viewed]
    return MessageContext(
        customer=state.profile.as_context(state.customer_id),
        history=(*viewed, *carted),
        bought=tuple(seen.value for seen in state.bought),
    )

"""Customer upserts: a field that is absent keeps its old value."""

from __future__ import annotations

from models.events import CustomerEvent
from models.state import CustomerState, Profile


def apply_customer(state: CustomerState, event: CustomerEvent) -> CustomerState:
    old = state.profile
    consent = old.consent
    if event.consent:
        consent = {**old.consent, **{k: v for k, v in event.consent.items() if v is not None}}
    attributes = old.attributes
    if event.attributes:
        attributes = {**old.attributes, **event.attributes}
    profile = Profile(
        email=event.email if event.email is not None else old.email,
        phone=event.phone if event.phone is not None else old.phone,
        first_name=event.first_name if event.first_name is not None else old.first_name,
        last_name=event.last_name if event.last_name is not None else old.last_name,
        timezone=event.timezone if event.timezone is not None else old.timezone,
        consent=consent,
        attributes=attributes,
    )
    if profile == old:
        return state
    return state.evolve(profile=profile)

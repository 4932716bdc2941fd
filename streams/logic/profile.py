"""Customer upserts: a field that is absent keeps its old value.

Consent is the exception to "the latest upsert wins": an opt-out is never undone by an
ordinary upsert. A storefront re-sending a stale profile, or ``nudge import customers``
with last month's export, must not re-subscribe someone who clicked unsubscribe. A
re-subscription counts only with evidence newer than the opt-out: ``consent_ts`` and
``consent_source`` on the record (a double opt-in confirmation carries both).
"""

from __future__ import annotations

from nudge.models.events import CustomerEvent
from nudge.models.state import CustomerState, Profile

OPTED_OUT = "unsubscribed"


def apply_customer(state: CustomerState, event: CustomerEvent) -> CustomerState:
    old = state.profile
    consent, consent_at = old.consent, old.consent_at
    if event.consent:
        consent, consent_at = _merge_consent(old, event)
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
        tags=old.tags,
        consent_at=consent_at,
    )
    if profile == old:
        return state
    return state.evolve(profile=profile)


def resubscription_ignored(
    before: CustomerState, after: CustomerState, event: CustomerEvent
) -> bool:
    """The upsert asked to undo an opt-out without evidence, and was not followed."""
    asked = event.consent or {}
    return any(
        value not in (None, OPTED_OUT)
        and before.profile.consent.get(channel) == OPTED_OUT
        and after.profile.consent.get(channel) == OPTED_OUT
        for channel, value in asked.items()
    )


def _merge_consent(old: Profile, event: CustomerEvent) -> tuple[dict[str, str], dict[str, int]]:
    consent = dict(old.consent)
    consent_at = dict(old.consent_at)
    evidence_ms = event.consent_ts if event.consent_source else None
    for channel, value in (event.consent or {}).items():
        if value is None or value == consent.get(channel):
            continue
        if consent.get(channel) == OPTED_OUT and not (
            evidence_ms is not None and evidence_ms > consent_at.get(channel, 0)
        ):
            continue  # an opt-out stands until newer, explicit evidence undoes it
        consent[channel] = value
        consent_at[channel] = evidence_ms if evidence_ms is not None else event.ts
    return consent, consent_at

"""Customer upserts: a field that is absent keeps its old value.

Consent is the exception to "the latest upsert wins": an opt-out is never undone by an
ordinary upsert. A storefront re-sending a stale profile, or ``nudge import customers``
with last month's export, must not re-subscribe someone who clicked unsubscribe. A
re-subscription counts only with evidence newer than the opt-out: ``consent_ts`` and
``consent_source`` on the record (a double opt-in confirmation carries both).

A hard bounce (``consent_source="bounced"``, published by ``nudge inbound`` and the
delivery worker) opts email out for the ADDRESS that bounced, which the record names
in ``email``: the bounce of an address the customer has since replaced changes
nothing, and a new address given later restores the email consent from before the
bounce. Any other email consent decision (an opt-out of the person's own, a confirmed
re-subscription) takes the place of the bounce's.
"""

from __future__ import annotations

from nudge.models.events import CustomerEvent
from nudge.models.state import CustomerState, Profile

OPTED_OUT = "unsubscribed"
BOUNCED = "bounced"


def apply_customer(state: CustomerState, event: CustomerEvent) -> CustomerState:
    old = state.profile
    if _stale_bounce(old, event):
        return state
    consent, consent_at = old.consent, old.consent_at
    if event.consent:
        consent, consent_at = _merge_consent(old, event)
    email = event.email if event.email is not None else old.email
    bounced, before = _bounce_mark(old, event, consent)
    if bounced is not None and email is not None and email.lower() != bounced.lower():
        # A new address starts clean: the opt-out was the old address's bounce.
        consent, consent_at = dict(consent), {**consent_at, "email": event.ts}
        if before is None:
            consent.pop("email", None)
        else:
            consent["email"] = before
        bounced = before = None
    attributes = old.attributes
    if event.attributes:
        attributes = {**old.attributes, **event.attributes}
    profile = Profile(
        email=email,
        phone=event.phone if event.phone is not None else old.phone,
        first_name=event.first_name if event.first_name is not None else old.first_name,
        last_name=event.last_name if event.last_name is not None else old.last_name,
        timezone=event.timezone if event.timezone is not None else old.timezone,
        consent=consent,
        attributes=attributes,
        tags=old.tags,
        consent_at=consent_at,
        bounced_email=bounced,
        consent_before_bounce=before,
    )
    if profile == old:
        return state
    return state.evolve(profile=profile)


def _stale_bounce(old: Profile, event: CustomerEvent) -> bool:
    """The bounce of an address that is no longer the customer's."""
    return (
        event.consent_source == BOUNCED
        and event.email is not None
        and old.email is not None
        and event.email.lower() != old.email.lower()
    )


def _bounce_mark(
    old: Profile, event: CustomerEvent, consent: dict[str, str]
) -> tuple[str | None, str | None]:
    """(bounced address, email consent before the bounce) after this upsert."""
    asked = (event.consent or {}).get("email")
    if event.consent_source == BOUNCED and asked == OPTED_OUT:
        if old.bounced_email is not None:
            return old.bounced_email, old.consent_before_bounce  # bounced again
        return event.email or old.email, old.consent.get("email")
    if old.bounced_email is not None and (
        asked == OPTED_OUT or (asked is not None and consent.get("email") != OPTED_OUT)
    ):
        return None, None  # the person's own decision now stands in its place
    return old.bounced_email, old.consent_before_bounce


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

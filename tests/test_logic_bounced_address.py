"""A hard bounce opts out the address that bounced, not the person behind it."""

from __future__ import annotations

from nudge.delivery.sent_messages import SentMessage
from nudge.delivery.suppression import consent_change
from nudge.models.events import CustomerEvent
from nudge.models.state import CustomerState, Profile
from nudge.streams.logic.profile import apply_customer
from nudge.streams.state_codec import state_from_bytes, state_to_bytes
from tests.test_logic_support import CUSTOMER, customer

NOW = 1_700_000_000_000


def subscribed(email: str = "ann@old.example") -> CustomerState:
    profile = Profile(email=email, consent={"email": "subscribed"}, consent_at={"email": 1})
    return CustomerState(CUSTOMER, profile=profile)


def bounce_of(address: str, ts: int = NOW) -> CustomerEvent:
    """The upsert ``nudge inbound`` publishes for a hard bounce of ``address``."""
    sent = SentMessage("cmd-1", CUSTOMER, "cart-1h", "abandoned_cart", "email", address, 0)
    return consent_change(sent, "bounced", ts)


def test_a_bounce_opts_the_address_out_and_remembers_it() -> None:
    state = apply_customer(subscribed(), bounce_of("ann@old.example"))
    profile = state.profile
    assert profile.consent["email"] == "unsubscribed"
    assert (profile.bounced_email, profile.consent_before_bounce) == (
        "ann@old.example",
        "subscribed",
    )
    assert profile.email == "ann@old.example"


def test_a_new_address_restores_the_consent_from_before_the_bounce() -> None:
    bounced = apply_customer(subscribed(), bounce_of("ann@old.example"))
    moved = apply_customer(bounced, customer(ts=NOW + 1, email="ann@new.example"))
    assert moved.profile.email == "ann@new.example"
    assert moved.profile.consent["email"] == "subscribed"
    assert moved.profile.bounced_email is None


def test_the_same_address_again_keeps_the_opt_out() -> None:
    bounced = apply_customer(subscribed(), bounce_of("ann@old.example"))
    again = apply_customer(bounced, customer(ts=NOW + 1, email="Ann@Old.Example"))
    assert again.profile.consent["email"] == "unsubscribed"
    assert again.profile.bounced_email == "ann@old.example"


def test_an_opt_out_of_the_persons_own_outlives_an_address_change() -> None:
    bounced = apply_customer(subscribed(), bounce_of("ann@old.example"))
    own = apply_customer(bounced, customer(ts=NOW + 1, consent={"email": "unsubscribed"}))
    assert own.profile.bounced_email is None
    moved = apply_customer(own, customer(ts=NOW + 2, email="ann@new.example"))
    assert moved.profile.consent["email"] == "unsubscribed"


def test_a_stale_resubscription_does_not_clear_the_bounce() -> None:
    bounced = apply_customer(subscribed(), bounce_of("ann@old.example"))
    stale = apply_customer(bounced, customer(ts=NOW + 1, consent={"email": "subscribed"}))
    assert stale.profile.consent["email"] == "unsubscribed"
    assert stale.profile.bounced_email == "ann@old.example"


def test_the_bounce_of_an_address_no_longer_the_customers_changes_nothing() -> None:
    state = subscribed("ann@new.example")
    assert apply_customer(state, bounce_of("ann@old.example")) is state


def test_a_never_consented_address_restores_to_no_consent() -> None:
    state = CustomerState(CUSTOMER, profile=Profile(email="ann@old.example"))
    bounced = apply_customer(state, bounce_of("ann@old.example"))
    assert bounced.profile.consent == {"email": "unsubscribed"}
    moved = apply_customer(bounced, customer(ts=NOW + 1, email="ann@new.example"))
    assert "email" not in moved.profile.consent


def test_the_bounce_mark_survives_the_changelog() -> None:
    bounced = apply_customer(subscribed(), bounce_of("ann@old.example"))
    assert state_from_bytes(state_to_bytes(bounced)).profile == bounced.profile

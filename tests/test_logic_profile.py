"""Customer upserts: partial updates, merged consent and attributes, identity on no-op."""

from __future__ import annotations

from typing import Any

from nudge.flows.plan import FlowSet
from nudge.models.events import CustomerEvent
from nudge.models.state import CustomerState, Profile
from nudge.streams.logic import apply_event
from nudge.streams.logic.profile import apply_customer, resubscription_ignored
from tests.test_logic_support import CUSTOMER, Sim, customer, make_trigger

NOW = 1_700_000_000_000
NO_TRIGGERS = FlowSet()


def upsert(state: CustomerState, **kw) -> CustomerState:
    return apply_event(state, customer(ts=NOW, **kw), NO_TRIGGERS, NOW)


def full() -> CustomerState:
    profile = Profile(
        email="a@x.com",
        phone="+100",
        first_name="Ann",
        last_name="Lee",
        timezone="Europe/Paris",
        consent={"email": "subscribed", "sms": "pending"},
        attributes={"tier": "gold", "age": 40},
    )
    return CustomerState(CUSTOMER, profile=profile, created_ms=1)  # seen before


def test_first_upsert_sets_fields() -> None:
    state = upsert(CustomerState(CUSTOMER), email="a@x.com", first_name="Ann")
    assert state.profile.email == "a@x.com"
    assert state.profile.first_name == "Ann"
    assert state.profile.phone is None


def test_absent_fields_are_kept() -> None:
    state = upsert(full(), first_name="Anne")
    assert state.profile == Profile(
        email="a@x.com",
        phone="+100",
        first_name="Anne",
        last_name="Lee",
        timezone="Europe/Paris",
        consent={"email": "subscribed", "sms": "pending"},
        attributes={"tier": "gold", "age": 40},
    )


def test_consent_is_merged_per_channel() -> None:
    state = upsert(full(), consent={"email": "unsubscribed"})
    assert state.profile.consent == {"email": "unsubscribed", "sms": "pending"}


def test_consent_none_values_are_ignored() -> None:
    before = full()
    assert upsert(before, consent={"email": None}) is before


def test_attributes_are_merged() -> None:
    state = upsert(full(), attributes={"tier": "platinum", "city": "Lyon"})
    assert state.profile.attributes == {"tier": "platinum", "age": 40, "city": "Lyon"}


def test_merge_does_not_mutate_previous_profile() -> None:
    before = full()
    upsert(before, consent={"email": "unsubscribed"}, attributes={"x": 1})
    assert before.profile.consent == {"email": "subscribed", "sms": "pending"}
    assert "x" not in before.profile.attributes


def test_empty_upsert_returns_same_state() -> None:
    before = full()
    assert upsert(before) is before
    assert upsert(before, consent={}, attributes={}) is before


def test_identical_values_return_same_state() -> None:
    before = full()
    assert upsert(before, email="a@x.com", attributes={"tier": "gold"}) is before


def test_upsert_keeps_cart_and_timers() -> None:
    sim = Sim(make_trigger("abandoned_cart", delay=60))
    sim.click("cart_add", product_id="p1")
    pending, cart = sim.state.runs, sim.state.cart
    sim.apply(customer(first_name="Bo"))
    assert sim.state.runs == pending
    assert sim.state.cart == cart
    [cmd] = sim.tick(60)
    assert cmd.context.customer["first_name"] == "Bo"


def test_upsert_is_not_activity() -> None:
    sim = Sim(make_trigger("abandoned_cart", delay=60))
    sim.click("cart_add", product_id="p1")
    sim.clock.advance(30)
    sim.apply(customer(ts=sim.now, first_name="Bo"))
    assert len(sim.tick(30)) == 1


def test_email_added_later_is_used_at_send_time() -> None:
    sim = Sim(make_trigger("abandoned_search", delay=60), state=CustomerState(CUSTOMER))
    sim.click("search", query="hat")
    sim.apply(customer(email="late@x.com"))
    [cmd] = sim.tick(60)
    assert cmd.recipient == "late@x.com"


def test_resubscribe_after_unsubscribe_needs_evidence() -> None:
    state = upsert(full(), consent={"email": "unsubscribed"})
    assert upsert(state, consent={"email": "subscribed"}).profile.consent["email"] == (
        "unsubscribed"
    )
    state = upsert(
        state, consent={"email": "subscribed"}, consent_ts=NOW + 1, consent_source="support"
    )
    assert state.profile.consent["email"] == "subscribed"


def opted_out(at_ms: int = 1_000) -> CustomerState:
    state = upsert(CustomerState(CUSTOMER), email="a@x.com", consent={"email": "subscribed"})
    return apply_customer(
        state,
        CustomerEvent(event_id="out", customer_id=CUSTOMER, ts=at_ms,
                      consent={"email": "unsubscribed"}),
    )  # fmt: skip


def resubscribe(state: CustomerState, **evidence: Any) -> CustomerState:
    event = CustomerEvent(
        event_id="again", customer_id=CUSTOMER, ts=5_000, consent={"email": "subscribed"},
        **evidence,
    )  # fmt: skip
    after = apply_customer(state, event)
    assert resubscription_ignored(state, after, event) == (
        after.profile.consent.get("email") == "unsubscribed"
    )
    return after


def test_an_ordinary_upsert_never_undoes_an_opt_out() -> None:
    state = opted_out()
    assert state.profile.consent_at["email"] == 1_000
    for evidence in ({}, {"consent_ts": 9_000}, {"consent_source": "import"}):
        assert resubscribe(state, **evidence).profile.consent["email"] == "unsubscribed"
    pending = upsert(state, consent={"email": "pending"})
    assert pending.profile.consent["email"] == "unsubscribed", "pending is no way back either"


def test_newer_explicit_evidence_undoes_an_opt_out_older_evidence_does_not() -> None:
    state = opted_out(at_ms=1_000)
    stale = resubscribe(state, consent_ts=500, consent_source="checkout")
    assert stale.profile.consent["email"] == "unsubscribed"
    fresh = resubscribe(state, consent_ts=2_000, consent_source="double_opt_in")
    assert fresh.profile.consent["email"] == "subscribed"
    assert fresh.profile.consent_at["email"] == 2_000


def test_an_opt_out_always_applies() -> None:
    state = upsert(CustomerState(CUSTOMER), consent={"email": "subscribed"})
    state = upsert(state, consent={"email": "unsubscribed"})
    assert state.profile.consent["email"] == "unsubscribed"

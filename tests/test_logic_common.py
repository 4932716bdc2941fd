"""Rules every kind shares: once per episode, stable ids, timing, config, consent."""

from __future__ import annotations

import pytest

from nudge.streams.logic import STALE_AFTER_MS, apply_event, command_id, fire_due
from tests.test_logic_support import (
    CUSTOMER,
    KINDS,
    OPEN,
    Sim,
    click,
    customer,
    make_trigger,
    new_state,
)

pytestmark = pytest.mark.parametrize("kind", KINDS)


def sim_for(kind: str, **kw) -> Sim:
    return Sim(make_trigger(kind, delay=60, **kw))


def test_nothing_before_due_then_fires_exactly_at_due(kind: str) -> None:
    sim = sim_for(kind)
    sim.open(kind)
    due = sim.now + 60_000
    assert sim.state.next_due_ms() == due
    assert sim.tick(59.999) == []
    [cmd] = sim.tick(0.001)
    assert cmd.due_ms == due == sim.now
    assert cmd.created_ms == sim.now
    assert cmd.id == command_id(kind, CUSTOMER, due - 60_000, 0)


def test_fires_at_most_once_per_episode(kind: str) -> None:
    sim = sim_for(kind)
    sim.open(kind)
    sim.tick(60)
    sim.fire()
    sim.tick(1)
    sim.tick(3600)
    assert len(sim.sent) == 1


def test_late_fire_still_sends_once(kind: str) -> None:
    sim = sim_for(kind)
    sim.open(kind)
    sim.tick(3600)
    sim.tick(3600)
    assert len(sim.sent) == 1
    assert sim.sent[0].due_ms == sim.now - 3600_000 - 3540_000


def test_new_activity_after_send_is_new_episode(kind: str) -> None:
    sim = sim_for(kind)
    sim.open(kind)
    [first] = sim.tick(60)
    sim.clock.advance(5)
    sim.open(kind)
    [second] = sim.tick(60)
    assert first.id != second.id
    assert second.id == command_id(kind, CUSTOMER, sim.now - 60_000, 0)


def test_renewal_before_due_replaces_the_episode(kind: str) -> None:
    sim = sim_for(kind)
    sim.open(kind)
    sim.clock.advance(30)
    sim.open(kind)
    assert len(sim.state.runs) == 1
    assert sim.tick(30) == []
    assert len(sim.tick(30)) == 1


def test_ids_are_deterministic(kind: str) -> None:
    runs = []
    for _ in range(2):
        sim = sim_for(kind)
        sim.open(kind, offset_s=-5)
        sim.open(kind)
        sim.tick(60)
        runs.append(sim.sent)
    assert [c.id for c in runs[0]] == [c.id for c in runs[1]]
    assert runs[0] == runs[1]


def test_recomputing_the_same_due_state_gives_same_id(kind: str) -> None:
    sim = sim_for(kind)
    sim.open(kind)
    sim.clock.advance(60)
    _, a = fire_due(sim.state, sim.triggers, sim.now)
    _, b = fire_due(sim.state, sim.triggers, sim.now + 10_000)
    assert len(a) == len(b) == 1
    assert a[0].id == b[0].id


@pytest.mark.parametrize("how", ["disabled", "removed"])
def test_disabled_or_removed_trigger_drops_timer(kind: str, how: str) -> None:
    sim = sim_for(kind)
    sim.open(kind)
    assert sim.state.runs
    if how == "disabled":
        sim.reconfigure(make_trigger(kind, delay=60, enabled=False))
    else:
        sim.reconfigure()
    assert sim.tick(60) == []
    assert sim.state.runs == ()
    assert sim.tick(3600) == []


def test_disabled_trigger_arms_nothing(kind: str) -> None:
    sim = sim_for(kind, enabled=False)
    sim.open(kind)
    assert sim.state.runs == ()


def test_no_command_to_an_unsubscribed_customer(kind: str) -> None:
    sim = Sim(
        make_trigger(kind, delay=60, follow_up=60),
        state=new_state(consent={"email": "unsubscribed"}),
    )
    sim.open(kind)
    assert sim.tick(60) == []
    assert sim.tick(3600) == []
    assert sim.state.runs == ()


def test_a_due_timer_waits_for_an_address_that_arrives_late(kind: str) -> None:
    """After a crash both topics are replayed, and a cart can be applied before the
    sign-up that preceded it: the message must still go, once."""
    sim = Sim(make_trigger(kind, delay=60), state=new_state(email=None))
    sim.open(kind)
    assert sim.tick(60) == [] and sim.tick(3600) == []
    assert len(sim.state.runs) == 1, "kept, waiting for an address"
    sim.apply(customer(email="late@example.com"))
    sent = sim.fire()
    assert [c.recipient for c in sent] == ["late@example.com"]
    assert sim.tick(3600) == []


def test_a_timer_waits_for_an_address_only_while_its_episode_is_fresh(kind: str) -> None:
    sim = Sim(make_trigger(kind, delay=60), state=new_state(email=None))
    sim.open(kind)
    for _ in range(30):
        sim.tick(3600)
    assert sim.state.runs == (), "dropped once stale"
    sim.apply(customer(email="late@example.com"))
    assert sim.fire() == []


def test_unsubscribe_after_arming_prevents_send(kind: str) -> None:
    sim = sim_for(kind)
    sim.open(kind)
    sim.apply(customer(consent={"email": "unsubscribed"}))
    assert sim.tick(60) == []


def test_a_subscribed_customer_is_mailed(kind: str) -> None:
    sim = Sim(make_trigger(kind, delay=60), state=new_state(consent={"email": "subscribed"}))
    sim.open(kind)
    assert len(sim.tick(60)) == 1


def test_no_marketing_message_to_a_pending_address(kind: str) -> None:
    """A double opt-in not yet confirmed is no consent to marketing: the message waits
    for the confirmation, and is dropped once stale."""
    sim = Sim(make_trigger(kind, delay=60), state=new_state(consent={"email": "pending"}))
    sim.open(kind)
    assert sim.tick(60) == [] and len(sim.state.runs) == 1
    for _ in range(30):
        assert sim.tick(3600) == []
    assert sim.state.runs == ()


def test_a_message_waiting_for_a_double_opt_in_goes_when_it_is_confirmed(kind: str) -> None:
    sim = Sim(make_trigger(kind, delay=60), state=new_state(consent={"email": "pending"}))
    sim.open(kind)
    assert sim.tick(600) == []
    sim.apply(customer(consent={"email": "subscribed"}))
    assert len(sim.fire()) == 1


def test_out_of_order_older_event_does_not_move_episode_back(kind: str) -> None:
    sim = sim_for(kind)
    sim.open(kind)
    pending = sim.state.run_of(kind)
    sim.open(kind, offset_s=-30)  # older, delivered late
    assert sim.state.run_of(kind).episode == pending.episode
    assert sim.state.run_of(kind).due_ms == pending.due_ms
    assert sim.tick(59) == []
    assert len(sim.tick(1)) == 1


def test_future_event_counts_from_now(kind: str) -> None:
    sim = sim_for(kind)
    sim.open(kind, offset_s=3600)  # storefront clock one hour ahead
    assert sim.state.next_due_ms() == sim.now + 60_000
    assert len(sim.tick(60)) == 1


def test_event_in_the_past_counts_from_its_time(kind: str) -> None:
    sim = sim_for(kind)
    sim.open(kind, offset_s=-50)
    assert sim.tick(9) == []
    assert len(sim.tick(1)) == 1


def test_stale_timer_dropped_without_command(kind: str) -> None:
    sim = Sim(make_trigger(kind, delay=60, follow_up=3600))
    sim.open(kind)
    sim.clock.advance(60 + STALE_AFTER_MS / 1000 + 1)
    assert sim.fire() == []
    assert sim.state.runs == ()
    assert sim.tick(7 * 24 * 3600) == []


def test_timer_exactly_stale_limit_late_still_sends(kind: str) -> None:
    sim = sim_for(kind)
    sim.open(kind)
    sim.clock.advance(60 + STALE_AFTER_MS / 1000)
    assert len(sim.fire()) == 1


def test_order_status_changes_nothing(kind: str) -> None:
    sim = sim_for(kind)
    sim.open(kind)
    before = sim.state
    sim.clock.advance(5)
    assert sim.order("p1", "p2", type="order_status", status="delivered") is before


def test_redelivered_event_returns_same_state(kind: str) -> None:
    sim = sim_for(kind)
    event = click(**OPEN[kind], ts=sim.now)
    once = sim.apply(event)
    assert sim.apply(event) is once


def test_apply_event_does_not_mutate_input(kind: str) -> None:
    state = new_state()
    snapshot = repr(state)
    triggers = sim_for(kind).triggers
    event = click(**OPEN[kind], ts=1_700_000_000_000)
    assert apply_event(state, event, triggers, 1_700_000_000_000) is not state
    assert repr(state) == snapshot


def test_nothing_pending_fire_due_returns_same_state(kind: str) -> None:
    sim = sim_for(kind)
    before = sim.state
    state, commands = fire_due(before, sim.triggers, sim.now)
    assert state is before and commands == []
    sim.open(kind)
    armed = sim.state
    state, commands = fire_due(armed, sim.triggers, sim.now + 59_999)
    assert state is armed and commands == []

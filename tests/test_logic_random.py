"""Property-style: random event sequences, several seeds, checked invariants.

Invariants: no two commands share an id however often ``fire_due`` is called; no
command fires before its ``due_ms``; replaying ``fire_due`` from an earlier state
yields the same ids; ``fire_due`` with nothing due returns the same object.
"""

from __future__ import annotations

import random

import pytest

from nudge.models.commands import SendCommand
from nudge.models.state import CustomerState
from nudge.streams.logic import fire_due
from tests.test_logic_support import KINDS, Sim, click, customer, make_trigger, order

PRODUCTS = ("p1", "p2", "p3", "p4")
CATEGORIES = {"p1": ["cat1"], "p2": ["cat2"], "p3": ["cat1"], "p4": ["cat3"]}


def random_event(rng: random.Random, now: int):
    # Mostly near now, sometimes late (out of order) or from a clock running ahead.
    ts = now + rng.choice([0, 0, 0, -rng.randint(1, 300_000), rng.randint(1, 60_000)])
    roll = rng.random()
    pid = rng.choice(PRODUCTS)
    if roll < 0.25:
        return click("product_view", ts, product_id=pid, category_id=rng.choice([None, "cat1"]))
    if roll < 0.35:
        return click("category_view", ts, category_id=rng.choice(["cat1", "cat2", "cat3"]))
    if roll < 0.45:
        return click("search", ts, query=rng.choice(["hat", "red shoes"]))
    if roll < 0.65:
        return click("cart_add", ts, product_id=pid, quantity=rng.randint(1, 3), price=5.0)
    if roll < 0.75:
        return click("cart_remove", ts, product_id=pid, quantity=rng.choice([None, 1]))
    if roll < 0.85:
        kind = rng.choice(["order_placed", "order_placed", "order_status"])
        return order(
            ts, *rng.sample(PRODUCTS, rng.randint(1, 2)), type=kind, historical=rng.random() < 0.1
        )
    if roll < 0.95:
        return customer(ts, consent={"email": rng.choice(["subscribed", "unsubscribed"])})
    return customer(ts, first_name=rng.choice(["Ann", "Bo"]))


def triggers():
    defs = [make_trigger(kind, delay=60 * (i + 1)) for i, kind in enumerate(KINDS)]
    defs.append(make_trigger("abandoned_cart", delay=90, follow_up=300, id="cart-follow"))
    return defs


def run(seed: int, steps: int = 400) -> tuple[Sim, list[tuple[int, SendCommand]]]:
    rng = random.Random(seed)
    sim = Sim(*triggers(), categories=CATEGORIES)
    fired: list[tuple[int, SendCommand]] = []
    for _ in range(steps):
        action = rng.random()
        if action < 0.6:
            before = sim.state
            after = sim.apply(random_event(rng, sim.now))
            assert isinstance(after, CustomerState)
            if after is not before:
                assert after != before, "a new state object for an unchanged value"
        else:
            sim.clock.advance(rng.choice([1, 10, 30, 60, 120, 600]))
        for _ in range(rng.randint(1, 3)):  # repeated fire_due calls at the same time
            for cmd in sim.fire():
                fired.append((sim.now, cmd))
    return sim, fired


@pytest.mark.parametrize("seed", range(25))
def test_random_sequences_keep_invariants(seed: int) -> None:
    sim, fired = run(seed)
    ids = [cmd.id for _, cmd in fired]
    assert len(ids) == len(set(ids)), "a command id was produced twice"
    for fired_at, cmd in fired:
        assert cmd.due_ms <= fired_at == cmd.created_ms
        assert cmd.recipient
        assert cmd.step in (0, 1)
        assert cmd.step == 0 or cmd.trigger_id == "cart-follow"
        if cmd.kind == "abandoned_cart":
            assert cmd.context.items
    sim.fire()  # a follow-up rescheduled into the past fires on the next call
    assert sim.fire() == []
    for p in sim.state.runs:
        assert p.due_ms > sim.now  # everything due was fired or dropped


@pytest.mark.parametrize("seed", range(25))
def test_random_runs_are_deterministic(seed: int) -> None:
    _, first = run(seed)
    _, second = run(seed)
    assert [c.id for _, c in first] == [c.id for _, c in second]


@pytest.mark.parametrize("seed", range(10))
def test_at_most_one_pending_per_trigger(seed: int) -> None:
    rng = random.Random(seed)
    sim = Sim(*triggers(), categories=CATEGORIES)
    for _ in range(300):
        sim.apply(random_event(rng, sim.now))
        sim.clock.advance(rng.choice([0, 5, 50]))
        sim.fire()
        trigger_ids = [p.flow_id for p in sim.state.runs]
        assert len(trigger_ids) == len(set(trigger_ids))


@pytest.mark.parametrize("seed", range(10))
def test_replay_from_any_earlier_state_gives_same_ids(seed: int) -> None:
    rng = random.Random(seed)
    sim = Sim(*triggers(), categories=CATEGORIES)
    for _ in range(200):
        sim.apply(random_event(rng, sim.now))
        sim.clock.advance(rng.choice([0, 30, 120]))
        saved = sim.state
        commands = sim.fire()
        replay_state, replay = fire_due(saved, sim.triggers, sim.now)
        assert [c.id for c in replay] == [c.id for c in commands]
        assert replay_state == sim.state

"""The flow engine on general flows: triggers, waits, branches, exits and the rules
every flow follows (reentry, smart sending, consent, pinned versions). Pure: a
``Sim`` customer and a manual clock, as the abandonment kinds' tests use."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from nudge.flows.plan import FlowPlan, FlowSet
from nudge.flows.steps.split import CONTROL, SplitSpec, assign_variant
from nudge.flows.steps.wait import Until, next_time_of_day
from tests.test_logic_support import CUSTOMER, EMAIL, Sim, customer, new_state

DAY = 86_400_000


def flow(**fields: Any) -> FlowPlan:
    data: dict[str, Any] = {"id": "f", "trigger": {"event": "customer_created"}}
    data.update(fields)
    return FlowPlan.parse(data)


WELCOME = {
    "id": "welcome",
    "trigger": {"event": "customer_created"},
    "exit_when": [{"event": "order_placed"}],
    "filter": "customer.consent.email == 'subscribed'",
    "steps": [
        {"send": {"subject": "Welcome, {{ customer.first_name or 'friend' }}"}},
        {"wait_for": {"event": "order_placed", "timeout": "P7D", "on_event": "exit"}},
        {"send": {"subject": "10% off your first order"}},
    ],
}


def signup(sim: Sim, **profile: Any) -> None:
    profile.setdefault("email", EMAIL)
    profile.setdefault("consent", {"email": "subscribed"})
    sim.apply(customer(ts=sim.now, **profile))


def new_customer_sim(*plans: FlowPlan, smart_sending_ms: int = 0) -> Sim:
    return Sim(*plans, state=new_state(email=None), smart_sending_ms=smart_sending_ms)


def test_welcome_sends_at_once_then_the_reminder_after_a_week_without_an_order() -> None:
    sim = new_customer_sim(FlowPlan.parse(WELCOME))
    signup(sim, first_name="Ann")
    [welcome] = sim.fire()
    assert welcome.trigger_id == "welcome" and welcome.step == 0 and welcome.kind == "flow"
    assert welcome.message.subject == "Welcome, {{ customer.first_name or 'friend' }}"
    assert welcome.context.event["customer_id"] == CUSTOMER
    assert sim.tick(7 * 86_400 - 1) == []
    [reminder] = sim.tick(1)
    assert reminder.step == 1 and reminder.id == f"welcome:{CUSTOMER}:{welcome.due_ms}:1"
    assert sim.state.runs == ()


def test_an_order_ends_the_welcome_run_before_its_reminder() -> None:
    sim = new_customer_sim(FlowPlan.parse(WELCOME))
    signup(sim)
    assert len(sim.fire()) == 1
    sim.clock.advance(3600)
    sim.order("p1")
    assert sim.state.runs == ()
    assert sim.tick(8 * 86_400) == []


def test_customer_created_fires_once_and_never_for_history() -> None:
    sim = new_customer_sim(FlowPlan.parse(WELCOME))
    signup(sim)
    signup(sim, first_name="Ann")  # a later upsert is not a creation
    assert len(sim.fire()) == 1 and len(sim.state.runs) == 1
    imported = new_customer_sim(FlowPlan.parse(WELCOME))
    imported.apply(customer(email=EMAIL, consent={"email": "subscribed"}, historical=True))
    assert imported.state.runs == () and imported.state.created_ms > 0
    imported.apply(customer(first_name="Ann"))
    assert imported.fire() == [], "an imported customer is never created again"


def test_the_filter_is_checked_before_every_send() -> None:
    sim = new_customer_sim(FlowPlan.parse(WELCOME))
    signup(sim, consent={"email": "subscribed"})
    assert len(sim.fire()) == 1
    sim.apply(customer(attributes={"x": 1}, consent={"email": "unsubscribed"}))
    assert sim.tick(8 * 86_400) == [] and sim.state.runs == ()


def test_wait_for_continue_goes_on_at_the_event() -> None:
    plan = flow(
        trigger={"event": "cart_add"},
        steps=[
            {"wait_for": {"event": "order_placed", "timeout": "P1D", "where": "event.total > 50"}},
            {"send": {"subject": "Thanks for order {{ order.order_id }}"}},
        ],
    )
    sim = Sim(plan)
    sim.click("cart_add", product_id="p1")
    sim.order("p1", total=20.0)  # not matching: still waiting
    assert sim.fire() == [] and sim.state.runs[0].waiting_for == "order_placed"
    sim.order("p1", total=80.0)
    [sent] = sim.fire()
    assert sent.due_ms == sim.now


def test_wait_for_times_out_and_goes_on() -> None:
    plan = flow(
        trigger={"event": "cart_add"},
        steps=[{"wait_for": {"event": "order_placed", "timeout": 60}}, {"send": {}}],
    )
    sim = Sim(plan)
    sim.click("cart_add", product_id="p1")
    assert sim.tick(59) == []
    assert len(sim.tick(1)) == 1


@pytest.mark.parametrize(("orders", "subject"), [(0, "first"), (2, "again")])
def test_if_takes_the_branch_its_condition_chooses(orders: int, subject: str) -> None:
    plan = flow(
        trigger={"event": "search"},
        steps=[
            {"if": {"condition": "customer.stats.orders_count > 0",
                    "then": [{"send": {"subject": "again"}}],
                    "else": [{"send": {"subject": "first"}}]}},
            {"action": {"tag": "searched"}},
        ],
    )  # fmt: skip
    sim = Sim(plan)
    for _ in range(orders):
        sim.order("p9")
    sim.click("search", query="tea")
    [sent] = sim.fire()
    assert sent.message.subject == subject
    assert sim.state.profile.tags == ("searched",), "the step after the branch ran"


def test_a_condition_that_fails_skips_its_step_and_is_noted() -> None:
    from nudge.flows.engine import fire

    plan = flow(
        trigger={"event": "search"},
        steps=[{"if": {"condition": "customer.attributes.age > 'x' + 1",
                       "then": [{"send": {"subject": "then"}}]}},
               {"send": {"subject": "after"}}],
    )  # fmt: skip
    sim = Sim(plan)
    sim.click("search", query="tea")
    fired = fire(sim.state, sim.triggers, sim.now)
    assert [c.message.subject for c in fired.commands] == ["after"]
    assert [n.reason for n in fired.notes] == ["condition_failed"]


def test_split_is_sticky_weighted_and_holds_out_control() -> None:
    spec = SplitSpec.model_validate({"variants": {"A": 3, "B": 1}, "control": 20})
    chosen = [assign_variant(f"c{i}", "f", spec) for i in range(4000)]
    assert chosen == [assign_variant(f"c{i}", "f", spec) for i in range(4000)]
    share = {v: chosen.count(v) / len(chosen) for v in ("A", "B", CONTROL)}
    assert share[CONTROL] == pytest.approx(0.2, abs=0.03)
    assert share["A"] == pytest.approx(0.6, abs=0.03) and share["B"] == pytest.approx(0.2, abs=0.03)


def test_the_variant_travels_on_the_command_and_control_gets_nothing() -> None:
    from nudge.flows.engine import fire

    plan = flow(
        trigger={"event": "search"},
        steps=[{"split": {"variants": {"A": 1, "B": 1}, "control": 30,
                          "steps": {"A": [{"send": {"subject": "a"}}],
                                    "B": [{"send": {"subject": "b"}}]}}}],
    )  # fmt: skip
    seen: dict[str, int] = {}
    for i in range(60):
        sim = Sim(plan, state=new_state().evolve(customer_id=f"c{i}"))
        sim.click("search", query="tea", customer_id=f"c{i}")
        fired = fire(sim.state, sim.triggers, sim.now)
        variant = assign_variant(f"c{i}", "f", plan.flow.steps[0].split)  # type: ignore[union-attr]
        if variant == CONTROL:
            assert fired.commands == [] and [n.reason for n in fired.notes] == ["control_group"]
        else:
            [sent] = fired.commands
            assert sent.variant == variant and sent.message.subject == variant.lower()
        seen[variant] = seen.get(variant, 0) + 1
    assert set(seen) == {"A", "B", CONTROL}


def test_action_set_and_untag_change_the_profile() -> None:
    plan = flow(
        trigger={"event": "search"},
        steps=[{"action": {"set": {"tier": "gold"}}}, {"action": {"tag": "t"}},
               {"action": {"untag": "t"}}, {"send": {}}],
    )  # fmt: skip
    sim = Sim(plan)
    sim.click("search", query="tea")
    sim.fire()
    assert sim.state.profile.attributes["tier"] == "gold" and sim.state.profile.tags == ()


@pytest.mark.parametrize(
    ("reentry", "gap_s", "runs"),
    [("once", 10, 1), ("always", 10, 2), ("PT1H", 600, 1), ("PT1H", 3601, 2)],
)
def test_reentry(reentry: str, gap_s: int, runs: int) -> None:
    plan = flow(trigger={"event": "search"}, reentry=reentry, steps=[{"send": {}}])
    sim = Sim(plan)
    sim.click("search", query="tea")
    sim.fire()
    sim.clock.advance(gap_s)
    sim.click("search", query="tea")
    sim.fire()
    assert len(sim.sent) == runs


def test_smart_sending_holds_a_second_run_not_a_runs_own_follow_up() -> None:
    plan = flow(
        trigger={"event": "search"},
        reentry="always",
        steps=[{"send": {}}, {"wait": 60}, {"send": {"subject": "follow-up"}}],
    )
    sim = Sim(plan, smart_sending_ms=3_600_000)
    sim.click("search", query="tea")
    assert len(sim.fire()) == 1
    sim.clock.advance(10)
    sim.click("search", query="coffee")  # a second run, 10 s later: held
    assert sim.fire() == []
    assert [c.message.subject for c in sim.tick(50)] == ["follow-up"]
    sim.clock.advance(3600)
    sim.click("search", query="tea")
    assert len(sim.fire()) == 1, "after the window, a new run mails again"


def test_smart_sending_can_be_switched_off_per_flow() -> None:
    plan = flow(trigger={"event": "search"}, reentry="always", smart_sending=False,
                steps=[{"send": {}}])  # fmt: skip
    sim = Sim(plan, smart_sending_ms=3_600_000)
    sim.click("search", query="tea")
    sim.clock.advance(10)
    sim.click("search", query="coffee")
    assert len(sim.fire()) == 2


def test_transactional_flows_ignore_marketing_consent_and_smart_sending() -> None:
    plan = flow(**{"class": "transactional"}, trigger={"event": "order_status"},
                reentry="always", steps=[{"send": {"subject": "{{ order.status }}"}}])  # fmt: skip
    sim = Sim(plan, state=new_state(consent={"email": "unsubscribed"}), smart_sending_ms=DAY)
    sim.order("p1", type="order_status", status="paid")
    sim.clock.advance(5)
    sim.order("p1", type="order_status", status="shipped")
    sent = sim.fire()
    assert len(sent) == 2 and not any(c.marketing for c in sent)


def test_a_run_key_makes_a_run_per_order() -> None:
    plan = flow(trigger={"event": "order_status", "key": "{{ event.order_id }}"},
                **{"class": "transactional"}, steps=[{"wait": 60}, {"send": {}}])  # fmt: skip
    sim = Sim(plan)
    sim.order("p1", type="order_status", order_id="A")
    sim.order("p2", type="order_status", order_id="B")
    assert sorted(r.key for r in sim.state.runs) == ["A", "B"]
    ids = sorted(c.id for c in sim.tick(60))
    assert ids == [f"f:{CUSTOMER}:A:{sim.now - 60_000}:0", f"f:{CUSTOMER}:B:{sim.now - 60_000}:0"]


def test_a_run_stays_on_its_version_when_the_flow_is_edited() -> None:
    v1 = flow(trigger={"event": "search"}, steps=[{"wait": 60}, {"send": {"subject": "v1"}}])
    v2 = flow(trigger={"event": "search"}, steps=[{"send": {"subject": "v2"}}])
    sim = Sim(v1)
    sim.click("search", query="tea")
    sim.triggers = FlowSet([v1]).with_plan(v2)  # edited while the run waits
    [sent] = sim.tick(60)
    assert sent.message.subject == "v1" and sent.version == v1.version


def test_a_disabled_flow_ends_its_runs() -> None:
    plan = flow(trigger={"event": "search"}, steps=[{"wait": 60}, {"send": {}}])
    sim = Sim(plan)
    sim.click("search", query="tea")
    sim.reconfigure(flow(trigger={"event": "search"}, enabled=False,
                         steps=[{"wait": 60}, {"send": {}}]))  # fmt: skip
    assert sim.tick(60) == [] and sim.state.runs == ()


def test_wait_until_a_time_of_day_in_the_customers_zone() -> None:
    # 2026-01-05 is a Monday; 09:00 UTC is 10:00 in Berlin.
    monday_8_utc = 1_767_600_000_000
    until = Until.model_validate({"until": "10:00"})
    assert next_time_of_day(monday_8_utc, until, "Europe/Berlin") == monday_8_utc + 3_600_000
    friday = Until.model_validate({"until": "10:00", "days": ["fri"]})
    assert next_time_of_day(monday_8_utc, friday, "Europe/Berlin") == (
        monday_8_utc + 4 * DAY + 3_600_000
    )
    assert next_time_of_day(monday_8_utc, until, "No/Such_Zone") == monday_8_utc + 2 * 3_600_000


def test_flows_this_version_cannot_run_are_refused_when_applied() -> None:
    from nudge.flows import DefinitionError

    with pytest.raises(DefinitionError, match=r"steps\[0\]\.send\.to: messages to sellers"):
        flow(trigger={"event": "order_placed"}, steps=[{"send": {"to": "seller"}}])


def test_a_send_step_asks_for_its_promo_code_on_the_command() -> None:
    plan = flow(steps=[{"send": {"promo": {"pool": "WELCOME10", "ttl": "P14D"}}}])
    sim = new_customer_sim(plan)
    signup(sim)
    [sent] = sim.fire()
    assert sent.promo is not None and (sent.promo.pool, sent.promo.ttl_ms) == (
        "WELCOME10",
        14 * DAY,
    )


def test_a_pending_sign_up_gets_the_confirmation_and_its_welcome_only_once_confirmed() -> None:
    import yaml

    from nudge.models.events import CustomerEvent
    from tests.test_flows_e2e import EXAMPLES

    welcome = yaml.safe_load((EXAMPLES / "welcome.yaml").read_text())
    double_opt_in = yaml.safe_load((EXAMPLES / "double-opt-in.yaml").read_text())
    sim = new_customer_sim(FlowPlan.parse(welcome), FlowPlan.parse(double_opt_in))
    signup(sim, consent={"email": "pending"})
    [request] = sim.fire()
    assert request.trigger_id == "double-opt-in" and not request.marketing
    assert sim.tick(3600) == [], "no welcome to a pending address"
    sim.apply(
        CustomerEvent(event_id="confirm", customer_id=CUSTOMER, ts=sim.now, email=EMAIL,
                      consent={"email": "subscribed"}, consent_ts=sim.now,
                      consent_source="double_opt_in")
    )  # fmt: skip
    [welcome_mail] = sim.fire()
    assert welcome_mail.trigger_id == "welcome"
    assert [r.flow_id for r in sim.state.runs] == ["welcome"], "the confirmation run ended"
    assert [c.trigger_id for c in sim.tick(2 * 86_400)] == [], "no confirmation reminder"


def test_inactivity_waits_from_the_last_activity_and_starts_over_on_a_new_one() -> None:
    plan = flow(trigger={"inactivity": {"for": "P30D"}},
                steps=[{"send": {"template": "win_back"}}])  # fmt: skip
    sim = Sim(plan)
    sim.click("product_view", product_id="p1")
    assert sim.tick(29 * 86_400) == []
    sim.click("search", query="tea")  # back after 29 days: the wait starts over
    assert sim.tick(29 * 86_400) == []
    sim.order("p1", type="order_status", status="shipped")  # the shop's doing, not hers
    [winback] = sim.tick(86_400)
    assert winback.kind == "win_back" and winback.context.history == ("p1",)
    assert sim.state.runs == ()
    sim.order("p2")  # she buys again: a new wait
    assert [r.due_ms for r in sim.state.runs] == [sim.now + 30 * DAY]


def test_include_existing_arms_customers_already_held_once() -> None:
    from nudge.flows import DefinitionError
    from nudge.flows.engine import apply as apply_starts
    from nudge.flows.triggers import start_for_existing

    plan = flow(trigger={"inactivity": {"for": "P30D"}}, include_existing=True,
                steps=[{"send": {"template": "win_back"}}])  # fmt: skip
    flows = FlowSet([plan])
    sim = Sim(plan)
    recent = replace(sim.state, last_activity_ms=sim.now - 10 * DAY)
    start = start_for_existing(plan, recent, sim.now)
    assert start is not None and start.due_ms == sim.now + 20 * DAY, "20 more days away"
    long_gone = replace(sim.state, last_activity_ms=sim.now - 90 * DAY)
    start = start_for_existing(plan, long_gone, sim.now)
    assert start is not None and start.due_ms == sim.now, "away long enough: due now"
    armed = apply_starts(long_gone, "flow_enabled", {}, [start], flows, sim.now, sim.now)
    assert start_for_existing(plan, armed, sim.now) is None, "a run of it already"
    sim.state = armed
    [winback] = sim.fire()
    assert winback.trigger_id == "f" and sim.state.runs == ()
    assert start_for_existing(plan, sim.state, sim.now) is None, "it reached them once"

    birthday = flow(trigger={"date": {"attribute": "birthday"}}, include_existing=True,
                    steps=[{"send": {"template": "birthday"}}])  # fmt: skip
    assert start_for_existing(birthday, sim.state, sim.now) is None, "no birthday known"
    with pytest.raises(DefinitionError, match="include_existing: applies to the inactivity"):
        flow(trigger={"event": "order_placed"}, include_existing=True, steps=[{"send": {}}])


def test_the_next_occurrence_of_a_yearly_date() -> None:
    from datetime import datetime

    from nudge.flows.triggers.date import DateSpec, next_occurrence

    def ms(text: str, zone: str = "UTC") -> int:
        from zoneinfo import ZoneInfo

        return int(datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(zone)).timestamp() * 1000)

    spec = DateSpec.model_validate({"attribute": "birthday"})
    now = ms("2026-05-17T09:00:00")
    assert next_occurrence("1990-05-17", spec, None, now) == ms("2026-05-17T10:00:00")
    assert next_occurrence("05-17", spec, "Europe/Berlin", now) == ms(
        "2027-05-17T10:00:00", "Europe/Berlin"
    ), "10:00 in Berlin was 08:00 UTC: passed already this year"
    before = DateSpec.model_validate({"attribute": "b", "offset": "-P3D", "at": "09:30"})
    assert next_occurrence("--05-20", before, None, now) == ms("2026-05-17T09:30:00")
    assert next_occurrence("2000-02-29", spec, None, now) == ms("2027-02-28T10:00:00")
    for bad in ("17.05.1990", "13-01", "04-31", None, 19900517):
        assert next_occurrence(bad, spec, None, now) is None


def test_a_birthday_run_is_armed_by_activity_and_re_armed_when_the_date_changes() -> None:
    plan = flow(trigger={"date": {"attribute": "birthday", "at": "10:00"}},
                steps=[{"send": {"template": "birthday"}}])  # fmt: skip
    sim = Sim(plan)  # the clock starts 2023-11-14 22:13 UTC
    sim.click("product_view", product_id="p1")
    assert sim.state.runs == (), "no birthday known"
    sim.apply(customer(ts=sim.now, attributes={"birthday": "1990-11-16"}))
    [run] = sim.state.runs
    assert run.due_ms == 1_700_128_800_000  # 2023-11-16 10:00 UTC
    armed = sim.state
    sim.click("search", query="tea")
    assert sim.state.runs == armed.runs, "more activity keeps the same arming"
    sim.apply(customer(ts=sim.now, attributes={"birthday": "1990-11-15"}))
    assert [r.due_ms for r in sim.state.runs] == [1_700_128_800_000 - DAY]
    assert sim.tick(11 * 3600) == []
    [mail] = sim.tick(3 * 3600)
    assert mail.kind == "birthday" and sim.state.runs == ()
    sim.click("product_view", product_id="p2")  # next year's, on the next activity
    assert [r.due_ms for r in sim.state.runs] == [1_700_128_800_000 - DAY + 366 * DAY]


REPLENISH = {
    "id": "refill",
    "trigger": {"event": "order_placed", "per_item": True},
    "reentry": "restart",
    "steps": [{"wait": {"replenish": {"lead": "P3D", "fallback": "P30D"}}}, {"send": {}}],
}


def test_replenishment_runs_per_product_from_the_best_known_interval() -> None:
    from nudge.flows.replenishment import Repurchase
    from nudge.streams.logic import apply_event
    from tests.test_logic_support import order

    sim = Sim(FlowPlan.parse(REPLENISH))
    known = {"tea": Repurchase(median_ms=20 * DAY), "soap": Repurchase(param_ms=60 * DAY)}
    placed = order(sim.now, "tea", "soap", "mug")
    sim.state = apply_event(sim.state, placed, sim.triggers, sim.now, {}, known)
    due = {r.key: (r.due_ms - sim.now) // DAY for r in sim.state.runs}
    assert due == {"tea": 17, "soap": 57, "mug": 27}, "median, param, fallback; less the lead"
    [reminder] = [c for c in sim.tick(17 * 86_400)]
    assert [i["product_id"] for i in reminder.context.items] == ["tea"]
    # Tea again 10 days later: her own interval (27 days) now rules, and the run restarts.
    sim.clock.advance(10 * 86_400)
    again = order(sim.now, "tea")
    sim.state = apply_event(sim.state, again, sim.triggers, sim.now, {}, known)
    [tea] = [r for r in sim.state.runs if r.key == "tea"]
    assert (tea.due_ms - sim.now) // DAY == 27 - 3


def test_a_trigger_condition_that_fails_starts_nothing_and_is_noted() -> None:
    from nudge.flows.step_context import Note
    from nudge.streams.logic import apply_event
    from tests.test_logic_support import click

    plan = flow(trigger={"event": "search", "where": "event.query > 3"}, steps=[{"send": {}}])
    sim = Sim(plan)
    notes: list[Note] = []
    state = apply_event(sim.state, click("search", sim.now, query="tea"), sim.triggers,
                        sim.now, notes=notes)  # fmt: skip
    assert state.runs == ()
    [note] = notes
    assert (note.flow_id, note.reason, note.customer_id) == ("f", "condition_failed", CUSTOMER)
    assert "TypeError" in note.detail

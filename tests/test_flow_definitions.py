"""Flow definitions: one strict schema, every error named with its path."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from nudge.flows import DefinitionError, Flow, flow_json_schema, parse_flow
from nudge.flows.schema import flow_json_schema_text
from nudge.flows.steps.branch import IfStep
from nudge.flows.steps.send import SendStep
from nudge.flows.steps.split import SplitStep
from nudge.flows.steps.wait import ReplenishWait, Until, WaitStep
from nudge.flows.steps.wait_for import WaitForStep
from nudge.flows.triggers.abandonment import AbandonmentTrigger
from nudge.flows.triggers.date import DateTrigger
from nudge.flows.triggers.event import EventTrigger

SCHEMA_FILE = Path(__file__).resolve().parents[1] / "schemas" / "flow.schema.json"

WELCOME = yaml.safe_load(
    """
id: welcome
enabled: true
class: marketing
priority: 50
trigger: {event: customer_created}
reentry: once
exit_when:
  - {event: order_placed}
filter: "customer.consent.email == 'subscribed'"
steps:
  - send: {channel: email, subject: "Welcome, {{ customer.first_name or 'friend' }}",
           recommendations: {algorithm: popular, count: 4}}
  - wait_for: {event: order_placed, timeout: P7D, on_event: exit}
  - send: {channel: email, subject: "10% off your first order", promo: {pool: WELCOME10, ttl: P14D}}
"""
)


def problems(data: Any) -> list[str]:
    with pytest.raises(DefinitionError) as caught:
        parse_flow(data)
    return caught.value.lines()


def test_the_documented_welcome_flow_parses_to_typed_steps() -> None:
    flow = parse_flow(WELCOME)
    assert isinstance(flow.trigger, EventTrigger) and flow.trigger.event == "customer_created"
    assert flow.marketing and flow.priority == 50 and flow.reentry == "once"
    first, wait_for, second = flow.steps
    assert isinstance(first, SendStep) and first.send.recommendations is not None
    assert isinstance(wait_for, WaitForStep)
    assert wait_for.wait_for.timeout == 7 * 86_400_000 and wait_for.wait_for.on_event == "exit"
    assert isinstance(second, SendStep) and second.send.promo is not None
    assert second.send.promo.ttl == 14 * 86_400_000


def test_every_error_in_a_definition_is_named_with_its_path() -> None:
    bad = {
        **WELCOME,
        "dealy": "PT5M",
        "priority": 500,
        "steps": [
            {"send": {"subjct": "hi"}},
            {"wait": "P1X"},
            {
                "if": {
                    "condition": "customer.x ==",
                    "then": [{"wait_for": {"event": "order_placed"}}],
                }
            },
            {"sned": {}},
        ],
    }
    assert problems(bad) == [
        "welcome.priority: Input should be less than or equal to 100",
        "welcome.steps[0].send.subjct: unknown field (did you mean 'subject'?)",
        "welcome.steps[1].wait: bad duration 'P1X': expected ISO 8601 like 'PT1H'",
        "welcome.steps[2].if.condition: condition does not parse: unexpected 'end of template'",
        "welcome.steps[2].if.then[0].wait_for.timeout: required field missing",
        "welcome.steps[3]: a step is one of send, wait, wait_for, if, split, action, exit, "
        "written as {type: ...}",
        "welcome.dealy: unknown field (did you mean 'delay'?)",
    ]


def test_rules_across_trigger_and_steps_are_checked_after_the_fields() -> None:
    flow = {
        "id": "oops",
        "trigger": {"event": "cart_add"},
        "steps": [
            {"wait": {"replenish": {"lead": "P3D"}}},
            {"if": {"condition": "true", "then": [{"send": {"to": "seller"}}]}},
        ],
    }
    assert problems(flow) == [
        "oops.steps[0].wait.replenish: a replenishment wait needs the trigger "
        "{event: order_placed, per_item: true}",
        "oops.steps[1].if.then[0].send.to: 'seller' needs a flow triggered by an order event",
    ]
    assert problems({"id": "quiet", "trigger": {"event": "search"}, "steps": [{"wait": 5}]}) == [
        "quiet.steps: the flow sends nothing: add a send step"
    ]


def test_each_step_and_trigger_form_parses() -> None:
    flow = parse_flow(
        {
            "id": "all-forms",
            "class": "transactional",
            "trigger": {"event": "order_placed", "per_item": True, "where": "event.total > 10"},
            "reentry": "P30D",
            "steps": [
                {"wait": {"until": "10:00", "days": ["mon", "fri"]}},
                {"wait": {"replenish": {"lead": "P3D", "fallback": "P30D"}}},
                {"split": {"variants": {"A": 50, "B": 50}, "control": 10,
                           "steps": {"A": [{"send": {"subject": "a"}}], "B": ["exit"]}}},
                {"action": {"tag": "replenisher"}},
                {"action": {"set": {"tier": "gold"}}},
                {"if": {"condition": "customer.stats.orders_count > 1",
                        "then": [{"send": {"to": "ops@example.com"}}], "else": ["exit"]}},
                {"exit": True},
            ],
        }
    )  # fmt: skip
    assert not flow.marketing and flow.reentry == 30 * 86_400_000
    wait_until, replenish, split, *_ = flow.steps
    assert isinstance(wait_until, WaitStep) and isinstance(wait_until.wait, Until)
    assert isinstance(replenish, WaitStep) and isinstance(replenish.wait, ReplenishWait)
    assert isinstance(split, SplitStep) and split.split.control == 10
    assert isinstance(flow.steps[5], IfStep)
    birthday = parse_flow(
        {"id": "bd", "trigger": {"date": {"attribute": "birthday", "offset": "-P3D"}},
         "steps": [{"send": {}}]}
    )  # fmt: skip
    assert isinstance(birthday.trigger, DateTrigger)
    assert birthday.trigger.date.offset == -3 * 86_400_000 and birthday.trigger.date.at == "10:00"


@pytest.mark.parametrize(
    ("step", "problem"),
    [
        ({"action": {"tag": "a", "untag": "b"}}, "an action is exactly one of tag, untag or set"),
        ({"split": {"variants": {"A": 1}, "steps": {"C": []}}}, "steps for variants not in"),
        ({"wait": {"until": "25:00"}}, "expected a time of day as HH:MM"),
        ({"send": {"to": "nobody"}}, "'to' is customer, seller or an email address"),
        ({"send": {"recommendations": {"algorithm": "similar", "category": "5"}}},
         "'category' applies to the popular algorithm"),
        ({"send": {"subject": "{{ customer.name"}}, "template line 1"),
    ],
)  # fmt: skip
def test_bad_steps_are_refused_with_the_reason(step: Any, problem: str) -> None:
    (line,) = problems({"id": "f", "trigger": {"event": "search"}, "steps": [step]})
    assert line.startswith("f.steps[0].") and problem in line


def test_abandonment_shorthand_expands_to_a_flow_and_stays_strict() -> None:
    flow = parse_flow(
        {"id": "cart", "kind": "abandoned_cart", "delay": "PT30M", "subject": "Forgot?",
         "follow_up": {"delay": "P1D", "subject": "Still there?"}, "expires_after": "PT6H"}
    )  # fmt: skip
    assert isinstance(flow.trigger, AbandonmentTrigger) and flow.trigger.abandoned == "cart"
    assert flow.reentry == "restart" and flow.expires_after == 6 * 3_600_000
    wait, send, wait_again, follow_up = flow.steps
    assert isinstance(wait, WaitStep) and wait.wait == 30 * 60_000
    assert isinstance(send, SendStep) and send.send.subject == "Forgot?"
    assert isinstance(wait_again, WaitStep) and wait_again.wait == 86_400_000
    assert isinstance(follow_up, SendStep) and follow_up.send.subject == "Still there?"
    assert problems({"id": "cart", "kind": "abandoned_cart", "dealy": "PT5M"}) == [
        "cart.dealy: unknown field (did you mean 'delay'?)"
    ]
    assert problems({"id": "x", "kind": "abandoned_sofa"})[0].startswith("x.kind: Input should be")


def test_a_definition_that_is_not_a_mapping_is_refused() -> None:
    assert problems(["id", "x"]) == ["<flow without id>: a definition is a mapping of fields"]


def test_the_published_json_schema_is_current() -> None:
    published = SCHEMA_FILE.read_text(encoding="utf-8")
    assert published == flow_json_schema_text(), (
        "run: nudge triggers schema > schemas/flow.schema.json"
    )
    assert (
        json.loads(published)["$defs"]["AbandonmentShorthand"]["properties"]["delay"]["default"]
        == "PT1H"
    ), "durations' defaults are shown as written, not in milliseconds"


def test_the_json_schema_accepts_what_parses_and_flags_typos() -> None:
    validator = jsonschema.Draft202012Validator(flow_json_schema())
    root = Path(__file__).resolve().parents[1]
    files = [
        *(root / "nudge" / "demo").glob("*.yaml"),
        *(root / "flows" / "examples").glob("*.yaml"),
    ]
    assert len(files) >= 5
    for path in files:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
        for definition in loaded if isinstance(loaded, list) else [loaded]:
            parse_flow(definition)
            assert not list(validator.iter_errors(definition)), path
    validator.validate(WELCOME)
    assert list(validator.iter_errors({**WELCOME, "dealy": "PT5M"}))
    assert list(validator.iter_errors({"id": "c", "kind": "abandoned_cart", "dealy": 5}))


def test_flow_is_frozen() -> None:
    flow = parse_flow(WELCOME)
    with pytest.raises(ValueError):
        flow.priority = 1  # type: ignore[misc]
    assert isinstance(flow, Flow)

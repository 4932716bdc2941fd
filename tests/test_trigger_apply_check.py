"""``nudge triggers apply`` renders every template once and refuses what the sandbox would."""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import orjson
import pytest
import yaml
from click.testing import CliRunner

from nudge.cli import triggers as cli_triggers
from nudge.cli.main import main
from nudge.cli.triggers import load_definitions
from nudge.delivery.context import build_context, merge_customer
from nudge.demo import DEMO_TRIGGERS_PATH, PRODUCTION_TRIGGERS_PATH
from nudge.errors import ConfigError
from nudge.flows.plan import FlowPlan
from nudge.flows.triggers.seller import seller_context
from nudge.models.commands import SendCommand
from nudge.models.message import MessageContext, Recommendations
from nudge.models.state import Profile
from nudge.promo import PromoCode
from nudge.recommender import Recommender
from nudge.shared_state import SharedState
from nudge.template_check import SAMPLE_ORDER, SAMPLE_SELLER, check_templates, sample_context

UNSAFE = "{{ ''.__class__.__mro__[1].__subclasses__() }}"


def write(tmp_path: Path, definitions: Any, name: str = "triggers.yaml") -> Path:
    path = tmp_path / name
    if name.endswith(".json"):
        path.write_bytes(orjson.dumps(definitions))
    else:
        path.write_text(yaml.safe_dump(definitions), encoding="utf-8")
    return path


def cart(trigger_id: str = "cart-1h", **fields: Any) -> dict[str, Any]:
    return {"id": trigger_id, "kind": "abandoned_cart", "delay": "PT1H", **fields}


def refusal(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as err:
        load_definitions(path)
    return str(err.value).splitlines()


@pytest.mark.parametrize("path", [DEMO_TRIGGERS_PATH, PRODUCTION_TRIGGERS_PATH])
def test_shipped_trigger_files_pass(path: Path) -> None:
    assert [d["id"] for d in load_definitions(path)] == [
        d["id"] for d in yaml.safe_load(path.read_text())
    ]


@pytest.mark.parametrize(
    ("source", "error"),
    [
        ("{{ ''.__class__ }}", "SecurityError: access to attribute '__class__' of 'str'"),
        (UNSAFE, "SecurityError: access to attribute '__class__'"),
        ("{{ items.append(1) }}", "SecurityError: access to attribute 'append' of 'list'"),
        ("{{ customer.attributes.clear() }}", "SecurityError: access to attribute 'clear'"),
        ("{{ shop_url|nope }}", "no filter named 'nope'"),
        ("{% if false %}{{ shop_url|nope }}{% endif %}", "no filter named 'nope'"),
        ("{% if shop_url is nope %}x{% endif %}", "no test named 'nope'"),
        ("{{ items[0].price + 'EUR' }}", "TypeError: unsupported operand"),
        ("{{ items[0].price|money(1, 2, 3) }}", "TypeError: "),
        ("{{ typo.title }}", "UndefinedError: 'typo' is undefined"),
        ("{{ 1 / 0 }}", "ZeroDivisionError"),
    ],
)
def test_runtime_refusals_name_the_trigger_and_field(
    tmp_path: Path, source: str, error: str
) -> None:
    (line,) = refusal(write(tmp_path, [cart(html=f"<p>ok</p>\n{source}")]))
    assert line.startswith(f"{tmp_path / 'triggers.yaml'}: definition #1: cart-1h.html: line 2: ")
    assert error in line


def test_every_error_in_the_file_is_reported(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        {
            "triggers": [
                cart("good", subject="Hi {{ customer.first_name }}"),
                cart("bad-subject", subject=UNSAFE, text="{{ items.append(1) }}"),
                cart("bad-follow-up", follow_up={"delay": "P1D", "html": "{{ x|nope }}"}),
                cart("bad-syntax", subject="{{ unclosed"),
                {"id": "bad-kind", "kind": "nope"},
            ]
        },
        "triggers.json",
    )
    lines = refusal(path)
    assert all(line.startswith(f"{path}: definition #") for line in lines)
    problems = [line.split(": ", 2)[2] for line in lines]
    assert [line.split(": ", 2)[1] for line in lines] == [
        "definition #2", "definition #2", "definition #3", "definition #4", "definition #5",
    ]  # fmt: skip
    assert problems[0].startswith("bad-subject.subject: line 1: SecurityError: ")
    assert problems[1].startswith("bad-subject.text: line 1: SecurityError: ")
    assert problems[2] == "bad-follow-up.follow_up.html: line 1: no filter named 'nope'"
    assert problems[3].startswith("bad-syntax.subject: template line 1: ")  # syntax
    assert problems[4].startswith("bad-kind.kind: Input should be 'abandoned_cart'")


def test_optional_data_is_not_an_error() -> None:
    # What some customers have and the sample lacks must not refuse a trigger: at send
    # time these render for the customers who have the data.
    sources = [
        "{{ customer.nickname }}{{ nope }}",  # printing an undefined is empty, not an error
        "{{ customer.attributes.loyalty_points + 10 }}",
        "{{ customer.attributes.segment.upper() }}",
        "{% if customer.attributes.visits > 3 %}regular{% endif %}",
        "{{ customer.attributes.visits|int + 1 }}{{ items[4].title|upper }}",
        "{% for p in recipient.recommendations.similar.recommendations %}{{ p.title }}{% endfor %}",
        "{{ category.name|default('our shop') }} {{ items[0].params.Material }}",
    ]
    for source in sources:
        trigger = FlowPlan.parse(cart(subject=source, html=source, text=source))
        assert check_templates(trigger) == [], source


def test_every_documented_name_renders() -> None:
    source = (
        "{{ customer.first_name }} {{ customer.last_name }} {{ customer.email }} "
        "{% for i in items %}{{ i.title }} {{ i.url|utm }} {{ i.image_url }} "
        "{{ i.price|money(i.currency) }} {{ i.old_price|money(i.currency) }} {{ i.quantity }}"
        "{% endfor %} {{ category.category_id }} {{ category.name }} {{ search_query }} "
        "{% for r in recommendations %}{{ r.title }}{% endfor %} {{ unsubscribe_url }} "
        "{{ shop_url|utm }} {{ cart_url }} {{ search_url }} {{ sender.name }} "
        "{{ sender.postal_address }} {{ trigger.id }} {{ trigger.step }} {{ subject }} "
        "{{ event.order_id }} {{ order.total }} {% for i in order.items %}{{ i.product_id }}"
        "{% endfor %} {{ customer.tags|join(',') }}"
    )
    follow_up = {"html": source, "text": source}
    trigger = FlowPlan.parse(cart(html=source, text=source, follow_up=follow_up))
    assert check_templates(trigger) == []


def test_a_flows_errors_are_named_by_step() -> None:
    flow = FlowPlan.parse(
        {"id": "welcome", "trigger": {"event": "customer_created"},
         "steps": [{"wait": "P1D"}, {"send": {"subject": UNSAFE}}]}
    )  # fmt: skip
    [problem] = check_templates(flow)
    assert problem.startswith("welcome.steps[1].send.subject: line 1: SecurityError")


def test_the_sample_context_has_the_shape_the_delivery_worker_builds() -> None:
    trigger = FlowPlan.parse(cart())
    order = SAMPLE_ORDER
    command = SendCommand(
        id="cart-1h:c1:1:0", trigger_id="cart-1h", kind="abandoned_cart", step=0,
        channel="email", customer_id="c1", recipient="ann@example.com",
        version=trigger.version, recommendations=Recommendations("personal", 2),
        context=MessageContext.from_data(
            {"customer": Profile(email="ann@example.com", tags=("vip",)).as_context("c1"),
             "items": [{"product_id": "p1", "quantity": 2}], "category": "k1",
             "search_query": "tea", "event": order, "order": order,
             "seller": seller_context(SAMPLE_SELLER), "milestone": 100}
        ),
        due_ms=0, created_ms=0,
    )  # fmt: skip
    product = sample_context(trigger, 0)["items"][0]

    class Shared:
        async def get_products(self, ids: Any) -> dict[str, Any]:
            return {i: product for i in ids}

    class Recommend:
        async def recommend(self, *args: Any) -> list[dict[str, Any]]:
            return [product]

    real = asyncio.run(
        build_context(
            command, customer=merge_customer(command, None),
            promo=PromoCode("CODE-1", 1).as_context(),
            shared=cast(SharedState, Shared()), recommender=cast(Recommender, Recommend()),
            utm={"utm_source": "nudge"}, unsubscribe_url="https://u.example/t",
            shop_url="https://shop.example.com", sender={"name": "S", "email": "s@example.com",
                                                         "postal_address": "1 Street"},
        )
    )  # fmt: skip
    sample = sample_context(trigger, 0, "personal")

    # The same names all the way down (free-form maps aside: their keys are data).
    assert _names(sample) == _names(real)
    assert set(sample["recipient"]["recommendations"]) == {"personal"}


FREE_FORM = frozenset({"attributes", "consent", "params", "utm_params"})


def _names(value: Any, prefix: str = "") -> set[str]:
    """Every dotted path in a context: ``.customer.first_name``, ``.items[].url``, ..."""
    if isinstance(value, SimpleNamespace):
        value = vars(value)
    if isinstance(value, dict) and prefix.rpartition(".")[2] not in FREE_FORM:
        return {prefix}.union(*(_names(v, f"{prefix}.{k}") for k, v in value.items()))
    if isinstance(value, list) and value:
        return _names(value[0], prefix + "[]")
    return {prefix}


def test_the_cli_publishes_nothing_when_any_template_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    published: list[list[dict[str, Any]]] = []
    monkeypatch.setattr(
        cli_triggers, "publish_definitions", lambda _b, _t, defs: published.append(defs)
    )
    bad = write(tmp_path, [cart("ok"), cart("cart-2h", subject=UNSAFE)])
    result = CliRunner().invoke(main, ["triggers", "apply", str(bad)])
    assert result.exit_code != 0 and published == []
    assert "cart-2h.subject: line 1: SecurityError" in result.output

    good = write(tmp_path, [cart("ok", subject="Hi {{ customer.first_name }}")], "good.yaml")
    result = CliRunner().invoke(main, ["triggers", "apply", str(good)])
    assert result.exit_code == 0, result.output
    assert [[d["id"] for d in defs] for defs in published] == [["ok"]]
    assert "applied ok (abandoned_cart, enabled)" in result.output


def test_a_worker_refuses_an_unsafe_template_that_reached_the_topic() -> None:
    from nudge.trigger_registry import TriggerRegistry

    registry = TriggerRegistry()
    good = {"id": "cart", "kind": "abandoned_cart", "delay": 60, "subject": "Hi"}
    registry.apply_record(b"cart", orjson.dumps(good))
    unsafe = {**good, "subject": "{{ ''.__class__.__mro__ }}"}
    assert registry.apply_record(b"cart", orjson.dumps(unsafe)) is None
    assert "cart.subject" in registry.rejections["cart"]
    current = registry.get("cart")
    assert current is not None, "the old one keeps working"
    assert current.version == FlowPlan.parse(good).version


def test_messages_to_sellers_see_the_seller_and_the_milestone() -> None:
    from nudge.flows.plan import FlowPlan
    from nudge.template_check import check_templates

    plan = FlowPlan.parse(
        {
            "id": "milestones",
            "class": "transactional",
            "trigger": {"seller_sales": {}},
            "steps": [
                {"send": {"to": "seller", "subject": "{{ seller.name }}: {{ milestone }}"}},
                {"send": {"to": "seller", "subject": "{{ seller.nope.deeper }}"}},
                {"send": {"to": "seller", "subject": "{{ sellr.name }}"}},
            ],
        }
    )
    errors = check_templates(plan)
    assert len(errors) == 1 and errors[0].startswith("milestones.steps[2].send.subject")

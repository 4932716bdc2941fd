from __future__ import annotations

from datetime import date
from email import message_from_bytes, policy
from typing import Any

import pytest
from babel.dates import format_date

from nudge.delivery.defaults import default_message
from nudge.delivery.links import add_params, tag_html_links, utm_params
from nudge.delivery.message import HeaderInjection, build_message, message_id
from nudge.delivery.render import Footer, Rendered, Renderer, TemplateFailed
from nudge.models.message import BUILT_IN_TEMPLATES as KINDS
from nudge.models.message import Message
from nudge.templating import as_record

UNSUB = "https://nudge.example.com/unsubscribe/tok.sig"
UTM = utm_params("nudge", "email", "cart-1h", "abandoned_cart")
FOOTER = Footer("Demo Shop", "1 Example Street, Springfield", UNSUB)


def context(**overrides: Any) -> dict[str, Any]:
    item = {
        "product_id": "p1",
        "title": "Blue <Mug>",
        "url": "https://shop.example.com/p1",
        "image_url": "https://cdn.example.com/p1.jpg",
        "price": 12.5,
        "currency": "EUR",
        "quantity": 2,
    }
    rec = {
        "product_id": "p2",
        "title": "Kettle",
        "url": "https://shop.example.com/p2",
        "image_url": None,
        "price": 30,
        "currency": "USD",
    }
    values: dict[str, Any] = {
        "customer": {"first_name": "Ann", "email": "ann@example.com", "attributes": {}},
        "items": [item],
        "recommendations": [rec],
        "recipient": {"recommendations": {"popular": {"recommendations": [rec]}}},
        "category": {"category_id": "k1", "name": "Mugs & Cups"},
        "search_query": "tea & cake",
        "unsubscribe_url": UNSUB,
        "shop_url": "https://shop.example.com",
        "cart_url": "https://shop.example.com/cart",
        "search_url": "https://shop.example.com/search?q=tea",
        "utm_params": UTM,
        "promo": {},
        "order": as_record({"order_id": "A-17", "status": "shipped", "items": []}),
        "event": as_record({"order_id": "A-17", "status": "shipped", "items": []}),
    }
    values.update(overrides)
    return values


def render(
    message: Message | None = None, kind: str = "abandoned_cart", step: int = 0, **ctx: Any
) -> Rendered:
    return Renderer().render(
        message, kind=kind, step=step, context=context(**ctx), utm=UTM, footer=FOOTER
    )


@pytest.mark.parametrize("kind", sorted(KINDS))
@pytest.mark.parametrize("step", [0, 1])
def test_defaults_render_a_real_email(kind: str, step: int) -> None:
    to_seller = kind.startswith("seller_")
    out = render(kind=kind, step=step, **SELLER if to_seller else {})
    assert out.subject and "\n" not in out.subject
    greeting = "Hi Bo&#39;s Lamps" if to_seller else "Hi Ann"
    assert greeting in out.html and greeting.replace("&#39;", "'") in out.text
    if kind == "double_opt_in" or to_seller:  # a confirmation, or business: nothing to sell
        assert "Kettle" not in out.html and "Kettle" not in out.text
    if kind == "double_opt_in":
        assert "Confirm my subscription" in out.html
    elif not to_seller:
        assert "Kettle" in out.html and "$30.00" in out.html  # recommendations block
    if kind == "order_status":
        assert out.subject == "Your order A-17: shipped"
    if kind == "seller_order_status":
        assert out.subject == "Order A-17: shipped" and "€25.00" in out.text
    if kind == "seller_milestone":
        assert out.subject == "Congratulations: 100 sales!"
    if kind in ("abandoned_cart", "abandoned_view", "thank_you", "order_status", "flow",
                "seller_order_status"):  # fmt: skip
        assert "Blue &lt;Mug&gt;" in out.html and "Blue <Mug>" in out.text
        assert 'src="https://cdn.example.com/p1.jpg"' in out.html
        assert "€12.50" in out.html
        # quantities only where they mean something: not for a product merely viewed
        viewed = kind == "abandoned_view"
        assert ("Quantity" in out.html) is not viewed and ("(x2)" in out.text) is not viewed
        assert viewed or "Quantity: 2" in out.html
    assert UNSUB in out.html and f"Unsubscribe: {UNSUB}" in out.text
    assert "1 Example Street, Springfield" in out.html and "1 Example Street" in out.text


SELLER: dict[str, Any] = {
    "seller": as_record({"seller_id": "s1", "name": "Bo's Lamps"}),
    "milestone": 100,
    "order": as_record(
        {"order_id": "A-17", "status": "shipped", "total": 25.0, "currency": "EUR", "items": []}
    ),
}


def test_a_sellers_first_sale_is_worded_as_such() -> None:
    first = render(kind="seller_milestone", **{**SELLER, "milestone": 1})
    assert first.subject == "Congratulations on your first sale!"
    assert "many more follow.\n\nOpen your seller dashboard" in first.text, "a blank line between"


def test_price_drop_shows_the_old_price_and_says_why_the_customer_hears_of_it() -> None:
    dropped = {**context()["items"][0], "price": 10.0, "old_price": 12.5, "quantity": 1}
    event = as_record({"old_price": 12.5, "new_price": 10.0, "reasons": ["subscribed"]})
    out = render(kind="price_drop", items=[dropped], event=event)
    assert out.subject == "Price drop: Blue <Mug>, now €10.00"
    assert "Was €12.50. Prices can go back up." in out.html  # the built-in preheader
    assert "<s " in out.html and "€12.50</s>" in out.html and "Quantity" not in out.html
    assert "the price you asked us to watch" in out.text
    assert "- Blue <Mug> €10.00 (was €12.50)\n  https://shop.example.com/p1" in out.text
    viewed = render(kind="price_drop", items=[dropped], event=as_record({"reasons": ["viewed"]}))
    assert "something you looked at" in viewed.text


def test_cart_follow_up_differs_from_first() -> None:
    assert default_message("abandoned_cart", 1) != default_message("abandoned_cart", 0)
    assert default_message("abandoned_view", 1) == default_message("abandoned_view", 0)


def test_html_is_autoescaped_and_text_and_subject_are_not() -> None:
    msg = Message(
        subject="{{ search_query }}", html="<p>{{ search_query }}</p>", text="{{ search_query }}"
    )
    out = render(msg)
    assert out.subject == "tea & cake"
    assert "<p>tea &amp; cake</p>" in out.html
    assert out.text.startswith("tea & cake")


def test_trigger_fields_override_only_what_they_set() -> None:
    out = render(Message(subject="Custom {{ customer.first_name }}"))
    assert out.subject == "Custom Ann"
    assert "Return to your cart" in out.html  # default html kept


def test_footer_is_appended_even_when_template_forgets_it() -> None:
    out = render(Message(html="<html><body><p>Hi</p></body></html>", text="Hi"))
    assert out.html.index(UNSUB) < out.html.index("</body>")
    assert "Demo Shop" in out.html and "Springfield" in out.html
    assert out.text.startswith("Hi") and UNSUB in out.text


def test_links_get_utm_and_keep_their_query() -> None:
    html = (
        '<a href="https://shop.example.com/x?a=1&amp;b=2">x</a> '
        "<a href='http://other.example/y'>y</a> <a href=\"mailto:a@b.c\">m</a>"
    )
    out = render(Message(html=html))
    assert (
        "https://shop.example.com/x?a=1&amp;b=2&amp;utm_source=nudge&amp;utm_medium=email"
        "&amp;utm_campaign=cart-1h&amp;utm_content=abandoned_cart"
    ) in out.html
    assert "http://other.example/y?utm_source=nudge" in out.html
    assert 'href="mailto:a@b.c"' in out.html
    assert f'href="{UNSUB}"' in out.html  # the signed unsubscribe link is left alone


def test_add_params_keeps_marketer_utm() -> None:
    url = add_params("https://s.example/p?utm_campaign=summer&x=1", UTM)
    assert "utm_campaign=summer" in url and "utm_campaign=cart-1h" not in url
    assert "x=1" in url and "utm_source=nudge" in url
    assert tag_html_links('<a href="/relative">r</a>', UTM) == '<a href="/relative">r</a>'


def test_utm_filter_and_recommendation_alias() -> None:
    msg = Message(
        text="{{ shop_url|utm }} {% for r in recipient.recommendations.popular"
        ".recommendations %}{{ r.title }}{% endfor %}"
    )
    out = render(msg)
    assert out.text.startswith("https://shop.example.com?utm_source=nudge")
    assert "Kettle" in out.text


@pytest.mark.parametrize(
    "source",
    [
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ customer.__class__.__init__.__globals__ }}",
        "{{ items.append(1) }}",
        "{{ customer.attributes.clear() }}",
    ],
)
def test_sandbox_blocks_escapes(source: str) -> None:
    with pytest.raises(TemplateFailed) as err:
        render(Message(html=source))
    assert err.value.reason == "template_error"
    assert "html" in str(err.value)


@pytest.mark.parametrize(
    "source", ["{{ nope.deeper }}", "{{ 1 / 0 }}", "{{ customer.first_name|money(1, 2, 3) }}"]
)
def test_render_time_failures_are_permanent_errors(source: str) -> None:
    with pytest.raises(TemplateFailed):
        render(Message(subject=source))


def test_missing_values_render_empty() -> None:
    assert render(Message(subject="Hi {{ customer.nickname }}!")).subject == "Hi !"


# -- the MIME message ----------------------------------------------------------

RENDERED = Rendered(subject="Your cart", html="<p>hi</p>", text="hi")


def build(**overrides: Any) -> Any:
    values: dict[str, Any] = {
        "command_id": "cmd-1",
        "mail_from": "Demo Shop <shop@example.com>",
        "recipient": "ann@example.com",
        "unsubscribe_url": UNSUB,
        "now_ms": 1_700_000_000_000,
        "ref": "k5nvq3xr7d2mhw4tj6pylc2zea",
        "bounce_domain": "example.com",
    }
    values.update(overrides)
    rendered = values.pop("rendered", RENDERED)
    return build_message(rendered, **values)


def test_message_headers_and_parts() -> None:
    msg = message_from_bytes(build().data, policy=policy.default)
    mailto = "mailto:unsubscribe+k5nvq3xr7d2mhw4tj6pylc2zea@example.com?subject=unsubscribe"
    assert msg["List-Unsubscribe"] == f"<{UNSUB}>, <{mailto}>"
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert msg["X-Nudge-Ref"] == "k5nvq3xr7d2mhw4tj6pylc2zea"
    assert msg["Message-ID"] == message_id("cmd-1", "shop@example.com")
    assert build().message_id == msg["Message-ID"]  # stable across renders
    assert msg.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in msg.iter_parts()] == ["text/plain", "text/html"]


def test_transactional_message_has_no_list_unsubscribe() -> None:
    msg = message_from_bytes(build(unsubscribe_url=None).data, policy=policy.default)
    assert msg["List-Unsubscribe"] is None
    assert msg["List-Unsubscribe-Post"] is None


@pytest.mark.parametrize(
    "overrides",
    [
        {"recipient": "ann@example.com\r\nBcc: evil@example.com"},
        {"recipient": "ann@example.com\n"},
        {"mail_from": "Shop <shop@example.com>\rX: y"},
        {"recipient": "a@example.com, b@example.com"},
    ],
)
def test_header_injection_is_rejected(overrides: dict[str, Any]) -> None:
    with pytest.raises(HeaderInjection) as err:
        build(**overrides)
    assert err.value.reason == "header_injection"


def test_a_discount_shows_the_old_price_struck_through() -> None:
    discounted = {**context()["items"][0], "old_price": 20.0}
    out = render(items=[discounted])
    assert "<s" in out.html and "€20.00</s>" in out.html and "€12.50" in out.html
    assert "(was €20.00)" in out.text
    plain = render()
    assert "<s " not in plain.html and "(was" not in plain.text, "no old price, no strike"


def test_a_line_break_in_a_name_is_a_space_in_the_subject() -> None:
    # A storefront's bug, not the shopper's: the email goes out, one line, no Bcc.
    customer = {"first_name": "Ann\r\nBcc: evil@example.com", "attributes": {}}
    out = render(customer=customer)
    assert out.subject == "Ann Bcc: evil@example.com, you left something in your cart"
    assert "<title>Ann Bcc: evil@example.com, you left" in out.html  # {{ subject }} too
    sent = build(rendered=out)
    msg = message_from_bytes(sent.data, policy=policy.default)
    assert msg["Subject"] == out.subject
    assert msg["Bcc"] is None and sent.recipients == ("ann@example.com",)
    head = sent.data.split(b"\r\n\r\n", 1)[0]
    assert not any(line.startswith(b"Bcc") for line in head.split(b"\r\n"))


def test_a_preheader_is_hidden_first_in_the_body() -> None:
    from nudge.delivery.render import with_preheader

    body = with_preheader("<html><body class='x'><p>Hello</p></body></html>", "Ann & Bob")
    assert body.startswith("<html><body class='x'><div style=\"display:none;")
    assert "Ann &amp; Bob" in body and body.index("Ann") < body.index("<p>Hello")
    assert with_preheader("<p>bare</p>", "hi").endswith("</div><p>bare</p>")


def test_every_built_in_template_a_flow_may_name_exists() -> None:
    from nudge.delivery.defaults import _DEFAULTS
    from nudge.flows import DefinitionError, parse_flow
    from nudge.models.message import BUILT_IN_TEMPLATES

    assert {kind for kind, _ in _DEFAULTS} == set(BUILT_IN_TEMPLATES)
    for name in BUILT_IN_TEMPLATES:
        parse_flow(
            {"id": "t", "trigger": {"event": "search"}, "steps": [{"send": {"template": name}}]}
        )
    with pytest.raises(DefinitionError, match="template: Input should be 'abandoned_cart'"):
        parse_flow(
            {"id": "t", "trigger": {"event": "search"}, "steps": [{"send": {"template": "x"}}]}
        )


def test_the_welcome_reminder_shows_a_promo_code_when_it_has_one() -> None:
    with_code = render(kind="welcome", step=1, promo={"code": "W-7KQ2", "expires_at": 86_400_000})
    assert with_code.subject == "10% off your first order"
    day = format_date(date(1970, 1, 2), "long", locale="en")  # Babel's English, not ours
    assert "W-7KQ2" in with_code.html and f"until {day}." in with_code.text
    without = render(kind="welcome", step=1, promo={})
    assert without.subject.startswith("Still looking around?") and "code" not in without.text

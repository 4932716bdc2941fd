# ruff: noqa: RUF001  (Russian text is Cyrillic on purpose)
"""The built-in templates as a shop sends them: brand, languages, totals, inlined CSS."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date
from decimal import Decimal
from html import unescape
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from babel.dates import format_date
from babel.messages.extract import extract_from_file
from babel.messages.pofile import read_po
from babel.numbers import format_currency

from nudge.delivery.brand import Brand
from nudge.delivery.context import build_context, category_url, customer_locale
from nudge.delivery.defaults import _DEFAULTS
from nudge.delivery.i18n import LOCALES_DIR, resolve_locale, shipped_languages
from nudge.delivery.layout import STYLE
from nudge.delivery.render import Rendered, Renderer, TemplateFailed
from nudge.delivery.totals import line_total, subtotal
from nudge.flows.plan import FlowPlan
from nudge.models.commands import SendCommand
from nudge.models.message import BUILT_IN_TEMPLATES, Message, MessageContext
from nudge.recommender import PopularRecommender
from nudge.settings import Settings
from nudge.shared_state import SharedState
from nudge.startup import StartupError, load_settings
from nudge.template_check import check_templates
from tests.test_delivery_render import FOOTER, SELLER, UTM, context

BRAND = Brand("Lamp & Co", "https://cdn.example.com/logo.png", "#c2185b", "#fafafa")
# Prices whose float sums drift (0.1 + 0.2): the subtotal must be exact all the same.
ITEMS = [
    {"product_id": "a", "title": "Bulb", "url": "https://shop.example.com/a",
     "image_url": "https://cdn.example.com/a.jpg", "price": 0.1, "currency": "EUR", "quantity": 3},
    {"product_id": "b", "title": "Shade", "url": "https://shop.example.com/b",
     "image_url": None, "price": 1234.2, "currency": "EUR", "quantity": 1},
]  # fmt: skip
WITH_QUANTITIES = {"abandoned_cart", "thank_you", "order_status", "flow", "seller_order_status"}
WITHOUT_QUANTITIES = {"abandoned_view", "price_drop", "back_in_stock"}


def shop_context(**overrides: Any) -> dict[str, Any]:
    items = [{**item, "line_total": line_total(item)} for item in ITEMS]
    category = {"category_id": "k1", "name": "Lamps", "url": "https://shop.example.com/c/k1"}
    values = {"items": items, "subtotal": subtotal(items), "brand": BRAND, "category": category}
    return context(**{**values, **overrides})


def render(kind: str, step: int = 0, message: Message | None = None, **ctx: Any) -> Rendered:
    extra = SELLER if kind.startswith("seller_") else {}
    return Renderer().render(
        message, kind=kind, step=step, context=shop_context(**{**extra, **ctx}), utm=UTM,
        footer=FOOTER,
    )  # fmt: skip


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def tags(html: str, name: str | None = None) -> list[dict[str, str | None]]:
    parser = _Tags()
    parser.feed(html)
    return [attrs for tag, attrs in parser.tags if name is None or tag == name]


def with_class(html: str, css_class: str) -> list[dict[str, str | None]]:
    return [a for a in tags(html) if css_class in (a.get("class") or "").split()]


ALL = sorted({(kind, step) for kind, step in _DEFAULTS} | {(k, 0) for k in BUILT_IN_TEMPLATES})


# -- every kind, every language ---------------------------------------------------


@pytest.mark.parametrize(("kind", "step"), ALL)
def test_every_built_in_renders_in_english_and_russian(kind: str, step: int) -> None:
    english, russian = render(kind, step, locale="en"), render(kind, step, locale="ru")
    to_seller = kind.startswith("seller_")
    assert english.html.count("Hi ") >= 1 and "Здравствуйте" in russian.html
    assert "Здравствуйте" in russian.text and "Hi " not in russian.text.split("\n--\n")[0]
    assert russian.subject != english.subject and re.search("[а-яА-Я]", russian.subject)
    assert 'lang="ru"' in russian.html and 'lang="en"' in english.html
    assert "Отписаться" in russian.text and "Отправитель письма: Demo Shop." in russian.text
    # every built-in message has a preheader: the hidden block first in the body
    assert 'style="display:none;' in english.html, "a preheader"
    if not to_seller and kind != "double_opt_in":
        assert "You might also like" in english.html and "Вам может понравиться" in russian.html


def test_the_russian_catalogue_translates_every_built_in_text_and_nothing_else() -> None:
    env = Renderer().environment(is_html=True)
    wanted: set[str] = set()
    for message in _DEFAULTS.values():
        for source in (message.subject, message.preheader, message.html, message.text):
            for _line, _func, found in env.extract_translations(source or ""):
                strings = found if isinstance(found, tuple) else (found,)
                wanted.add(next(s for s in strings if s))
    render_py = Path(__file__).parents[1] / "delivery" / "render.py"
    wanted |= {str(m[1]) for m in extract_from_file("python", render_py)}
    assert shipped_languages() == ["en", "ru"]
    with (LOCALES_DIR / "ru" / "LC_MESSAGES" / "nudge.po").open("rb") as po:
        catalogue = read_po(po, locale="ru")
    entries = {(m.id[0] if isinstance(m.id, tuple) else m.id): m for m in catalogue if m.id}
    assert set(entries) == wanted, "missing or stale catalogue entries"
    for msgid, entry in entries.items():
        strings = entry.string if isinstance(entry.string, tuple) else (entry.string,)
        assert all(strings), f"untranslated: {msgid!r}"
        ids = entry.id if isinstance(entry.id, tuple) else (entry.id,)
        names = set(re.findall(r"%\((\w+)\)s", ids[-1])) - {"count"}
        for string in strings:  # a translation keeps every placeholder (plurals may drop count)
            assert set(re.findall(r"%\((\w+)\)s", string)) - {"count"} == names, msgid


def test_russian_plurals_follow_the_catalogue() -> None:
    subjects = {n: render("seller_milestone", milestone=n, locale="ru").subject for n in (2, 5, 21)}
    assert subjects == {
        2: "Поздравляем: 2 продажи!",
        5: "Поздравляем: 5 продаж!",
        21: "Поздравляем: 21 продажа!",
    }


# -- money, dates, locales --------------------------------------------------------


@pytest.mark.parametrize("locale", ["en", "ru", "de", "pt_BR"])
def test_money_and_dates_are_written_as_the_locale_writes_them(locale: str) -> None:
    shop_own = Message(
        subject="{{ 1234.5|money('RUB') }} / {{ promo.expires_at|date }} / {{ 7|money('') }}",
    )
    out = render("flow", message=shop_own, locale=locale, promo={"expires_at": 86_400_000})
    rub = format_currency(Decimal("1234.5"), "RUB", locale=locale)
    day = format_date(date(1970, 1, 2), "long", locale=locale)
    assert out.subject.startswith(f"{rub} / {day} / ")
    if locale == "ru":  # Babel's Russian: grouped by a no-break space, decimal comma
        assert re.fullmatch(r"1\s234,50\s₽", rub)


def test_odd_amounts_never_fail_a_send_and_a_bad_date_pattern_says_what_to_use() -> None:
    odd = Message(subject="{{ 'n/a'|money('EUR') }}|{{ (10**30)|money('EUR') }}|{{ none|money }}")
    assert render("flow", message=odd).subject == "n/a|1000000000000000000000000000000 EUR|"
    with pytest.raises(TemplateFailed, match="date format 'HH:mm': use short, medium, long"):
        render("flow", message=Message(subject="{{ 0|date('HH:mm') }}"))


def test_a_locale_nobody_knows_is_the_default_and_never_fails_a_send() -> None:
    assert customer_locale({"locale": "xx-!!", "attributes": {}}, "ru") == "ru"
    assert customer_locale({"attributes": {"language": "ru-RU"}}, "en") == "ru_RU"
    assert customer_locale({"locale": "de", "attributes": {"locale": "ru"}}, "en") == "de"
    assert customer_locale({"attributes": {}}, "en") == "en"
    assert resolve_locale("not a locale", "also not") == "en"
    garbled = render("abandoned_cart", locale="@@")
    assert garbled.subject == "Ann, you left something in your cart" and 'lang="en"' in garbled.html
    assert "€1,234.50" in garbled.html
    # a language Babel knows and nobody translated: its money, English words
    german = render("abandoned_cart", locale="de")
    assert "Hi Ann," in german.text
    assert format_currency(Decimal("1234.2"), "EUR", locale="de") in german.text


def test_a_flows_own_html_gets_its_own_preheader_or_none() -> None:
    own = render("abandoned_cart", message=Message(html="<p>Mine</p>"))
    assert own.html.startswith("<p>Mine</p>"), "no built-in preheader about another text"
    with_own = render("abandoned_cart", message=Message(html="<p>Mine</p>", preheader="Pre"))
    assert with_own.html.startswith('<div style="display:none;') and "Pre&#847;" in with_own.html
    built_in = render("abandoned_cart", message=Message(subject="Own subject"))
    assert "Your cart is saved for you" in built_in.html


def test_a_shops_own_template_is_translated_through_the_same_catalogues() -> None:
    own = Message(
        subject='{{ _("Shop now") }}', text='{% trans %}Shop now{% endtrans %} {{ _("Mine") }}'
    )
    out = render("flow", message=own, locale="ru")
    assert out.subject == "За покупками" and out.text.startswith("За покупками Mine")


# -- totals and quantities --------------------------------------------------------


def test_the_subtotal_is_the_sum_of_the_line_totals_exactly() -> None:
    items = [{**item, "line_total": line_total(item)} for item in ITEMS]
    assert [i["line_total"] for i in items] == [Decimal("0.3"), Decimal("1234.2")]
    total = subtotal(items)
    assert total is not None and total.currency == "EUR"
    assert total.amount == sum((i["line_total"] for i in items), Decimal(0))
    for locale in ("en", "ru"):
        out = render("abandoned_cart", locale=locale)
        for amount in (Decimal("0.3"), Decimal("1234.2"), total.amount):
            written = format_currency(amount, "EUR", locale=locale)
            assert written in unescape(out.html) and written in out.text
    assert subtotal([*items, {**items[0], "currency": "USD"}]) is None, "no sum across currencies"
    assert subtotal([*items, {**items[0], "line_total": None}]) is None, "nor with a price missing"
    assert subtotal([]) is None
    assert line_total({"price": "n/a", "quantity": 2}) is None


@pytest.mark.parametrize("kind", sorted(WITH_QUANTITIES | WITHOUT_QUANTITIES))
def test_quantities_and_totals_only_where_they_mean_something(kind: str) -> None:
    out = render(kind)
    shown = kind in WITH_QUANTITIES
    assert ("Quantity: 3" in out.html) is shown and ("(x3)" in out.text) is shown
    assert bool(with_class(out.html, "line-total")) is shown
    assert ("Subtotal:" in out.html) is shown and ("Subtotal:" in out.text) is shown
    assert "Bulb" in out.html, "the items themselves are there either way"


# -- brand, images, links ---------------------------------------------------------


def test_the_brand_colours_logo_and_name_are_the_shops() -> None:
    out = render("abandoned_cart")
    (button,) = with_class(out.html, "button-cell")
    assert "background: #c2185b" in (button["style"] or "")
    assert "#fafafa" in (tags(out.html, "body")[0]["style"] or "")
    (logo,) = with_class(out.html, "logo")
    assert logo["src"] == BRAND.logo_url and logo["alt"] == "Lamp & Co" and logo["width"]
    named = render("abandoned_cart", brand=Brand("Lamp & Co"))
    assert not with_class(named.html, "logo") and ">Lamp &amp; Co</a>" in named.html


def test_brand_settings_are_checked_and_the_name_defaults_to_the_sender() -> None:
    brand = Brand.from_settings(Settings(mail_from="Lamp Shop <hi@lamps.example>"))
    assert brand.name == "Lamp Shop" and brand.logo_url is None


@pytest.mark.parametrize(
    ("name", "value"),
    [("BRAND_COLOR", "red"), ("BRAND_BACKGROUND", "#12345"), ("BRAND_LOGO_URL", "logo.png"),
     ("DEFAULT_LOCALE", "klingon!"), ("CATEGORY_URL", "{shop_url}/c/{slug}")],
)  # fmt: skip
def test_a_bad_brand_or_locale_setting_is_one_line_naming_it(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(f"NUDGE_{name}", value)
    with pytest.raises(StartupError) as err:
        load_settings()
    assert f"NUDGE_{name}=" in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize(("kind", "step"), ALL)
@pytest.mark.parametrize("locale", ["en", "ru"])
def test_every_image_has_a_width_and_alt_text(kind: str, step: int, locale: str) -> None:
    images = tags(render(kind, step, locale=locale).html, "img")
    for image in images:
        assert image.get("alt") and image.get("width"), image
    assert images, "the logo at least"


def test_the_category_email_names_the_category_and_links_to_it() -> None:
    out = render("abandoned_category")
    assert "Lamps" in out.subject
    links = [a["href"] or "" for a in tags(out.html, "a")]
    assert sum(h.startswith("https://shop.example.com/c/k1?") for h in links) == 2  # text, button
    assert "See all Lamps: https://shop.example.com/c/k1" in out.text
    nameless = render("abandoned_category", category={"category_id": "k1", "name": None})
    assert "Keep shopping" in nameless.html
    assert category_url("{shop_url}/category/{id}", "https://s.example/", "Home > Kitchen") == (
        "https://s.example/category/Home%20%3E%20Kitchen"
    )


# -- inlined CSS -----------------------------------------------------------------


def _rule(selector: str) -> list[str]:
    """The declarations of ``selector`` in the layout's stylesheet, as inlined."""
    sheet = STYLE.replace("{{ brand.primary_color }}", BRAND.primary_color)
    match = re.search(rf"^{re.escape(selector)} {{ ([^}}]*) }}", sheet, re.M)
    assert match, selector
    pairs = (d.split(":", 1) for d in match.group(1).split(";") if d.strip())
    return [f"{name.strip()}: {value.strip()}" for name, value in pairs]


@pytest.mark.parametrize("css_class", ["button-cell", "button", "card", "item-title", "rec"])
def test_the_stylesheet_is_written_onto_the_elements(css_class: str) -> None:
    out = render("abandoned_cart")
    elements = with_class(out.html, css_class)
    assert elements
    for element in elements:
        style = element.get("style") or ""
        for declaration in _rule(f".{css_class}"):
            assert declaration in style, (declaration, style)
    (kept,) = re.findall(r"<style>(.*?)</style>", out.html, re.S)
    assert kept.strip().startswith("@media") and ".card {" not in kept.split("@media")[0]
    assert "max-width:480px" in kept, "the phone rules stay in <style> for clients that read it"


def test_a_marketers_style_block_is_inlined_and_plain_html_left_as_written() -> None:
    styled = Message(
        html='<html><head><style>p.x { color: #ff0000 }</style></head><body><p class="x">'
        "{{ customer.first_name }}</p>"
        '<link rel="stylesheet" href="https://evil.example/never-fetched.css"></body></html>'
    )
    out = render("flow", message=styled)
    (para,) = with_class(out.html, "x")
    assert (para["style"] or "").rstrip(";") == "color: #ff0000" and "Ann" in out.html
    plain = "<p>{{ customer.first_name }} &amp; co</p>"
    as_written = render("flow", message=Message(html=plain)).html
    assert "<p>Ann &amp; co</p>" in as_written and "<html" not in as_written


# -- the context, from a real Redis ----------------------------------------------


async def test_the_context_carries_locale_brand_totals_and_the_category_page(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings()
    client = aioredis.from_url(settings.redis_url or "")
    shared = SharedState(client, settings.redis_namespace)
    try:
        await shared.put_products(
            {**item, "category_ids": ["k1"], "category_path": ["Lamps"], "available": True}
            for item in ITEMS
        )
        carried = tuple({"product_id": i["product_id"], "quantity": i["quantity"]} for i in ITEMS)
        command = SendCommand(
            id="cart:c1:1:0", trigger_id="cart", kind="abandoned_cart", step=0, channel="email",
            customer_id="c1", recipient="c1@example.com", due_ms=0, created_ms=0,
            context=MessageContext(items=carried, category={"category_id": "Home > Lamps"}),
        )  # fmt: skip
        built = await build_context(
            command, customer={"first_name": "Аня", "attributes": {"locale": "ru-RU"}},
            shared=shared, recommender=PopularRecommender(shared), utm=UTM,
            unsubscribe_url="", shop_url="https://shop.example.com/", sender={"name": "Lamps"},
            brand=BRAND, default_locale="en", category_pattern="{shop_url}/c/{id}",
        )  # fmt: skip
    finally:
        await client.aclose()
    assert built["locale"] == "ru_RU" and built["brand"] == BRAND
    assert [i["line_total"] for i in built["items"]] == [Decimal("0.3"), Decimal("1234.2")]
    assert built["subtotal"].amount == Decimal("1234.5") and built["subtotal"].currency == "EUR"
    assert built["category"]["url"].startswith("https://shop.example.com/c/Home%20%3E%20Lamps?")
    out = Renderer().render(
        None, kind="abandoned_cart", step=0, context=built, utm=UTM, footer=FOOTER
    )
    assert out.subject == "Аня, вы оставили товары в корзине"
    assert f"Итого: {format_currency(Decimal('1234.5'), 'EUR', locale='ru_RU')}" in out.text


def test_a_localised_template_passes_the_check_that_triggers_apply_runs() -> None:
    html = (
        "<style>.t { color: {{ brand.primary_color }} }</style>"
        '<p class="t">{% trans name=customer.first_name %}Hi {{ name }},{% endtrans %}</p>'
        "{{ _('Shop now') }} {{ locale }} {{ subtotal.amount|money(subtotal.currency) }}"
        "{% for i in items %}{{ i.line_total|money(i.currency) }}{% endfor %}"
        "{{ category.url }} {{ promo.expires_at|date('short') }}"
    )
    plan = FlowPlan.parse(
        {"id": "cart-1h", "kind": "abandoned_cart", "delay": "PT1H", "html": html}
    )
    assert check_templates(plan) == []
    lone = "{{ _('50% off') }}"
    broken = FlowPlan.parse({"id": "c", "kind": "abandoned_cart", "delay": "PT1H", "html": lone})
    assert check_templates(broken), "a lone % in gettext fails at send time, so at check time"


class _Tree(HTMLParser):
    """A document as the events a browser's parser sees, entities decoded."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.events: list[tuple[str, Any]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.events.append(("start", (tag, sorted(attrs, key=lambda a: a[0]))))

    def handle_endtag(self, tag: str) -> None:
        self.events.append(("end", tag))

    def handle_data(self, data: str) -> None:
        if self.events and self.events[-1][0] == "data":  # split by the parser's buffering
            self.events[-1] = ("data", self.events[-1][1] + data)
        else:
            self.events.append(("data", data))


def _tree(html: str) -> list[tuple[str, Any]]:
    parser = _Tree()
    parser.feed(html)
    parser.close()
    # Runs of HTML whitespace (not the no-break space) show as one space.
    return [(e, re.sub(r"[ \t\n\r\f]+", " ", v) if e == "data" else v) for e, v in parser.events]


@pytest.mark.parametrize(("kind", "step"), sorted(_DEFAULTS))
@pytest.mark.parametrize("locale", ["en", "ru"])
def test_the_source_inlined_once_sends_what_inlining_each_email_would(
    kind: str, step: int, locale: str
) -> None:
    # The built-ins are inlined at import, Jinja hidden from the HTML parser; a flow's
    # own HTML is inlined after rendering. Given the very same source, both must agree.
    written = _DEFAULTS[(kind, step)]
    once = render(kind, step, locale=locale, customer={"first_name": "O'Neil & <Co>"})
    per_email = render(
        kind, step, locale=locale, customer={"first_name": "O'Neil & <Co>"},
        message=Message(html=written.html, preheader=written.preheader),
    )  # fmt: skip
    assert once.html != written.html and "style=" in once.html
    assert _tree(once.html) == _tree(per_email.html)

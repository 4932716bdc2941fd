"""Tracking links: signing and verifying clicks, rewriting a rendered message's links,
the open pixel, and the engagement event of a hit. Pure logic: no Kafka, no Redis."""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from nudge.delivery.links import add_params, utm_params
from nudge.delivery.render import Footer, Renderer
from nudge.delivery.sent_messages import SentMessage, message_ref
from nudge.delivery.tracking import (
    PIXEL_GIF,
    SIG_CHARS,
    TrackingLinks,
    click_sig,
    engagement_event,
    valid_click,
)
from nudge.models.engagement import EngagementEvent
from nudge.models.message import Message
from nudge.signing import key_bytes

SECRET = "test-secret"
KEY = key_bytes(SECRET)
REF = message_ref("cmd-1", SECRET)
PUBLIC = "https://nudge.example.com"
TRACK = "https://t.example.com"
UNSUB = f"{PUBLIC}/unsubscribe/tok.sig"
UTM = utm_params("nudge", "email", "cart-1h", "abandoned_cart")
FOOTER = Footer("Demo Shop", "1 Example Street", UNSUB)
BROWSER = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 Version/17.0"


def links(**overrides: Any) -> TrackingLinks:
    values: dict[str, Any] = {
        "tracking_url": TRACK + "/",
        "public_url": PUBLIC,
        "ref": REF,
        "secret": SECRET,
    }
    values.update(overrides)
    return TrackingLinks.for_message(**values)


def target_of(click_url: str) -> tuple[str, str, str]:
    """(ref, sig, target) of a click URL, as the endpoint reads them."""
    parts = urlsplit(click_url)
    _, c, ref, sig = parts.path.split("/")
    assert c == "c"
    return ref, sig, parse_qs(parts.query)["u"][0]


def test_a_click_url_carries_its_target_and_a_signature_that_verifies() -> None:
    target = "https://shop.example.com/p/1?color=blue&size=m&utm_source=nudge"
    url = links().click_url(target)
    assert url.startswith(f"{TRACK}/c/{REF}/")
    ref, sig, carried = target_of(url)
    assert (ref, carried) == (REF, target)
    assert len(sig) == SIG_CHARS
    assert valid_click(KEY, ref, sig, carried)


@pytest.mark.parametrize(
    "change",
    [
        lambda r, s, t: (r, s, "https://evil.com/"),  # another target
        lambda r, s, t: (r, s, t + "&x=1"),  # a target extended
        lambda r, s, t: (message_ref("cmd-2", SECRET), s, t),  # another message
        lambda r, s, t: (r, ("A" if s[0] != "A" else "B") + s[1:], t),  # a forged signature
        lambda r, s, t: (r, s[:-1], t),  # a truncated one
        lambda r, s, t: (r, s, None),  # no target
        lambda r, s, t: (r, click_sig(key_bytes("another-secret"), r, t), t),  # another key
    ],
)
def test_a_tampered_or_forged_click_does_not_verify(change: Any) -> None:
    ref, sig, target = target_of(links().click_url("https://shop.example.com/p/1"))
    assert not valid_click(KEY, *change(ref, sig, target))


@pytest.mark.parametrize("secret", ["k", "x" * 64, "y" * 65, "z" * 200])
def test_the_click_signature_is_hmac_sha256_of_context_ref_and_target(secret: str) -> None:
    target = "https://shop.example.com/p/1?utm_source=nudge"
    body = b"nudge.click.v1:" + REF.encode() + b"\n" + target.encode()
    digest = hmac.new(secret.encode(), body, hashlib.sha256).digest()
    expected = base64.urlsafe_b64encode(digest).decode()[:SIG_CHARS]
    assert click_sig(key_bytes(secret), REF, target) == expected
    assert target_of(links(secret=secret).click_url(target))[1] == expected


def test_the_click_signature_is_not_the_message_ref_hmac() -> None:
    """Domain separation: the same key makes different MACs for refs and clicks."""
    assert click_sig(KEY, "", "cmd-1") != REF[:SIG_CHARS]


def test_links_to_nudges_own_pages_and_the_tracking_host_are_not_wrapped() -> None:
    tracking = links()
    for own in (UNSUB, f"{PUBLIC}/confirm/tok.sig", f"{TRACK}/o/{REF}.gif"):
        assert tracking.click_url(own) == own


def test_the_pixel_is_a_43_byte_gif_named_by_the_ref() -> None:
    assert PIXEL_GIF.startswith(b"GIF89a") and len(PIXEL_GIF) == 43
    assert links().pixel_url() == f"{TRACK}/o/{REF}.gif"


MARKUP = (
    "<html><body>"
    '<a href="https://shop.example.com/p/1?color=blue&amp;size=m">Mug</a>'
    "<a href='https://shop.example.com/cart'>Cart</a>"
    '<a href="mailto:help@example.com">Mail us</a>'
    '<a href="tel:+4912345">Call</a>'
    '<a href="/relative">Relative</a>'
    '<a href="{{ confirm_url }}">Confirm</a>'
    f'<a href="{TRACK}/already">Tracking host</a>'
    "</body></html>"
)


def rendered_html(tracking: TrackingLinks | None, markup: str = MARKUP) -> str:
    context = {"confirm_url": f"{PUBLIC}/confirm/ctok.sig"}
    out = Renderer().render(
        Message(subject="s", html=markup, text="t https://shop.example.com/p/1"),
        kind="flow",
        step=0,
        context=context,
        utm=UTM,
        footer=FOOTER,
        tracking=tracking,
    )
    return out.html


def hrefs(markup: str) -> list[str]:
    return [html.unescape(h) for h in re.findall(r"""href=["']([^"']*)["']""", markup)]


def test_rendering_wraps_shop_links_after_utm_tagging_and_leaves_the_rest() -> None:
    plain = hrefs(rendered_html(None))
    tracked = hrefs(rendered_html(links()))
    assert len(plain) == len(tracked)
    wrapped = {before: after for before, after in zip(plain, tracked, strict=True)}
    mug = add_params("https://shop.example.com/p/1?color=blue&size=m", UTM)
    cart = add_params("https://shop.example.com/cart", UTM)
    for shop_link in (mug, cart):
        assert shop_link in wrapped, "the untracked rendering tags it with UTM"
        ref, sig, target = target_of(wrapped[shop_link])
        assert (ref, target) == (REF, shop_link), "the click leads to the UTM-tagged link"
        assert valid_click(KEY, ref, sig, target)
    untouched = [b for b in plain if b not in (mug, cart)]
    assert untouched and all(wrapped[b] == b for b in untouched)
    assert UNSUB in untouched and "mailto:help@example.com" in untouched
    assert "tel:+4912345" in untouched and "/relative" in untouched
    # (UTM-tagged, as before tracking: only the wrapping skips them)
    assert any(b.startswith(f"{TRACK}/already") for b in untouched)
    assert any(b.startswith(f"{PUBLIC}/confirm/ctok.sig") for b in untouched)


def test_an_escaped_ampersand_in_an_href_reaches_the_target_as_one_ampersand() -> None:
    markup = rendered_html(links())
    mug = next(h for h in re.findall(r'href="([^"]*)"', markup) if "/p/1" in h)
    # The target's "&" are percent-encoded inside u=, so the raw href needs no escaping.
    assert "&" not in mug and "%26size=m" in mug
    assert target_of(mug)[2].startswith("https://shop.example.com/p/1?color=blue&size=m&")


def test_the_pixel_goes_after_the_footer_before_the_body_ends() -> None:
    markup = rendered_html(links())
    pixel = f'<img src="{TRACK}/o/{REF}.gif"'
    assert markup.count(pixel) == 1
    assert markup.index("Unsubscribe</a>") < markup.index(pixel) < markup.index("</body>")


def test_switches_turn_opens_and_clicks_off_separately() -> None:
    no_opens = rendered_html(links(opens=False))
    assert "/o/" not in no_opens and f"{TRACK}/c/" in no_opens
    no_clicks = rendered_html(links(clicks=False))
    assert "/o/" in no_clicks and f"{TRACK}/c/" not in no_clicks
    assert hrefs(no_clicks) == hrefs(rendered_html(None))


def test_the_text_part_keeps_the_shops_own_links() -> None:
    out = Renderer().render(
        Message(subject="s", html=MARKUP, text="See https://shop.example.com/p/1"),
        kind="flow", step=0, context={}, utm=UTM, footer=FOOTER, tracking=links(),
    )  # fmt: skip
    assert "See https://shop.example.com/p/1" in out.text and TRACK not in out.text


SENT = SentMessage(
    command_id="cmd-1",
    customer_id="c1",
    trigger_id="cart-1h",
    kind="abandoned_cart",
    channel="email",
    recipient="ann@example.com",
    sent_ms=1_000_000,
    variant="B",
    campaign_id="spring",
)


def test_a_click_event_names_the_message_flow_variant_and_url() -> None:
    event = engagement_event(
        "clicked", SENT, now_ms=SENT.sent_ms + 3_600_000, user_agent=BROWSER, url="https://s/x"
    )
    assert (event.type, event.customer_id, event.message_id, event.flow_id) == (
        "clicked", "c1", "cmd-1", "cart-1h",
    )  # fmt: skip
    assert (event.variant, event.campaign_id, event.channel) == ("B", "spring", "email")
    assert (event.url, event.user_agent, event.machine) == ("https://s/x", BROWSER, False)
    assert event.ts == SENT.sent_ms + 3_600_000
    assert EngagementEvent.from_bytes(event.to_bytes()) == event
    again = engagement_event("clicked", SENT, now_ms=event.ts, user_agent=BROWSER)
    assert again.event_id != event.event_id, "each hit is its own event"


def test_an_open_by_a_privacy_proxy_is_flagged_not_dropped() -> None:
    event = engagement_event("opened", SENT, now_ms=SENT.sent_ms + 1000, user_agent="Mozilla/5.0")
    assert (event.type, event.machine, event.url) == ("opened", True, None)


@pytest.mark.parametrize("base", [TRACK, "https://t.example.com/a&b"])
@pytest.mark.parametrize("target", ["https://shop.example.com/p?a=1&b=<2>", UNSUB + "?x=1&y=2"])
def test_the_href_form_is_the_url_html_escaped(base: str, target: str) -> None:
    tracking = links(tracking_url=base)
    assert tracking.click_href(target) == html.escape(tracking.click_url(target), quote=True)
    assert html.unescape(tracking.click_href(target)).startswith((f"{base}/c/", UNSUB))


@pytest.mark.parametrize(
    "target",
    [
        "https://shop.example.com/s?q=tea+cake&x=%2B1&n=a=b&m=?#top",
        "https://shop.example.com/p/caf%C3%A9?c=\u00e9&d=1;2",
    ],
)
def test_a_target_comes_back_from_the_query_exactly(target: str) -> None:
    """ "+", "&", "#", "%" and ";" are encoded in u=, so a query parser gets the target
    back as it was signed (the endpoint reads u with aiohttp, parse_qs reads it alike)."""
    url = links().click_url(target)
    assert target_of(url)[2] == target
    assert "#" not in url and ";" not in url and "+" not in url

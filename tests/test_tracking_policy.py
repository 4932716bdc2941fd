"""Who made an open or click (machine detection), and where a click may lead
(the redirect-domain policy). Pure functions."""

from __future__ import annotations

import pytest

from nudge.delivery.machine import FAST_CLICK_S, machine_reason
from nudge.delivery.redirects import RedirectPolicy
from nudge.settings import Settings

SENT_MS = 1_700_000_000_000
LATER = SENT_MS + 3_600_000
IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Mobile/15E148"
)
CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Safari/537.36"
)
GMAIL_PROXY = (
    "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)"
)
YAHOO_PROXY = "YahooMailProxy; https://help.yahoo.com/kb/yahoo-mail-proxy-SLN28749.html"


@pytest.mark.parametrize("agent", [IPHONE, CHROME, GMAIL_PROXY, YAHOO_PROXY])
@pytest.mark.parametrize("action", ["opened", "clicked"])
def test_people_and_the_proxies_that_fetch_on_their_open_are_not_flagged(
    action: str, agent: str
) -> None:
    assert machine_reason(action, agent, sent_ms=SENT_MS, now_ms=LATER) is None  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("agent", "reason"),
    [
        ("Mozilla/5.0", "privacy_proxy"),  # Apple Mail Privacy Protection
        (" Mozilla/5.0 ", "privacy_proxy"),
        (None, "no_user_agent"),
        ("", "no_user_agent"),
        (
            "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
            "machine_agent",
        ),
        ("Mozilla/5.0 (Windows NT 10.0) AppleWebKit/537.36 BingPreview/1.0b", "machine_agent"),
        ("Mozilla/5.0 (X11; Linux x86_64) HeadlessChrome/119.0.0.0 Safari/537.36", "machine_agent"),
        ("Barracuda Sentinel (EE)", "machine_agent"),
        ("Mimecast URL Protect", "machine_agent"),
        ("python-requests/2.31.0", "machine_agent"),
        ("curl/8.4.0", "machine_agent"),
        ("Python/3.11 aiohttp/3.9.1", "machine_agent"),
        ("Go-http-client/1.1", "machine_agent"),
    ],
)
@pytest.mark.parametrize("action", ["opened", "clicked"])
def test_proxies_scanners_and_libraries_are_flagged(
    action: str, agent: str | None, reason: str
) -> None:
    assert machine_reason(action, agent, sent_ms=SENT_MS, now_ms=LATER) == reason  # type: ignore[arg-type]


@pytest.mark.parametrize("action", ["opened", "clicked"])
def test_a_head_request_is_a_link_checkers(action: str) -> None:
    reason = machine_reason(action, CHROME, sent_ms=SENT_MS, now_ms=LATER, head=True)  # type: ignore[arg-type]
    assert reason == "head_request"


def test_a_word_containing_bot_is_no_bot() -> None:
    agent = CHROME + " Abbott/1.0"
    assert machine_reason("clicked", agent, sent_ms=SENT_MS, now_ms=LATER) is None


def test_a_click_within_seconds_of_the_send_is_a_scanners_an_open_is_not() -> None:
    window_ms = int(FAST_CLICK_S * 1000)
    just_inside, at_edge = SENT_MS + window_ms - 1, SENT_MS + window_ms
    assert machine_reason("clicked", CHROME, sent_ms=SENT_MS, now_ms=just_inside) == (
        "clicked_on_delivery"
    )
    assert machine_reason("clicked", CHROME, sent_ms=SENT_MS, now_ms=at_edge) is None
    assert machine_reason("opened", CHROME, sent_ms=SENT_MS, now_ms=just_inside) is None
    assert machine_reason("clicked", CHROME, sent_ms=None, now_ms=just_inside) is None


SHOP = "https://shop.example.com"
POLICY = RedirectPolicy(SHOP, ("shop.example.com",))
PRODUCT = "https://shop.example.com/p/1?utm_source=nudge"


@pytest.mark.parametrize(
    "url",
    [
        PRODUCT,
        "http://shop.example.com/",
        "https://SHOP.Example.com/p/1",
        "https://www.shop.example.com/p/1",  # a subdomain of a listed host
        "https://shop.example.com./p/1",  # the root's trailing dot
        "https://shop.example.com:8443/p/1",
    ],
)
def test_the_shops_own_urls_are_allowed_unsigned(url: str) -> None:
    assert POLICY.is_own(url)
    assert POLICY.destination(url, signed=False) == url


EVIL = [
    "https://evil.com/",
    "https://shop.example.com.evil.com/",
    "https://evilshop.example.com/",
    "//evil.com/",
    "//shop.example.com/",  # scheme-relative: refused, not guessed
    "javascript:alert(document.domain)",
    "JavaScript://shop.example.com/%0aalert(1)",
    "data:text/html,<script>alert(1)</script>",
    "https://shop.example.com@evil.com/",
    "https://user:pw@shop.example.com/",
    "https://evil.com\\@shop.example.com/",  # a browser reads the host as evil.com
    "https://evil.com\\.shop.example.com/",
    "https://shop.example.com\t.evil.com/",
    "https://shop.example.com\r\nSet-Cookie: x=1",
    "https://shop.example.com:99999/",
    "https://shop.example.com\u3002evil.com/",  # an ideographic full stop
    "https://xn--shp-qla.example.com/",  # not a listed host (punycode)
    "ftp://shop.example.com/",
    "/relative/path",
    "",
]


@pytest.mark.parametrize("url", EVIL)
def test_anything_else_unsigned_goes_to_the_shops_front_page(url: str) -> None:
    assert not POLICY.is_own(url)
    assert POLICY.destination(url, signed=False) == SHOP


def test_no_target_goes_to_the_shops_front_page() -> None:
    assert POLICY.destination(None, signed=False) == SHOP
    assert POLICY.destination(None, signed=True) == SHOP


def test_a_signed_target_goes_anywhere_on_the_web_but_never_to_a_script() -> None:
    assert POLICY.destination("https://instagram.com/shop", signed=True) == (
        "https://instagram.com/shop"
    )
    assert POLICY.destination(PRODUCT, signed=True) == PRODUCT
    for bad in ("javascript:alert(1)", "https://shop.example.com@evil.com/", "//evil.com"):
        assert POLICY.destination(bad, signed=True) == SHOP


def test_redirect_domains_default_to_the_shops_host_and_can_list_several() -> None:
    assert Settings(shop_url="https://www.my-shop.example/de").redirect_hosts() == (
        "www.my-shop.example",
    )
    listed = Settings(redirect_domains=" My-Shop.example, blog.my-shop.example. ,")
    assert listed.redirect_hosts() == ("my-shop.example", "blog.my-shop.example")
    policy = RedirectPolicy(listed.shop_url, listed.redirect_hosts())
    assert policy.is_own("https://www.my-shop.example/") and not policy.is_own(SHOP)


@pytest.mark.parametrize("bad", ["https://shop.example.com", "shop.example.com/path", "a b"])
def test_a_redirect_domain_that_is_not_a_host_name_is_a_clear_error(bad: str) -> None:
    with pytest.raises(ValueError, match="redirect_domains"):
        Settings(redirect_domains=bad)


def test_the_tracking_url_defaults_to_the_public_url_and_must_be_http() -> None:
    assert Settings(public_url="https://n.example.com/").tracking_base() == "https://n.example.com"
    assert Settings(tracking_url="https://t.example.com/x/").tracking_base() == (
        "https://t.example.com/x"
    )
    with pytest.raises(ValueError, match="tracking_url"):
        Settings(tracking_url="t.example.com")

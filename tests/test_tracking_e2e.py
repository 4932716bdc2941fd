"""Open and click tracking end to end: `nudge worker` and `nudge deliver` as real
processes, the real broker, Redis and SMTP sink, and the tracking links of a received
email fetched over real HTTP."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import aiohttp
import pytest
import redis

from nudge.delivery.links import add_params, utm_params
from nudge.delivery.machine import FAST_CLICK_S
from nudge.delivery.sent_messages import SentMessage, message_ref
from nudge.delivery.tracking import PIXEL_GIF
from nudge.models.commands import SendCommand
from nudge.models.engagement import EngagementEvent
from tests.pipeline_support import read_topic, wait_for
from tests.test_pipeline_e2e import Pipeline, pipeline  # noqa: F401  (the fixture)

pytestmark = pytest.mark.e2e

PRODUCT_URL = "https://shop.example.com/p/p1?color=blue&size=m"
BROWSER = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.0 Safari/605.1.15"
)


def send_command(cid: str) -> SendCommand:
    now = int(time.time() * 1000)
    values: dict[str, Any] = {
        "id": cid,
        "trigger_id": "cart-1h",
        "kind": "abandoned_cart",
        "step": 0,
        "channel": "email",
        "customer_id": "ann",
        "recipient": "ann@example.com",
        "version": "v1",
        "variant": "B",
        "context": {
            "items": [{"product_id": "p1", "title": "Blue Mug", "url": PRODUCT_URL, "price": 9.0}]
        },
        "due_ms": now,
        "created_ms": now,
    }
    return SendCommand(**values)


async def get(url: str, agent: str, method: str = "GET") -> tuple[int, dict[str, str], bytes]:
    async with (
        aiohttp.ClientSession() as http,
        http.request(method, url, allow_redirects=False, headers={"User-Agent": agent}) as resp,
    ):
        return resp.status, dict(resp.headers), await resp.read()


def engagement(p: Pipeline) -> list[EngagementEvent]:
    return [EngagementEvent.from_bytes(r.value()) for r in read_topic(p.settings, "engagement")]


def test_opens_and_clicks_are_recorded_and_a_click_reaches_the_shop_in_one_hop(
    pipeline: Callable[..., Pipeline],  # noqa: F811
) -> None:
    p = pipeline([]).start()
    settings = p.settings
    client = redis.Redis.from_url(settings.redis_url or "")
    p.shop.customer("ann", "ann@example.com", first_name="Ann")
    consent = f"{settings.redis_namespace}:consent:ann"
    wait_for(lambda: client.hget(consent, "email") == b"subscribed", "ann's consent in Redis")
    command = send_command("cmd-track-1")
    p.shop.send("send-commands", "ann", command.to_bytes())
    [mail] = wait_for(lambda: p.mail_to("ann@example.com"), "the email")
    body = mail.get_body(("html",))
    assert body is not None
    markup = body.get_content()

    ref = message_ref(command.id, settings.secret_key)
    base = settings.tracking_base()
    pixel = f"{base}/o/{ref}.gif"
    assert f'src="{pixel}"' in markup
    # List-Unsubscribe is "<https://...>, <mailto:...>": the page is the first
    unsubscribe = str(mail["List-Unsubscribe"]).split(",")[0].strip().strip("<>")
    assert f'href="{unsubscribe}"' in markup, "the unsubscribe link is not wrapped"
    clicks = [h.replace("&amp;", "&") for h in re.findall(rf'href="({base}/c/[^"]+)"', markup)]
    targets = {parse_qs(urlsplit(c).query)["u"][0]: c for c in clicks}
    utm = utm_params(settings.utm_source, settings.utm_medium, "cart-1h", "abandoned_cart")
    expected = add_params(PRODUCT_URL, utm)
    assert expected in targets, f"the product link is tracked: {sorted(targets)}"
    click = targets[expected]
    sig = urlsplit(click).path.rsplit("/", 1)[1]

    async def hits() -> dict[str, tuple[int, dict[str, str], bytes]]:
        forged = ("A" if sig[0] != "A" else "B") + sig[1:]
        bad = {
            "evil_target": f"{base}/c/{ref}/{sig}?u={quote('https://evil.com/', safe='')}",
            "forged_sig": f"{base}/c/{ref}/{forged}?u={quote(expected, safe='')}",
            "scheme_relative": f"{base}/c/{ref}/{forged}?u={quote('//evil.com/', safe='')}",
            "userinfo": f"{base}/c/{ref}/{sig}?u="
            + quote("https://shop.example.com@evil.com/", safe=""),
            "no_target": f"{base}/c/{ref}/{sig}",
            "unknown_pixel": f"{base}/o/{'a' * 26}.gif",
        }
        done = {name: await get(url, BROWSER) for name, url in bad.items()}
        # Only now the genuine ones: whatever the bad ones had wrongly published would
        # be on the topic before these.
        done["open"] = await get(pixel, BROWSER)
        done["proxy_open"] = await get(pixel, "Mozilla/5.0")
        done["click"] = await get(click, BROWSER)
        done["head_click"] = await get(click, BROWSER, "HEAD")  # a link checker
        return done

    answers = asyncio.run(hits())

    for name in ("evil_target", "scheme_relative", "userinfo", "no_target"):
        status, headers, _ = answers[name]
        assert (status, headers["Location"]) == (302, settings.shop_url), name
    status, headers, _ = answers["forged_sig"]
    assert (status, headers["Location"]) == (302, expected), "an own host is allowed unsigned"
    for name in ("unknown_pixel", "open", "proxy_open"):
        status, headers, gif = answers[name]
        assert (status, headers["Content-Type"], gif) == (200, "image/gif", PIXEL_GIF), name
        assert "no-store" in headers["Cache-Control"]
    for name in ("click", "head_click"):
        status, headers, _ = answers[name]
        assert (status, headers["Location"]) == (302, expected), "one hop, UTM kept"

    wait_for(lambda: len(engagement(p)) >= 4, "the opens' and clicks' events")
    events = engagement(p)  # read again: anything a bad hit published is there too
    assert sorted(e.type for e in events) == ["clicked", "clicked", "opened", "opened"], events
    raw = client.get(f"{settings.redis_namespace}:sent:{ref}")
    assert raw is not None
    sent = SentMessage.from_bytes(raw)
    for event in events:
        assert (event.customer_id, event.message_id, event.flow_id) == (
            "ann",
            command.id,
            "cart-1h",
        )
        assert (event.channel, event.variant) == ("email", "B")
    human, proxy = (e for e in events if e.type == "opened")
    if human.user_agent != BROWSER:
        human, proxy = proxy, human
    assert (human.user_agent, human.machine, human.url) == (BROWSER, False, None)
    assert (proxy.user_agent, proxy.machine) == ("Mozilla/5.0", True)
    # The GET came before the HEAD (each event's ts is its request's time).
    clicked, checked = sorted((e for e in events if e.type == "clicked"), key=lambda e: e.ts)
    for event in (clicked, checked):
        assert (event.url, event.user_agent) == (expected, BROWSER)
    assert clicked.machine is (clicked.ts - sent.sent_ms < FAST_CLICK_S * 1000)
    assert checked.machine is True, "a HEAD is a link checker's"
    keys = {r.key() for r in read_topic(settings, "engagement")}
    assert keys == {b"ann"}, "keyed by customer id"

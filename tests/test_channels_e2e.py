"""HTTP channels end to end: real broker, real Redis, the delivery worker, and a local
HTTP server that records every request and answers as a script says."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from standardwebhooks.webhooks import Webhook as Verifier

from nudge.delivery.idempotency import ClaimState
from nudge.delivery.sent_messages import SentMessages, message_ref
from nudge.embedded import free_port
from nudge.models.message import Message, WebhookCall
from nudge.settings import Settings
from nudge.shared_state import SharedState
from tests.test_channels import browser_subscription, check_web_push, vapid_key
from tests.test_delivery_e2e import Events, command, env, produce, running_worker, wait_until

pytestmark = pytest.mark.e2e

__all__ = ["env"]  # the fixture, shared with the email tests

WHSEC = "whsec_" + base64.b64encode(b"e2e-webhook-key-0123456789abcdef").decode()
TOKEN = "987654:e2e-bot-token"


@dataclass
class Seen:
    at: float
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """Records requests; ``script[path]`` answers them in turn (then 200 ``{"ok":true}``)."""

    port: int = 0
    seen: list[Seen] = field(default_factory=list)
    script: dict[str, list[tuple[int, dict[str, str], str]]] = field(default_factory=dict)
    #: how long to think before answering (longer than the client waits: a timeout)
    delay_s: float = 0.0

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def at(self, path: str) -> list[Seen]:
        return [s for s in self.seen if s.path == path]

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.seen.append(
            Seen(time.monotonic(), request.method, request.path, dict(request.headers), body)
        )
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        answers = self.script.get(request.path) or []
        status, headers, text = answers.pop(0) if answers else (200, {}, '{"ok":true}')
        return web.Response(status=status, headers=headers, text=text)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    recording = Receiver(port=free_port())
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", recording.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", recording.port).start()
    yield recording
    await runner.cleanup()


Env = Callable[..., Awaitable[tuple[Settings, Any, SharedState]]]


def webhook(receiver: Receiver, cid: str, path: str, body: str | None = None) -> bytes:
    url = receiver.url(path)
    call = WebhookCall(url, "POST", {"X-Source": "nudge-test"}, body)
    return command(cid, channel="webhook", recipient=url, webhook=call).to_bytes()


async def test_webhook_call_is_signed_and_keyed_by_the_message_ref(
    env: Env, receiver: Receiver
) -> None:
    settings, _, shared = await env(webhook_secret=WHSEC)
    body = '{"customer": {{ customer.first_name|tojson }}, "items": {{ items|length }}}'
    async with Events(settings, "delivery-events") as events, running_worker(settings, shared):
        await produce(settings, webhook(receiver, "hook-1", "/hooks/crm", body))
        await wait_until(lambda: len(events.records) == 1, "a delivery event")
    event = events.events()[0]
    assert (event.status, event.channel, event.attempts) == ("sent", "webhook", 1)
    [call] = receiver.at("/hooks/crm")
    assert call.method == "POST" and call.headers["X-Source"] == "nudge-test"
    ref = message_ref("hook-1", settings.secret_key)
    assert call.headers["webhook-id"] == call.headers["Idempotency-Key"] == ref
    assert Verifier(WHSEC).verify(call.body, call.headers) == {"customer": "Ann", "items": 1}
    assert WHSEC not in event.detail
    # The message is on record under its ref, for tracking and bounces.
    record = await SentMessages(shared.redis, settings.redis_namespace).lookup(ref)
    assert record is not None
    assert (record.command_id, record.channel, record.recipient) == (
        "hook-1",
        "webhook",
        receiver.url("/hooks/crm"),
    )


async def test_503_then_429_are_retried_honouring_retry_after(env: Env, receiver: Receiver) -> None:
    settings, _, shared = await env(webhook_secret=WHSEC, send_backoff_s=0.05)
    receiver.script["/hooks/busy"] = [
        (503, {}, "down for a moment"),
        (429, {"Retry-After": "2"}, "slow down"),
    ]
    async with Events(settings, "delivery-events") as events, running_worker(settings, shared):
        await produce(settings, webhook(receiver, "hook-busy", "/hooks/busy"))
        await wait_until(lambda: len(events.records) == 1, "a delivery event")
    event = events.events()[0]
    assert (event.status, event.attempts) == ("sent", 3)
    calls = receiver.at("/hooks/busy")
    assert len(calls) == 3
    # The same message each time: one id for the receiver to dedupe by.
    assert len({c.headers["webhook-id"] for c in calls}) == 1
    # The backoff alone is at most 0.05-0.1 s here; the 429 asked for 2 s.
    assert calls[2].at - calls[1].at >= 1.9
    assert calls[1].at - calls[0].at < 1.5


async def test_failing_webhooks_end_failed_with_status_and_body_while_others_go_out(
    env: Env, receiver: Receiver
) -> None:
    settings, _, shared = await env(
        webhook_secret=WHSEC, send_backoff_s=0.1, send_backoff_max_s=0.5, send_retry_for=3.0
    )
    receiver.script["/hooks/down"] = [(503, {}, "<h1>down for maintenance</h1>")] * 1000
    receiver.script["/hooks/gone"] = [(410, {}, '{"error": "this hook was deleted"}')]
    async with Events(settings, "delivery-events") as events, running_worker(settings, shared):
        await produce(
            settings,
            webhook(receiver, "hook-down", "/hooks/down"),
            webhook(receiver, "hook-gone", "/hooks/gone"),
            webhook(receiver, "hook-ok", "/hooks/ok"),
        )
        await wait_until(lambda: len(events.records) == 3, "three delivery events")
    by_id = {e.command_id: e for e in events.events()}
    order = [e.command_id for e in events.events()]
    assert by_id["hook-ok"].status == "sent"
    assert order.index("hook-ok") < order.index("hook-down"), "not held by the failing one"
    gone = by_id["hook-gone"]
    assert (gone.status, gone.reason, gone.attempts) == ("failed", "http_410", 1)
    assert gone.detail == 'HTTP 410: {"error": "this hook was deleted"}'
    down = by_id["hook-down"]
    assert (down.status, down.reason) == ("failed", "retry_window_expired")
    assert down.detail == "http_503: HTTP 503: <h1>down for maintenance</h1>"
    assert down.attempts == len(receiver.at("/hooks/down")) and down.attempts > 2


async def test_telegram_message_end_to_end(env: Env, receiver: Receiver) -> None:
    settings, _, shared = await env(telegram_bot_token=TOKEN, telegram_api_url=receiver.url("/tg"))
    await shared.put_profile(
        "c1", {"first_name": "Ann", "attributes": {"telegram_chat_id": 5550001}}
    )
    await shared.set_consent("c1", "telegram", "subscribed")
    path = f"/tg/bot{TOKEN}/sendMessage"
    receiver.script[path] = [(502, {}, "bad gateway")]
    async with Events(settings, "delivery-events") as events, running_worker(settings, shared):
        await produce(settings, command("tg-1", channel="telegram", recipient="").to_bytes())
        await wait_until(lambda: len(events.records) == 1, "a delivery event")
    event = events.events()[0]
    assert (event.status, event.channel, event.attempts) == ("sent", "telegram", 2)
    calls = receiver.at(path)
    assert len(calls) == 2
    first, second = (json.loads(c.body) for c in calls)
    assert first["chat_id"] == second["chat_id"] and first["text"][:40] == second["text"][:40]
    call = calls[1]
    assert call.method == "POST" and call.headers["Content-Type"] == "application/json"
    body = json.loads(call.body)
    # sendMessage's fields: chat_id (integer or @name), text (1-4096 characters).
    assert set(body) == {"chat_id", "text"}
    assert body["chat_id"] == 5550001 and 1 <= len(body["text"]) <= 4096
    assert body["text"].startswith("Ann, you left something in your cart")
    assert f"{settings.shop_url}/cart" in body["text"]
    assert "utm_medium=telegram" in body["text"] and "utm_medium=email" not in body["text"]
    unsubscribe = body["text"].rsplit("Unsubscribe: ", 1)[1]
    assert unsubscribe.startswith(f"{settings.public_url}/unsubscribe/")


async def test_auto_picks_the_first_consented_channel_else_no_channel(
    env: Env, receiver: Receiver
) -> None:
    settings, catcher, shared = await env(
        telegram_bot_token=TOKEN, telegram_api_url=receiver.url("/tg")
    )
    # c1: email subscribed (from ``env``); telegram subscribed, with a chat id; no push
    # subscription. c2: nothing subscribed. c3: telegram only, but no sms gateway is set.
    await shared.put_profile(
        "c1", {"email": "ann@example.com", "attributes": {"telegram_chat_id": "77"}}
    )
    await shared.set_consent("c1", "telegram", "subscribed")
    await shared.set_consent("c1", "push", "subscribed")
    await shared.put_profile("c2", {"email": "bob@example.com", "phone": "+4911"})
    order = ("push", "telegram", "email")
    async with Events(settings, "delivery-events") as events, running_worker(settings, shared):
        await produce(
            settings,
            command("auto-1", channel="auto", recipient="", channels=order).to_bytes(),
            command(
                "auto-2", channel="auto", recipient="", channels=order, customer_id="c2"
            ).to_bytes(),
            command("sms-1", channel="sms", recipient="").to_bytes(),
            command("tg-none", channel="telegram", recipient="", customer_id="c2").to_bytes(),
        )
        await wait_until(lambda: len(events.records) == 4, "four delivery events")
    by_id = {e.command_id: e for e in events.events()}
    assert (by_id["auto-1"].status, by_id["auto-1"].channel) == ("sent", "telegram")
    assert json.loads(receiver.at(f"/tg/bot{TOKEN}/sendMessage")[0].body)["chat_id"] == 77
    assert (by_id["auto-2"].status, by_id["auto-2"].reason) == ("suppressed", "no_channel")
    sms = by_id["sms-1"]
    assert (sms.status, sms.reason, sms.detail) == (
        "failed",
        "channel_not_configured",
        "NUDGE_SMS_URL is not set",
    )
    # c2 has no telegram consent; a transactional message would look for an address.
    assert by_id["tg-none"].status == "suppressed"
    assert catcher.messages() == []


async def test_transactional_telegram_without_an_address_is_suppressed(
    env: Env, receiver: Receiver
) -> None:
    settings, _, shared = await env(telegram_bot_token=TOKEN, telegram_api_url=receiver.url("/tg"))
    message = Message(text="Your order shipped")
    cmd = command("tg-tx", channel="telegram", recipient="", marketing=False, message=message)
    async with Events(settings, "delivery-events") as events, running_worker(settings, shared):
        await produce(settings, cmd.to_bytes())
        await wait_until(lambda: len(events.records) == 1, "a delivery event")
    event = events.events()[0]
    assert (event.status, event.reason) == ("suppressed", "no_address")
    assert receiver.seen == []


async def test_sms_viber_and_push_requests_have_their_apis_shapes(
    env: Env, receiver: Receiver, tmp_path: Path
) -> None:
    settings, _, shared = await env(
        sms_url=receiver.url("/sms/send"),
        sms_auth_header="X-Api-Key: sms-key-1",
        sms_sender="DemoShop",
        viber_api_url=receiver.url("/viber/pa"),
        viber_auth_token="viber-token-1",
        vapid_private_key_file=vapid_key(tmp_path),
        vapid_subject="mailto:ops@example.com",
        push_ttl_s=3600,
    )
    sub, private, auth = browser_subscription(receiver.url("/push/endpoint-1"))
    attributes = {"viber_id": "vb-01234567890A=", "push_subscription": json.dumps(sub)}
    profile = {"first_name": "Ann", "phone": "+4915112345678", "attributes": attributes}
    await shared.put_profile("c1", profile)
    for channel in ("sms", "viber", "push"):
        await shared.set_consent("c1", channel, "subscribed")
    # Viber answers 200 with a status of its own.
    receiver.script["/viber/pa/send_message"] = [(200, {}, '{"status":0,"status_message":"ok"}')]
    receiver.script["/push/endpoint-1"] = [(201, {}, "")]
    async with Events(settings, "delivery-events") as events, running_worker(settings, shared):
        await produce(
            settings,
            *(
                command(f"{c}-1", channel=c, recipient="").to_bytes()
                for c in ("sms", "viber", "push")
            ),
        )
        await wait_until(lambda: len(events.records) == 3, "three delivery events")
    assert {(e.command_id, e.status, e.channel) for e in events.events()} == {
        ("sms-1", "sent", "sms"),
        ("viber-1", "sent", "viber"),
        ("push-1", "sent", "push"),
    }
    [sms] = receiver.at("/sms/send")
    assert sms.headers["X-Api-Key"] == "sms-key-1"
    sms_body = json.loads(sms.body)
    assert set(sms_body) == {"to", "text", "sender"}
    assert (sms_body["to"], sms_body["sender"]) == ("+4915112345678", "DemoShop")
    assert "you left something in your cart" in sms_body["text"]

    [viber] = receiver.at("/viber/pa/send_message")
    assert viber.headers["X-Viber-Auth-Token"] == "viber-token-1"
    viber_body = json.loads(viber.body)
    assert set(viber_body) == {"receiver", "type", "text", "sender"}
    assert (viber_body["receiver"], viber_body["type"]) == ("vb-01234567890A=", "text")
    assert set(viber_body["sender"]) == {"name"} and 0 < len(viber_body["sender"]["name"]) <= 28
    assert 0 < len(viber_body["text"]) <= 7000

    [push] = receiver.at("/push/endpoint-1")
    assert push.headers["TTL"] == "3600"
    claims, payload = check_web_push(push.headers, push.body, private, auth)
    assert claims["aud"] == f"http://127.0.0.1:{receiver.port}"
    assert payload["title"].startswith("Ann, you left something")
    # the built-in preheader of an abandoned cart, the step having no text of its own
    assert payload["body"] == "Your cart is saved for you, ready when you are."
    assert payload["url"].startswith(f"{settings.shop_url}/cart")


async def test_telegram_timeout_after_sending_is_uncertain_and_not_resent(
    env: Env, receiver: Receiver
) -> None:
    settings, _, shared = await env(
        telegram_bot_token=TOKEN, telegram_api_url=receiver.url("/tg"), http_timeout_s=0.5
    )
    await shared.put_profile("c1", {"attributes": {"telegram_chat_id": 1}})
    await shared.set_consent("c1", "telegram", "subscribed")
    receiver.delay_s = 2.0
    cmd = command("tg-slow", channel="telegram", recipient="")
    async with (
        Events(settings, "delivery-events") as events,
        running_worker(settings, shared) as worker,
    ):
        await produce(settings, cmd.to_bytes())
        await wait_until(lambda: len(events.records) == 1, "a delivery event")
        # The claim stays at its hand-over stage: no later copy sends it either.
        state = await worker.ledger.peek("tg-slow")
    event = events.events()[0]
    assert (event.status, event.reason, event.attempts) == ("failed", "interrupted_uncertain", 1)
    assert state is ClaimState.IN_FLIGHT and len(receiver.seen) == 1
    assert TOKEN not in events.events()[0].detail

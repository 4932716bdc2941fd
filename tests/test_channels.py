"""Channels beyond email, without Kafka: request building per provider (checked against
each API's documented shape), answer judging, ``channel: auto``, command checks."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import time
from pathlib import Path
from typing import Any

import http_ece
import orjson
import pytest
from aiohttp import web
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from py_vapid import Vapid02
from pydantic import ValidationError
from standardwebhooks.webhooks import Webhook as Verifier

from nudge.delivery.channels import REGISTRY, Compose, NotConfigured
from nudge.delivery.channels.auto import pick
from nudge.delivery.channels.http import (
    HttpAnswer,
    HttpRejected,
    HttpRequest,
    HttpRetry,
    HttpSender,
    HttpUncertain,
    judge,
    retry_after_ms,
)
from nudge.delivery.channels.push import BadSubscription
from nudge.delivery.command_check import validate
from nudge.delivery.render import Renderer, TemplateFailed
from nudge.delivery.retry import Retry, RetryPolicy
from nudge.delivery.sent_messages import message_ref
from nudge.embedded import free_port
from nudge.errors import InvalidMessage
from nudge.flows.plan import FlowPlan
from nudge.flows.steps.send import SendStep
from nudge.models.commands import SendCommand
from nudge.models.message import CHANNELS, Message, WebhookCall
from nudge.settings import Settings
from tests.test_logic_support import Sim, customer, new_state

WHSEC = "whsec_" + base64.b64encode(b"k" * 32).decode()
TOKEN = "123456:ABC-secret-bot-token"
NOW_MS = 1_790_000_000_000


def settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "webhook_secret": WHSEC,
        "telegram_bot_token": TOKEN,
        "telegram_api_url": "http://tg.test",
        "viber_auth_token": "viber-token",
        "viber_api_url": "http://viber.test/pa",
        "sms_url": "http://sms.test/send",
        "mail_from": "Demo Shop <shop@example.com>",
    }
    values.update(overrides)
    return Settings(**values)


def command(channel: str, recipient: str = "", **overrides: Any) -> SendCommand:
    values: dict[str, Any] = {
        "id": "cart-1h:c1:1:0",
        "trigger_id": "cart-1h",
        "kind": "abandoned_cart",
        "step": 0,
        "channel": channel,
        "customer_id": "c1",
        "recipient": recipient,
        "context": {},
        "due_ms": 0,
        "created_ms": 0,
    }
    values.update(overrides)
    return SendCommand(**values)


CONTEXT: dict[str, Any] = {
    "customer": {"customer_id": "c1", "first_name": "Ann", "email": "ann@example.com"},
    "items": [{"product_id": "p1", "title": "Blue Mug", "url": "https://shop.test/p1"}],
    "cart_url": "https://shop.test/cart?utm_source=nudge",
    "shop_url": "https://shop.test",
    "unsubscribe_url": "https://nudge.test/unsubscribe/tok",
}


def compose(cmd: SendCommand, s: Settings, now_ms: int = NOW_MS) -> Compose:
    return Compose(cmd, CONTEXT, Renderer(), message_ref(cmd.id, s.secret_key), s, now_ms)


# -- webhook ----------------------------------------------------------------------------


def test_webhook_request_is_signed_per_standard_webhooks_with_the_ref_as_key() -> None:
    s = settings()
    call = WebhookCall(
        "https://hooks.test/in",
        "PUT",
        {"X-Team": "crm"},
        '{"name": {{ customer.first_name|tojson }}, "n": {{ items|length }}}',
    )
    cmd = command("webhook", call.url, webhook=call)
    now_ms = int(time.time() * 1000)  # the verifier allows 5 minutes of skew
    request = REGISTRY["webhook"].request(compose(cmd, s, now_ms))
    ref = message_ref(cmd.id, s.secret_key)
    assert (request.method, request.url, request.idempotent) == ("PUT", call.url, True)
    assert json.loads(request.body) == {"name": "Ann", "n": 1}
    headers = dict(request.headers)
    assert headers["webhook-id"] == headers["Idempotency-Key"] == ref
    assert headers["webhook-timestamp"] == str(now_ms // 1000)
    assert headers["X-Team"] == "crm"
    # The spec's reference implementation accepts it, and only it.
    verifier = Verifier(WHSEC)
    assert verifier.verify(request.body, headers) == {"name": "Ann", "n": 1}
    tampered = {**headers, "webhook-id": "other"}
    with pytest.raises(Exception, match="signature"):
        verifier.verify(request.body, tampered)


def test_webhook_default_body_describes_the_message() -> None:
    s = settings()
    cmd = command("webhook", "https://hooks.test/in", webhook=WebhookCall("https://hooks.test/in"))
    body = json.loads(REGISTRY["webhook"].request(compose(cmd, s)).body)
    assert body["message_id"] == message_ref(cmd.id, s.secret_key)
    assert (body["flow_id"], body["customer_id"], body["kind"]) == ("cart-1h", "c1", cmd.kind)
    assert body["items"][0]["product_id"] == "p1"
    assert "Ann" in body["subject"]


def test_webhook_body_renders_in_the_sandbox() -> None:
    s = settings()
    evil = WebhookCall("https://hooks.test/in", body="{{ ''.__class__.__mro__ }}")
    cmd = command("webhook", evil.url, webhook=evil)
    with pytest.raises(TemplateFailed, match="sandbox"):
        REGISTRY["webhook"].request(compose(cmd, s))


@pytest.mark.parametrize(
    ("call", "problem"),
    [
        (WebhookCall("ftp://x.test/"), "http"),
        (WebhookCall("https://x.test/", method="DELETE"), "method"),
        (WebhookCall("https://x.test/", headers={"X-A": "1\r\nX-B: 2"}), "line break"),
        (WebhookCall("https://x.test/", headers={"webhook-signature": "v1,x"}), "set by nudge"),
        (WebhookCall("https://x.test/", headers={"Bad Name": "1"}), "token"),
    ],
)
def test_bad_webhook_commands_are_dead_lettered(call: WebhookCall, problem: str) -> None:
    with pytest.raises(InvalidMessage, match=problem) as caught:
        validate(command("webhook", call.url, webhook=call))
    assert caught.value.reason == "bad_webhook"


def test_missing_webhook_secret_names_the_setting() -> None:
    with pytest.raises(NotConfigured, match="NUDGE_WEBHOOK_SECRET is not set"):
        REGISTRY["webhook"].required(settings(webhook_secret=None))
    with pytest.raises(NotConfigured, match="NUDGE_WEBHOOK_SECRET is not a whsec_"):
        REGISTRY["webhook"].required(settings(webhook_secret="whsec_"))


# -- telegram, sms, viber ---------------------------------------------------------------

TELEGRAM_FIELDS = {"chat_id", "text", "parse_mode", "reply_markup", "disable_notification"}


def test_telegram_send_message_request() -> None:
    s = settings(telegram_parse_mode="HTML")
    cmd = command("telegram", "-100200300")
    request = REGISTRY["telegram"].request(compose(cmd, s))
    assert request.method == "POST"
    assert request.url == f"http://tg.test/bot{TOKEN}/sendMessage"
    assert request.headers["Content-Type"] == "application/json"
    body = json.loads(request.body)
    assert set(body) <= TELEGRAM_FIELDS
    assert body["chat_id"] == -100200300 and body["parse_mode"] == "HTML"
    # The built-in short text: subject, the cart link, and (marketing) how to stop.
    assert body["text"].startswith("Ann, you left something in your cart\n")
    assert CONTEXT["cart_url"] in body["text"]
    assert body["text"].endswith(f"Unsubscribe: {CONTEXT['unsubscribe_url']}")
    assert TOKEN in request.secrets and request.redact(request.url).endswith("bot***/sendMessage")


def test_step_text_is_used_and_transactional_messages_carry_no_unsubscribe() -> None:
    s = settings()
    cmd = command("telegram", "42", marketing=False, message=Message(text="Hi {{ link }}"))
    body = json.loads(REGISTRY["telegram"].request(compose(cmd, s)).body)
    assert body == {"chat_id": 42, "text": f"Hi {CONTEXT['cart_url']}"}


def test_sms_gateway_request_with_auth_header_and_sender() -> None:
    s = settings(sms_auth_header="Authorization: Bearer sms-secret", sms_sender="DemoShop")
    cmd = command("sms", "+4915112345678", message=Message(text="Your code {{ items[0].title }}"))
    request = REGISTRY["sms"].request(compose(cmd, s))
    assert (request.method, request.url) == ("POST", "http://sms.test/send")
    assert request.headers["Authorization"] == "Bearer sms-secret"
    body = json.loads(request.body)
    assert body["to"] == "+4915112345678" and body["sender"] == "DemoShop"
    assert body["text"].startswith("Your code Blue Mug")
    assert request.secrets == ("Bearer sms-secret",)


def test_sms_settings_are_named_when_missing_or_malformed() -> None:
    with pytest.raises(NotConfigured, match="NUDGE_SMS_URL"):
        REGISTRY["sms"].required(settings(sms_url=None))
    with pytest.raises(NotConfigured, match="NUDGE_SMS_AUTH_HEADER"):
        REGISTRY["sms"].required(settings(sms_auth_header="no colon here"))


def test_viber_send_message_request() -> None:
    s = settings()
    cmd = command("viber", "01234567890A=")
    request = REGISTRY["viber"].request(compose(cmd, s))
    assert request.url == "http://viber.test/pa/send_message"
    assert request.headers["X-Viber-Auth-Token"] == "viber-token"
    body = json.loads(request.body)
    assert set(body) == {"receiver", "type", "text", "sender"}
    assert body["receiver"] == "01234567890A=" and body["type"] == "text"
    assert body["sender"] == {"name": "Demo Shop"} and "Blue Mug" not in body["sender"]["name"]
    assert request.accept is not None
    request.accept(HttpAnswer(200, '{"status":0,"status_message":"ok"}'))
    with pytest.raises(HttpRejected, match="Viber status 6"):
        request.accept(HttpAnswer(200, '{"status":6,"status_message":"notSubscribed"}'))


# -- push -------------------------------------------------------------------------------


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def browser_subscription(endpoint: str) -> tuple[dict[str, Any], ec.EllipticCurvePrivateKey, bytes]:
    """What a browser's PushManager.subscribe gives, and the keys it keeps."""
    private = ec.generate_private_key(ec.SECP256R1())
    public = private.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    auth = os.urandom(16)
    sub = {"endpoint": endpoint, "keys": {"p256dh": b64url(public), "auth": b64url(auth)}}
    return sub, private, auth


def vapid_key(tmp_path: Path) -> Path:
    key = Vapid02()
    key.generate_keys()
    path = tmp_path / "vapid.pem"
    key.save_key(str(path))
    return path


def check_web_push(
    headers: dict[str, str], body: bytes, private: ec.EllipticCurvePrivateKey, auth: bytes
) -> tuple[dict[str, Any], dict[str, Any]]:
    """RFC 8291/8292 as a push service reads it: the VAPID JWT verified with the key in
    ``k``, the body decrypted with the subscription's keys. Returns (claims, payload)."""
    assert headers["Content-Encoding"] == "aes128gcm"
    assert int(headers["TTL"]) >= 0
    scheme, _, params = headers["Authorization"].partition(" ")
    assert scheme == "vapid"
    fields = dict(part.split("=", 1) for part in params.split(","))
    token, key = fields["t"], fields["k"]
    head, claims, signature = token.split(".")
    public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), unb64url(key))
    raw = unb64url(signature)
    der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
    public.verify(der, f"{head}.{claims}".encode(), ec.ECDSA(hashes.SHA256()))
    assert json.loads(unb64url(head))["alg"] == "ES256"
    payload = http_ece.decrypt(body, private_key=private, auth_secret=auth, version="aes128gcm")
    return json.loads(unb64url(claims)), json.loads(payload)


def test_web_push_request_is_encrypted_and_vapid_signed(tmp_path: Path) -> None:
    s = settings(vapid_private_key_file=vapid_key(tmp_path), vapid_subject="mailto:ops@example.com")
    REGISTRY["push"].required(s)
    sub, private, auth = browser_subscription("https://push.test/wpush/v2/abc")
    cmd = command(
        "push", orjson.dumps(sub).decode(), message=Message(subject="Hi {{ customer.first_name }}")
    )
    request = REGISTRY["push"].request(compose(cmd, s))
    assert (request.method, request.url) == ("POST", sub["endpoint"])
    claims, payload = check_web_push(dict(request.headers), request.body, private, auth)
    assert claims["aud"] == "https://push.test" and claims["sub"] == "mailto:ops@example.com"
    assert claims["exp"] > NOW_MS // 1000
    # Without a text of the step's own, the body is the built-in preheader of the kind.
    body = "Your cart is saved for you, ready when you are."
    assert payload == {"title": "Hi Ann", "body": body, "url": CONTEXT["cart_url"]}


def test_push_needs_a_key_file_and_a_real_subscription(tmp_path: Path) -> None:
    with pytest.raises(NotConfigured, match="NUDGE_VAPID_PRIVATE_KEY_FILE"):
        REGISTRY["push"].required(settings())
    missing = settings(vapid_private_key_file=tmp_path / "nope.pem", vapid_subject="mailto:a@b")
    with pytest.raises(NotConfigured, match="NUDGE_VAPID_PRIVATE_KEY_FILE"):
        REGISTRY["push"].required(missing)
    s = settings(vapid_private_key_file=vapid_key(tmp_path), vapid_subject="mailto:a@b")
    with pytest.raises(BadSubscription):
        REGISTRY["push"].request(compose(command("push", '{"endpoint": "https://p.test"}'), s))


def test_addresses_come_from_the_profile_then_its_attributes() -> None:
    sub = {"endpoint": "https://p.test/1", "keys": {"p256dh": "x", "auth": "y"}}
    customer = {
        "email": "ann@example.com",
        "phone": "+491",
        "attributes": {
            "telegram_chat_id": 42,
            "viber_id": "v1",
            "push_subscription": json.dumps(sub),
        },
    }
    found = {name: channel.address(customer) for name, channel in REGISTRY.items()}
    assert found == {
        "email": "ann@example.com",
        "webhook": None,
        "sms": "+491",
        "telegram": "42",
        "viber": "v1",
        "push": json.dumps(sub),
    }
    # A subscription stored as an object reads back as the same JSON.
    as_object = REGISTRY["push"].address({"push_subscription": sub})
    assert as_object is not None and orjson.loads(as_object) == sub


# -- answers ----------------------------------------------------------------------------


def test_answers_are_judged_by_status() -> None:
    judge(HttpAnswer(204, ""), NOW_MS)
    with pytest.raises(HttpRetry) as busy:
        judge(HttpAnswer(429, "slow down", "7"), NOW_MS)
    assert (busy.value.reason, busy.value.not_before_ms) == ("http_429", NOW_MS + 7000)
    with pytest.raises(HttpRetry) as down:
        judge(HttpAnswer(503, "<h1>maintenance</h1>"), NOW_MS)
    assert down.value.reason == "http_503" and down.value.not_before_ms is None
    with pytest.raises(HttpRejected) as bad:
        judge(HttpAnswer(404, "no such hook " + "x" * 1000), NOW_MS)
    assert bad.value.reason == "http_404"
    assert str(bad.value).startswith("HTTP 404: no such hook") and len(str(bad.value)) < 320


def test_retry_after_in_seconds_or_as_a_date() -> None:
    assert retry_after_ms("120", NOW_MS) == NOW_MS + 120_000
    date = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(NOW_MS // 1000 + 30))
    assert retry_after_ms(date, NOW_MS) == NOW_MS + 30_000
    assert retry_after_ms("soon", NOW_MS) is None and retry_after_ms(None, NOW_MS) is None


def test_retry_after_sets_the_earliest_next_try_within_the_window() -> None:
    policy = RetryPolicy(retry_for_ms=60_000, backoff_base_ms=100, backoff_max_ms=1000)
    step = policy.after_failure(
        None, now_ms=NOW_MS, reason="http_429", detail="", attempts=1, not_before_ms=NOW_MS + 5000
    )
    assert isinstance(step, Retry) and step.due_ms == NOW_MS + 5000
    late = policy.after_failure(
        None, now_ms=NOW_MS, reason="http_429", detail="", attempts=1, not_before_ms=NOW_MS + 10**9
    )
    assert isinstance(late, Retry) and late.due_ms == NOW_MS + 60_000


async def test_unreachable_server_is_transient_and_the_token_stays_secret() -> None:
    port = free_port()  # nothing listens there
    url = f"http://127.0.0.1:{port}/bot{TOKEN}/sendMessage"
    request = HttpRequest("POST", url, {}, b"{}", secrets=(TOKEN,))
    sender = HttpSender(2.0, lambda: NOW_MS)
    handed_over: list[bool] = []

    async def on_data() -> None:
        handed_over.append(True)

    try:
        with pytest.raises(HttpRetry) as caught:
            await sender.send(request, on_data)
    finally:
        await sender.close()
    assert caught.value.reason == "http_unavailable" and handed_over == [True]
    assert TOKEN not in str(caught.value)


# -- auto -------------------------------------------------------------------------------

ORDER = ("push", "telegram", "email")


def test_auto_picks_the_first_channel_with_consent_and_an_address() -> None:
    customer = {"email": "ann@example.com", "attributes": {"telegram_chat_id": "42"}}
    everything = {"push": "subscribed", "telegram": "subscribed", "email": "subscribed"}

    def chosen(consent: dict[str, str], carried: dict[str, str] | None = None, **kw: Any) -> Any:
        found = pick(
            ORDER,
            REGISTRY,
            marketing=kw.get("marketing", True),
            stored_consent=consent,
            carried_consent=carried or {},
            customer=kw.get("customer", customer),
            configured=kw.get("configured", lambda channel: True),
        )
        return None if found is None else (found.channel, found.address)

    # No push subscription: telegram is the first that can reach her.
    assert chosen(everything) == ("telegram", "42")
    # Telegram unsubscribed (by either side): email.
    assert chosen({**everything, "telegram": "unsubscribed"}) == ("email", "ann@example.com")
    assert chosen(everything, {"telegram": "unsubscribed"}) == ("email", "ann@example.com")
    # A provider that is not set up is skipped.
    skip_tg = {"configured": lambda channel: channel.name != "telegram"}
    assert chosen(everything, **skip_tg) == ("email", "ann@example.com")
    # No consent anywhere: nothing, unless the message is transactional.
    assert chosen({}) is None
    assert chosen({}, marketing=False) == ("telegram", "42")
    assert chosen(everything, customer={}) is None


def test_auto_and_unknown_channels_in_commands() -> None:
    validate(command("auto", channels=("push", "email")))
    for bad in ((), ("pigeon",)):
        with pytest.raises(InvalidMessage) as caught:
            validate(command("auto", channels=bad))
        assert caught.value.reason == "unsupported_channel"
    with pytest.raises(InvalidMessage, match="unsupported_channel"):
        validate(command("fax", "123"))
    validate(command("telegram"))  # its address is read when the message is due
    with pytest.raises(InvalidMessage, match="bad_recipient"):
        validate(command("email"))


def test_command_round_trips_its_webhook_and_channels() -> None:
    call = WebhookCall("https://hooks.test/in", "POST", {"X-A": "1"}, "{}")
    sent = command("auto", channels=("push", "email"), webhook=call)
    back = SendCommand.from_bytes(sent.to_bytes())
    assert back.channels == ("push", "email") and back.webhook == call


def test_registry_implements_every_named_channel() -> None:
    assert tuple(REGISTRY) == CHANNELS


# -- send step --------------------------------------------------------------------------


def test_send_step_channels() -> None:
    auto = SendStep.model_validate({"send": {"channel": "auto", "channels": ["push", "email"]}})
    assert auto.send.channels == ("push", "email")
    hook = SendStep.model_validate(
        {"send": {"channel": "webhook", "webhook": {"url": "https://h.test/x", "body": "{}"}}}
    )
    assert hook.send.webhook is not None and hook.send.webhook.call().url == "https://h.test/x"
    wrong = [
        {"channel": "auto"},
        {"channel": "email", "channels": ["push"]},
        {"channel": "auto", "channels": ["push", "push"]},
        {"channel": "auto", "channels": ["webhook"]},
        {"channel": "webhook"},
        {"channel": "webhook", "webhook": {"url": "https://h.test", "extra": 1}},
        {"channel": "webhook", "webhook": {"url": "https://h.test", "headers": {"A": "b\nc"}}},
        {"channel": "sms", "to": "seller"},
        {"channel": "fax"},
    ]
    for spec in wrong:
        with pytest.raises(ValidationError):
            SendStep.model_validate({"send": spec})


def test_flow_sends_carry_their_channel_parts_and_leave_addresses_to_delivery() -> None:
    plan = FlowPlan.parse(
        {
            "id": "multi",
            "trigger": {"event": "customer_created"},
            "steps": [
                {"send": {"channel": "auto", "channels": ["push", "telegram", "email"]}},
                {"send": {"channel": "telegram", "text": "Hi {{ customer.first_name }}"}},
                {"send": {"channel": "webhook", "webhook": {"url": "https://h.test/in"}}},
            ],
        }
    )
    # No email address: only an email send would wait for one.
    sim = Sim(plan, state=new_state(email=None))
    sim.apply(customer(ts=sim.now, first_name="Ann", consent={"telegram": "subscribed"}))
    auto, telegram, hook = sim.fire()
    assert (auto.channel, auto.channels, auto.recipient) == (
        "auto",
        ("push", "telegram", "email"),
        "",
    )
    assert (telegram.channel, telegram.recipient, telegram.message.text) == (
        "telegram",
        "",
        "Hi {{ customer.first_name }}",
    )
    assert (
        hook.webhook == WebhookCall("https://h.test/in") and hook.recipient == "https://h.test/in"
    )
    for sent in (auto, telegram, hook):
        validate(SendCommand.from_bytes(sent.to_bytes()))


async def test_a_request_timed_out_after_sending_is_retried_only_when_idempotent() -> None:
    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(1.0)
        return web.Response(text="late")

    app = web.Application()
    app.router.add_post("/slow", slow)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    sender = HttpSender(0.3, lambda: NOW_MS)
    url = f"http://127.0.0.1:{port}/slow"
    try:
        with pytest.raises(HttpRetry) as retried:
            await sender.send(HttpRequest("POST", url, {}, b"{}", idempotent=True))
        assert retried.value.reason == "http_timeout"
        with pytest.raises(HttpUncertain):
            await sender.send(HttpRequest("POST", url, {}, b"{}"))
    finally:
        await sender.close()
        await runner.cleanup()

"""HTTP on the stream worker: one-click unsubscribe (RFC 8058), double opt-in
confirmation, health, metrics.

A GET only shows a confirmation page (mail scanners follow links); a POST
unsubscribes at once: consent is cut in Redis, which the delivery worker checks at
send time, and the opt-out is published to ``customers`` for the table and others.
"""

from __future__ import annotations

import html
import logging
from typing import TYPE_CHECKING, Any

import orjson
from faust.web import Request, Response, View
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import SecretStr

from nudge.clock import Clock
from nudge.errors import InvalidToken
from nudge.signing import verify
from nudge.streams.waiting import UNAVAILABLE

if TYPE_CHECKING:
    from nudge.streams.app import Worker

log = logging.getLogger(__name__)

_PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>{title}</title>
<meta name="viewport" content="width=device-width"></head>
<body style="font-family:sans-serif;max-width:32rem;margin:4rem auto">{body}</body></html>"""


def _page(title: str, body: str) -> str:
    return _PAGE.format(title=html.escape(title), body=body)


def _invalid(view: View, exc: InvalidToken) -> Response:
    return view.html(_page("Link not valid", f"<p>This link is {exc}.</p>"), status=400)


def _unsubscribe_token(token: str, secret: SecretStr, now_ms: int) -> tuple[str, str]:
    """The customer and channel an unsubscribe link is for."""
    payload = verify(token, secret, now_ms)
    if payload.get("purpose") != "unsubscribe":
        raise InvalidToken("malformed")
    customer_id = payload.get("customer_id")
    if not isinstance(customer_id, str) or not customer_id:
        raise InvalidToken("malformed")
    return customer_id, str(payload.get("channel", "email"))


def _confirm_token(token: str, secret: SecretStr, now_ms: int) -> tuple[str, str]:
    """The customer and address a double opt-in link confirms."""
    payload = verify(token, secret, now_ms)
    customer_id, email = payload.get("customer_id"), payload.get("email")
    if payload.get("purpose") != "confirm" or not isinstance(customer_id, str) or not email:
        raise InvalidToken("malformed")
    return customer_id, str(email)


def register_views(worker: Worker, *, customers_topic: Any, clock: Clock) -> None:
    app = worker.app
    settings = worker.settings

    async def record_consent(
        customer_id: str, channel: str, value: str, *, event_id: str, **fields: Any
    ) -> None:
        """Publish a consent change to ``customers``, then copy it to Redis.

        The topic is the record, so it is written first and acknowledged before the
        page says "done"; the stream worker applies it to the state every later message
        is judged by, and to Redis. Redis gets it at once too: the delivery side takes
        the stricter of a message's consent and Redis's, so an opt-out must reach it
        before messages already on their way, and a confirmation must not wait behind
        a lagging "pending" there.
        """
        now = clock.now_ms()
        event = {
            "event_id": f"{event_id}:{now}",
            "customer_id": customer_id,
            "ts": now,
            "consent": {channel: value},
            "consent_ts": now,
            **fields,
        }
        ack = await customers_topic.send(key=customer_id.encode(), value=orjson.dumps(event))
        await ack
        try:
            await worker.shared.set_consent(customer_id, channel, value)
        except UNAVAILABLE as exc:
            log.warning("consent of %s recorded; Redis copy deferred: %s", customer_id, exc)

    def read_token(token: str) -> tuple[str, str]:
        return _unsubscribe_token(token, settings.secret_key, clock.now_ms())

    @app.page("/unsubscribe/{token}")
    class Unsubscribe(View):
        async def get(self, request: Request, token: str) -> Response:
            try:
                read_token(token)
            except InvalidToken as exc:
                return _invalid(self, exc)
            body = (
                "<h1>Unsubscribe?</h1><p>You will no longer receive these emails.</p>"
                '<form method="post">'
                '<button type="submit">Unsubscribe</button></form>'
            )
            return self.html(_page("Unsubscribe", body))

        async def post(self, request: Request, token: str) -> Response:
            try:
                customer_id, channel = read_token(token)
            except InvalidToken as exc:
                return _invalid(self, exc)
            await record_consent(
                customer_id,
                channel,
                "unsubscribed",
                event_id=f"unsubscribe:{customer_id}:{channel}",
            )
            log.info("unsubscribed %s from %s", customer_id, channel)
            return self.html(_page("Unsubscribed", "<h1>You are unsubscribed.</h1>"))

    def read_confirm_token(token: str) -> tuple[str, str]:
        return _confirm_token(token, settings.secret_key, clock.now_ms())

    @app.page("/confirm/{token}")
    class Confirm(View):
        """Double opt-in. A GET only shows the page (mail scanners follow links); the
        POST confirms: consent ``subscribed`` with its time and source, published to
        ``customers`` as evidence that outranks an earlier opt-out."""

        async def get(self, request: Request, token: str) -> Response:
            try:
                _, email = read_confirm_token(token)
            except InvalidToken as exc:
                return _invalid(self, exc)
            body = (
                "<h1>Confirm your subscription</h1>"
                f"<p>Send our emails to <strong>{html.escape(email)}</strong>?</p>"
                '<form method="post"><button type="submit">Yes, subscribe me</button></form>'
            )
            return self.html(_page("Confirm your subscription", body))

        async def post(self, request: Request, token: str) -> Response:
            try:
                customer_id, email = read_confirm_token(token)
            except InvalidToken as exc:
                return _invalid(self, exc)
            # The time and source make this evidence that outranks an earlier opt-out.
            await record_consent(
                customer_id, "email", "subscribed", event_id=f"confirm:{customer_id}",
                email=email, consent_source="double_opt_in",
            )  # fmt: skip
            log.info("double opt-in confirmed for %s", customer_id)
            return self.html(_page("Subscribed", "<h1>Thank you, you are subscribed.</h1>"))

    @app.page("/health")
    async def health(self: View, request: Request) -> Response:
        recovering = bool(getattr(app, "in_recovery", False))
        starting = not worker.registry.ready.is_set() or app.rebalancing or recovering
        waiting = worker.waits.describe()
        ready = not starting and not waiting
        body = {
            "status": "ok" if ready else "starting" if starting else "waiting",
            "recovering_tables": recovering,
            "waiting_for": waiting,
            "triggers": len(worker.registry.current),
            "rejected_triggers": worker.registry.rejections,
            "pending_timers": len(worker.processor.due),
            "partitions_replaying": len(worker.progress.holes()),
        }
        return self.json(body, status=200 if ready else 503)

    @app.page("/metrics")
    async def metrics(self: View, request: Request) -> Response:
        # aiohttp wants the charset apart from the content type
        body = generate_latest(worker.metrics.registry).decode()
        return self.text(
            body, content_type=CONTENT_TYPE_LATEST.split(";", 1)[0] + "; version=0.0.4"
        )

"""The tracking endpoints: ``GET /o/<ref>.gif`` (open pixel), ``GET /c/<ref>/<sig>?u=``
(click redirect). The links are made by ``nudge.delivery.tracking``.

They are served by the stream worker, beside /unsubscribe and /confirm, because
``NUDGE_PUBLIC_URL`` (the default ``NUDGE_TRACKING_URL``) already names its HTTP server,
and it holds the two things a hit needs: Redis, where the delivery worker recorded each
sent message under its ref, and a producer for the ``engagement`` topic. The delivery
worker's port serves only its health and metrics, and needs no public address.

Neither answer waits for Redis or the broker: the pixel is the same 43 bytes for
every ref, and where a click goes depends only on its signature (see ``redirects``).
The lookup and the publish run after the answer, in a task; a failure is logged with
the event, never dropped silently. A ref not on record, or a click whose signature
does not hold, records nothing.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from faust.web import Request, Response, View
from redis.exceptions import RedisError

from nudge.clock import Clock
from nudge.delivery.machine import Action
from nudge.delivery.redirects import RedirectPolicy
from nudge.delivery.sent_messages import SentMessages
from nudge.delivery.tracking import PIXEL_GIF, engagement_event, valid_click
from nudge.signing import key_bytes

if TYPE_CHECKING:
    from nudge.streams.app import Worker

log = logging.getLogger(__name__)

#: Nothing on the way (mail proxies, browsers) may answer a later hit from a cache.
NO_CACHE = {
    "Cache-Control": "no-store, no-cache, must-revalidate, max-age=0",
    "Pragma": "no-cache",
    "Expires": "0",
}
#: Hits recorded at most at once; beyond it (the broker or Redis hanging) a hit is
#: logged and dropped rather than let pending tasks grow without bound.
MAX_PENDING = 10_000


@dataclass(frozen=True, slots=True)
class Hit:
    """One request on a tracking link, as it came."""

    action: Action
    ref: str
    now_ms: int
    agent: str | None
    url: str | None
    head: bool


class Recorder:
    """Looks a ref up and publishes its engagement event, in the background."""

    def __init__(self, sent: SentMessages, engagement_topic: Any, clock: Clock) -> None:
        self.sent = sent
        self.topic = engagement_topic
        self.clock = clock
        self.pending: set[asyncio.Task[None]] = set()

    def record(self, action: Action, ref: str, request: Request, url: str | None) -> None:
        """Record a hit on ``ref`` after the answer; the time and agent are the request's."""
        if len(self.pending) >= MAX_PENDING:
            log.warning("%s of %s not recorded: %d hits already pending", action, ref, MAX_PENDING)
            return
        agent = request.headers.get("User-Agent")
        hit = Hit(action, ref, self.clock.now_ms(), agent, url, head=request.method == "HEAD")
        task = asyncio.create_task(self._record(hit))
        self.pending.add(task)
        task.add_done_callback(self.pending.discard)

    async def _record(self, hit: Hit) -> None:
        try:
            sent = await self.sent.lookup(hit.ref)
        except RedisError as exc:
            log.warning("%s of %s not recorded: Redis: %s", hit.action, hit.ref, exc)
            return
        if sent is None:
            return  # forged, mistyped, or past the record's TTL
        event = engagement_event(
            hit.action, sent, now_ms=hit.now_ms, user_agent=hit.agent, url=hit.url, head=hit.head
        )
        try:
            ack = await self.topic.send(key=sent.customer_id.encode(), value=event.to_bytes())
            await ack
        except Exception as exc:  # any producer failure: the event is in the log line
            log.warning("engagement event not published (%s): %s", exc, event.to_bytes().decode())


def register_tracking_views(worker: Worker, *, engagement_topic: Any, clock: Clock) -> None:
    app = worker.app
    settings = worker.settings
    key = key_bytes(settings.secret_key)
    policy = RedirectPolicy(settings.shop_url, settings.redirect_hosts())
    sent = SentMessages(worker.redis, settings.redis_namespace)
    recorder = Recorder(sent, engagement_topic, clock)

    @app.page("/o/{name}")
    class OpenPixel(View):
        async def get(self, request: Request, name: str) -> Response:
            ref = name.removesuffix(".gif")
            if settings.track_opens and ref != name:
                recorder.record("opened", ref, request, None)
            return self.bytes(PIXEL_GIF, content_type="image/gif", headers=dict(NO_CACHE))

    @app.page("/c/{ref}/{sig}")
    class Click(View):
        async def get(self, request: Request, ref: str, sig: str) -> Response:
            target = request.query.get("u")
            signed = valid_click(key, ref, sig, target)
            location = policy.destination(target, signed=signed)
            if signed and settings.track_clicks:
                recorder.record("clicked", ref, request, target)
            headers = {**NO_CACHE, "Location": location, "Referrer-Policy": "no-referrer"}
            return self.bytes(b"", status=302, headers=headers)

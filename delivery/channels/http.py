"""The HTTP machinery every channel but email stands on: one request, judged.

What an answer means is decided by pure functions (``judge``, ``retry_after_ms``), so
the rules are tested without a server:

* 2xx: delivered;
* 429 and 5xx: transient, retried through the deferred queue with backoff; a 429's
  ``Retry-After`` (seconds or an HTTP date) is the earliest next try;
* any other status: permanent, the message ends ``failed`` with the status and an
  excerpt of the body.

A request that never reached the server (refused, DNS, connect timeout) is transient.
One that was sent and then timed out or lost its connection may have been acted on:
for a receiver that dedupes by idempotency key (``HttpRequest.idempotent``, webhooks)
it is simply retried; for the others it is ``DeliveryUncertain``, which the send ledger
and ``NUDGE_UNCERTAIN_POLICY`` handle as for an SMTP connection lost after DATA.

Secrets (bot tokens in URLs, auth headers) never reach a log line or a delivery event:
every detail goes through ``HttpRequest.redact``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime

import aiohttp

from nudge.delivery.smtp import DeliveryUncertain
from nudge.errors import PermanentError, TransientError

#: How much of an answer's body a failure keeps: enough to read the provider's error.
EXCERPT_CHARS = 300
_READ_BYTES = 4096

DataHook = Callable[[], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class HttpRequest:
    method: str
    url: str
    headers: Mapping[str, str]
    body: bytes
    #: the receiver dedupes by the request's idempotency key: a request that timed out
    #: after it was sent is retried rather than judged uncertain
    idempotent: bool = False
    #: strings that must never appear in a log line or an event (tokens)
    secrets: tuple[str, ...] = field(default=(), repr=False)
    #: a provider's own check of a 2xx answer (Viber says "failed" in a 200's body)
    accept: Callable[[HttpAnswer], None] | None = field(default=None, compare=False)

    def redact(self, text: str) -> str:
        for secret in self.secrets:
            if secret:
                text = text.replace(secret, "***")
        return text


@dataclass(frozen=True, slots=True)
class HttpAnswer:
    status: int
    body: str
    retry_after: str | None = None


class HttpRetry(TransientError):
    """Worth another try later; ``not_before_ms`` from a ``Retry-After``, if any."""

    def __init__(self, reason: str, detail: str, not_before_ms: int | None = None) -> None:
        self.reason = reason
        self.not_before_ms = not_before_ms
        super().__init__(detail)


class HttpRejected(PermanentError):
    def __init__(self, status: int, detail: str) -> None:
        self.status = status
        self.reason = f"http_{status}"
        super().__init__(detail)


class HttpUncertain(DeliveryUncertain):
    """Sent, then no answer: the receiver may have acted on it."""


def excerpt(body: str) -> str:
    flat = " ".join(body.split())
    return flat if len(flat) <= EXCERPT_CHARS else flat[: EXCERPT_CHARS - 1] + "\u2026"


def retry_after_ms(value: str | None, now_ms: int) -> int | None:
    """The instant a ``Retry-After`` header names (delta seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return now_ms + int(value) * 1000
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if moment.tzinfo is None:
        return None
    return max(int(moment.timestamp() * 1000), now_ms)


def judge(answer: HttpAnswer, now_ms: int) -> None:
    """Return for a delivered request; raise ``HttpRetry`` or ``HttpRejected``."""
    if 200 <= answer.status < 300:
        return
    detail = f"HTTP {answer.status}: {excerpt(answer.body)}".rstrip(": ")
    if answer.status == 429:
        raise HttpRetry("http_429", detail, retry_after_ms(answer.retry_after, now_ms))
    if answer.status >= 500:
        # A 503 may say when to come back too (RFC 9110 15.6.4).
        raise HttpRetry(f"http_{answer.status}", detail, retry_after_ms(answer.retry_after, now_ms))
    raise HttpRejected(answer.status, detail)


class HttpSender:
    """One pooled aiohttp session for every HTTP channel; made on first use."""

    def __init__(self, timeout_s: float, now_ms: Callable[[], int]) -> None:
        # A connect timeout of its own: a request that never connected is known unsent.
        self.timeout = aiohttp.ClientTimeout(total=timeout_s, sock_connect=timeout_s / 2)
        self.now_ms = now_ms
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self.timeout)
        return self._session

    async def send(self, request: HttpRequest, on_data: DataHook | None = None) -> HttpAnswer:
        """Make the call; ``on_data`` runs right before the request goes out (the send
        ledger's hand-over: past it, the receiver may have the message)."""
        if on_data is not None:
            await on_data()
        try:
            answer = await self._exchange(request)
        except (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError) as exc:
            # Never connected: nothing was sent.
            raise HttpRetry("http_unavailable", request.redact(_describe(exc))) from None
        except (TimeoutError, aiohttp.ClientError) as exc:
            detail = request.redact(_describe(exc))
            if request.idempotent:
                raise HttpRetry("http_timeout", detail) from None
            raise HttpUncertain(detail) from None
        answer = HttpAnswer(answer.status, request.redact(answer.body), answer.retry_after)
        judge(answer, self.now_ms())
        if request.accept is not None:
            request.accept(answer)
        return answer

    async def _exchange(self, request: HttpRequest) -> HttpAnswer:
        async with self._client().request(
            request.method, request.url, data=request.body, headers=dict(request.headers)
        ) as response:
            raw = await response.content.read(_READ_BYTES)
            return HttpAnswer(
                response.status,
                raw.decode("utf-8", "replace"),
                response.headers.get("Retry-After"),
            )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def _describe(exc: BaseException) -> str:
    # The type alone for a bare timeout; aiohttp's messages name host and port, never
    # the path, but they still go through ``redact``.
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__

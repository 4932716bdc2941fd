"""One send command from policy to SMTP accept; no Kafka here (see ``worker``).

Order matters: the ledger is consulted first (a redelivered, already sent command must
not be re-judged by today's consent), then policy, then rendering, then one send under
a claim that records when DATA begins (see ``idempotency``). Channels other than email
(``channels``) render into one HTTP request, sent under the same claim: its hand-over is
the moment the request goes out.

Nothing here waits out a transient failure: it comes back as a ``retry`` outcome and
the worker parks the command in the deferred queue with a backoff, so that one bad
message or an SMTP outage never holds a Kafka partition.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Protocol

from redis.asyncio import Redis
from redis.exceptions import RedisError

from nudge.clock import Clock
from nudge.delivery.cap import CapArbiter
from nudge.delivery.channel_choice import ChannelChoice, text_of
from nudge.delivery.channels import AUTO, REGISTRY
from nudge.delivery.channels.http import HttpRequest, HttpSender
from nudge.delivery.composer import EMAIL, Composer
from nudge.delivery.context import Recommender, merge_customer
from nudge.delivery.idempotency import Claim, ClaimState, SendLedger, stage_of
from nudge.delivery.message import OutgoingMessage
from nudge.delivery.metrics import DeliveryMetrics
from nudge.delivery.outcome import Outcome, reason_of
from nudge.delivery.policy import (
    QuietHours,
    decide,
    effective_consent,
    local_day,
    parse_quiet_hours,
)
from nudge.delivery.sent_messages import SentMessages
from nudge.delivery.smtp import DeliveryUncertain, SmtpRejected, Transport
from nudge.delivery.suppression import Suppressions, bounce_key
from nudge.errors import PermanentError, TransientError
from nudge.models.commands import SendCommand
from nudge.promo import PoolEmpty, PromoCode, PromoPools
from nudge.settings import Settings
from nudge.shared_state import SharedState

if TYPE_CHECKING:
    from nudge.delivery.dkim import DkimSigner

log = logging.getLogger(__name__)

# How long a send waits for another send of the same command (a duplicate in the same
# batch, mostly) before it hands over to the retry path instead of holding its slot.
_HELD_WAIT_S = 2.0
_HELD_POLL_S = 0.1


class LiveFlow(Protocol):
    @property
    def enabled(self) -> bool: ...


class TriggerLookup(Protocol):
    """What the ``TriggerRegistry`` offers: a flow's current definition by id."""

    def get(self, trigger_id: str) -> LiveFlow | None: ...


class NoTriggers:
    def get(self, trigger_id: str) -> LiveFlow | None:
        return None


@dataclass(frozen=True, slots=True)
class _Facts:
    ledger: ClaimState | None
    profile: dict[str, Any] | None
    consent: str | None
    hard_bounced: bool


def carried_consent(command: SendCommand) -> str | None:
    """``context.customer.consent[channel]``: what the stream worker knew at fire time."""
    consent = command.context.customer.get("consent")
    value = consent.get(command.channel) if isinstance(consent, dict) else None
    return value if isinstance(value, str) else None


class Deliverer:
    def __init__(
        self,
        settings: Settings,
        redis: Redis,
        transport: Transport,
        shared: SharedState,
        triggers: TriggerLookup,
        clock: Clock,
        ledger: SendLedger,
        recommender: Recommender,
        metrics: DeliveryMetrics,
        dkim: DkimSigner | None = None,
        suppressions: Suppressions | None = None,
    ) -> None:
        self.settings = settings
        self.redis = redis
        self.transport = transport
        self.shared = shared
        self.triggers = triggers
        self.clock = clock
        self.ledger = ledger
        self.recommender = recommender
        self.metrics = metrics
        self.quiet: QuietHours | None = parse_quiet_hours(settings.quiet_hours)
        self.resend_uncertain = settings.uncertain_policy == "resend"
        self.promos = PromoPools(redis, settings.redis_namespace)
        self.arbiter = CapArbiter(redis, shared.key, round(settings.cap_hold * 1000))
        self.sent = SentMessages(redis, settings.redis_namespace)
        self.http = HttpSender(settings.http_timeout_s, clock.now_ms)
        #: Publishes a hard bounce in the SMTP dialogue (consent and engagement), through
        #: the worker's producer. Without it only the Redis key is written.
        self.suppressions = suppressions
        self.composer = Composer(settings, clock, shared, recommender, dkim)
        self._empty_pools_warned: set[str] = set()
        self.channels = ChannelChoice(settings, redis, shared, ledger)

    async def close(self) -> None:
        await self.http.close()

    # -- Redis-side facts the policy needs ------------------------------------
    def _bounce_key(self, command: SendCommand) -> str:
        return bounce_key(self.shared, command.customer_id, command.channel, command.seller_id)

    def _cap_key(self, command: SendCommand, tz_name: str | None) -> str:
        day = local_day(tz_name, self.clock.now_ms())
        return self.shared.key("freq", command.customer_id, command.channel, day)

    async def _facts(self, command: SendCommand) -> _Facts:
        """Everything the first steps read, in one Redis round trip instead of four.

        Reads only, so fetching them together changes nothing about the order in which
        they are judged (ledger first): consent is still read per command, at send time.
        """
        pipe = self.redis.pipeline(transaction=False)
        pipe.get(self.ledger.key(command.id))
        pipe.get(self.shared.profile_key(command.customer_id))
        if command.marketing:
            pipe.hget(self.shared.consent_key(command.customer_id), command.channel)
        pipe.get(self._bounce_key(command))
        results = await pipe.execute()
        ledger_raw, profile_raw = results[0], results[1]
        consent_raw = results[2] if command.marketing else None
        bounced = text_of(results[-1])
        return _Facts(
            ledger=self.ledger.state_of(ledger_raw),
            profile=self.shared.decode_profile(profile_raw),
            consent=text_of(consent_raw),
            # Bounces belong to an address: a customer who changed it may be mailed again.
            hard_bounced=bounced is not None and bounced.lower() == command.recipient.lower(),
        )

    # -- the steps -------------------------------------------------------------
    async def deliver(self, command: SendCommand) -> Outcome:
        if command.channel == AUTO:
            resolved = await self.channels.resolve_auto(command)
            if isinstance(resolved, Outcome):
                return resolved
            return replace(await self.deliver(resolved), channel=resolved.channel)
        facts = await self._facts(command)
        state = facts.ledger
        if state is ClaimState.SENT:
            return Outcome("duplicate", "already_sent")
        if state is ClaimState.UNCERTAIN and not self.resend_uncertain:
            return self._uncertain_skipped("found a lapsed claim past DATA")

        trigger = self.triggers.get(command.trigger_id)
        if trigger is not None and not trigger.enabled and command.marketing:
            return Outcome("suppressed", "trigger_disabled")
        customer = merge_customer(command, facts.profile)
        channel = REGISTRY[command.channel]
        if command.channel != EMAIL:
            ready = self.channels.ready(channel, command, customer)
            if isinstance(ready, Outcome):
                return ready
            command = ready
        # A webhook calls a system, not a person: judged like a transactional message.
        marketing = command.marketing and channel.personal
        tz_name = customer.get("timezone") if isinstance(customer.get("timezone"), str) else None
        cap = self.settings.frequency_cap_per_day if marketing else 0
        cap_key = self._cap_key(command, tz_name)
        decision = decide(
            marketing=marketing,
            # Re-read on every try, retries and quiet-hours wakes included, so that an
            # unsubscribe arriving while a message waits stops it.
            consent=effective_consent(carried_consent(command), facts.consent),
            hard_bounced=facts.hard_bounced,
            # The cap is the last rule, and the INCR below enforces it atomically with
            # the same outcome ("frequency_cap"), so reading the counter first (one more
            # round trip, its key needs the profile's timezone) would add nothing.
            sent_today=0,
            frequency_cap=cap,
            quiet=self.quiet,
            tz_name=tz_name,
            now_ms=self.clock.now_ms(),
        )
        if decision.action == "suppress":
            return Outcome("suppressed", decision.reason)
        if decision.action == "defer":
            return Outcome("deferred", decision.reason, until_ms=decision.until_ms)

        if cap:
            now = self.clock.now_ms()
            verdict = await self.arbiter.contend(command, cap, cap_key, tz_name, now)
            if verdict.action == "suppress":
                return Outcome("suppressed", verdict.reason)
            if verdict.action == "defer":
                return Outcome("deferred", verdict.reason, until_ms=verdict.until_ms)
        outcome = await self._render_and_send(command, customer)
        if cap and outcome.status != "sent":
            await self.redis.decr(cap_key)
        return outcome

    async def _promo(self, command: SendCommand) -> PromoCode | None:
        """The message's promo code: the same one on every try and replay."""
        wanted = command.promo
        if wanted is None:
            return None
        try:
            return await self.promos.claim(
                wanted.pool, command.id, wanted.ttl_ms, self.clock.now_ms()
            )
        except PoolEmpty:
            if wanted.pool not in self._empty_pools_warned:
                self._empty_pools_warned.add(wanted.pool)
                log.warning(
                    "promo pool %r is empty: its messages fail with promo_pool_empty until "
                    "codes are added (nudge promo import / generate)",
                    wanted.pool,
                )
            raise

    async def _render_and_send(self, command: SendCommand, customer: dict[str, Any]) -> Outcome:
        try:
            promo = await self._promo(command)
        except PoolEmpty as exc:
            return Outcome("failed", "promo_pool_empty", detail=str(exc))
        try:
            message = await self.composer.compose(command, customer, promo)
        except PermanentError as exc:
            return Outcome("failed", reason_of(exc), detail=str(exc)[:1000])
        return await self._send(command, message)

    # -- the send ----------------------------------------------------------------
    async def _send(self, command: SendCommand, message: OutgoingMessage | HttpRequest) -> Outcome:
        """One SMTP transaction (or HTTP request) under a claim; transient trouble
        becomes ``retry``."""
        held = await self._claim(command)
        if isinstance(held, Outcome):
            return held
        claim = held

        async def handing_over() -> None:
            nonlocal claim
            claim = await self.ledger.handing_over(command.id, claim)

        started = time.perf_counter()
        try:
            if isinstance(message, HttpRequest):
                await self.http.send(message, on_data=handing_over)
            else:
                await self.transport.send(message, on_data=handing_over)
        except DeliveryUncertain as exc:
            return await self._uncertain(command, claim, exc)
        except (TransientError, RedisError) as exc:
            # Not accepted, and known so (4xx, refused, dropped or timed out before DATA,
            # Redis down at DATA, claim lost): give the id back and try again later.
            await self._release(claim, command.id)
            # A 429's or 503's Retry-After: the earliest next try.
            not_before = getattr(exc, "not_before_ms", None)
            return Outcome("retry", reason_of(exc), 1, str(exc)[:1000], until_ms=not_before)
        except PermanentError as exc:
            await self._release(claim, command.id)
            if isinstance(exc, SmtpRejected) and exc.hard_bounce:
                await self._hard_bounced(command, str(exc))
            return Outcome("failed", reason_of(exc), 1, str(exc)[:1000])
        except Exception:
            # A bug, not an SMTP answer: nothing suggests the server took it. (On
            # cancellation the claim stays and lapses: mid-send, the stage tells.)
            await self._release(claim, command.id)
            raise
        self.metrics.send_seconds.observe(time.perf_counter() - started)
        marked, remembered = await asyncio.gather(
            self.ledger.mark_sent(command.id), self._remember(command), return_exceptions=True
        )
        if isinstance(marked, BaseException):
            if not isinstance(marked, RedisError):
                raise marked
            # The server has it; the lingering ``data`` entry reads as uncertain should
            # the command come again, which by default is not resent either.
            log.warning("sent %s but could not record it in the ledger", command.id)
        if isinstance(remembered, BaseException):
            if not isinstance(remembered, RedisError):
                raise remembered
            log.warning("sent %s but could not record it for bounces and tracking", command.id)
        return Outcome("sent", "", 1)

    async def _hard_bounced(self, command: SendCommand, detail: str) -> None:
        """The server refused the recipient (5xx): that address gets no more mail."""
        if self.suppressions is None:
            await self.redis.set(self._bounce_key(command), command.recipient)
            return
        await self.suppressions.hard_bounce(self.composer.record(command), detail)

    async def _remember(self, command: SendCommand) -> None:
        await self.sent.remember(self.composer.ref(command), self.composer.record(command))

    async def _claim(self, command: SendCommand) -> Claim | Outcome:
        loop = asyncio.get_running_loop()
        give_up = loop.time() + _HELD_WAIT_S
        while True:
            try:
                claim = await self.ledger.claim(command.id, take_uncertain=self.resend_uncertain)
            except RedisError as exc:
                return Outcome("retry", reason_of(exc), 0, str(exc)[:1000])
            if claim.state is ClaimState.CLAIMED:
                if claim.replaced:
                    self._taken_over(command, claim)
                return claim
            if claim.state is ClaimState.SENT:
                return Outcome("duplicate", "already_sent")
            if claim.state is ClaimState.UNCERTAIN:
                return self._uncertain_skipped("found a lapsed claim past DATA")
            # IN_FLIGHT: the same command is being sent right now (a duplicate in this
            # batch, or another worker mid-rebalance). Wait a moment for its outcome,
            # then look again later rather than hold this slot.
            if loop.time() >= give_up:
                return Outcome("retry", "claim_held", 0, "another send of it is in flight")
            await asyncio.sleep(_HELD_POLL_S)

    def _taken_over(self, command: SendCommand, claim: Claim) -> None:
        stage = stage_of(claim.replaced)
        self.metrics.claims_taken_over.labels(stage=stage).inc()
        if stage != "claimed":
            self.metrics.uncertain.labels(action="resent").inc()
        log.warning("took over lapsed claim %r of %s", claim.replaced, command.id)

    def _uncertain_skipped(self, detail: str) -> Outcome:
        self.metrics.uncertain.labels(action="skipped").inc()
        return Outcome("failed", "interrupted_uncertain", detail=detail)

    async def _uncertain(self, command: SendCommand, claim: Claim, exc: Exception) -> Outcome:
        """The connection died after DATA began: the server may have the message."""
        detail = str(exc)[:1000]
        if not self.resend_uncertain:
            # The claim stays at ``data``: no later copy of the command sends it either.
            self.metrics.uncertain.labels(action="skipped").inc()
            return Outcome("failed", "interrupted_uncertain", 1, detail)
        self.metrics.uncertain.labels(action="resent").inc()
        await self._release(claim, command.id)
        return Outcome("retry", "interrupted_uncertain", 1, detail)

    async def _release(self, claim: Claim, command_id: str) -> None:
        try:
            await self.ledger.release(claim, command_id)
        except RedisError:
            # Harmless: the claim lapses after the lease and is taken over then.
            log.warning("could not release the claim on %s", command_id)

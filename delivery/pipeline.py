"""One send command from policy to SMTP accept; no Kafka here (see ``worker``).

Order matters: the ledger is consulted first (a redelivered, already sent command must
not be re-judged by today's consent), then policy, then rendering, then the send with
a claim per attempt, so that a claim is only ever held while an SMTP transaction runs.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from email.utils import parseaddr
from typing import Any, Literal, Protocol

from redis.asyncio import Redis

from delivery.context import Recommender, build_context, merge_customer
from delivery.idempotency import ClaimState, SendLedger
from delivery.links import utm_params
from delivery.message import OutgoingMessage, build_message
from delivery.metrics import DeliveryMetrics
from delivery.policy import QuietHours, decide, local_day, parse_quiet_hours
from delivery.render import Footer, Renderer
from delivery.smtp import SmtpRejected, Transport
from models.commands import SendCommand
from models.triggers import CHANNELS, TriggerDef
from nudge.clock import Clock
from nudge.errors import InvalidMessage, PermanentError, TransientError
from nudge.settings import Settings
from nudge.shared_state import SharedState
from nudge.signing import sign, unsubscribe_payload

log = logging.getLogger(__name__)

Status = Literal["sent", "failed", "suppressed", "deferred", "duplicate"]

_MAX_BACKOFF_S = 30.0


class TriggerLookup(Protocol):
    """What the lead's ``TriggerRegistry`` offers; anything with ``get`` will do."""

    def get(self, trigger_id: str) -> TriggerDef | None: ...


class NoTriggers:
    def get(self, trigger_id: str) -> TriggerDef | None:
        return None


@dataclass(frozen=True, slots=True)
class Outcome:
    status: Status
    reason: str = ""
    attempts: int = 0
    detail: str = ""
    until_ms: int | None = None


@dataclass(frozen=True, slots=True)
class _Facts:
    ledger: ClaimState | None
    profile: dict[str, Any] | None
    consent: str | None
    hard_bounced: bool


def _text(raw: object) -> str | None:
    return raw.decode() if isinstance(raw, bytes) else None if raw is None else str(raw)


def reason_of(exc: BaseException) -> str:
    return str(getattr(exc, "reason", "") or type(exc).__name__)


def validate(command: SendCommand) -> None:
    """Field checks ``from_bytes`` does not do; failing ones go to the dead-letter topic."""
    for name in ("id", "trigger_id", "kind", "customer_id", "recipient"):
        value = getattr(command, name)
        if not isinstance(value, str) or not value.strip():
            raise InvalidMessage("bad_send_command", f"{name} must be a non-empty string")
    if not isinstance(command.step, int) or isinstance(command.step, bool):
        raise InvalidMessage("bad_send_command", "step must be an integer")
    if not isinstance(command.context, dict):
        raise InvalidMessage("bad_send_command", "context must be an object")
    if command.channel not in CHANNELS:
        raise InvalidMessage("unsupported_channel", repr(command.channel))
    if "@" not in parseaddr(command.recipient)[1]:
        raise InvalidMessage("bad_recipient", repr(command.recipient)[:200])


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
        self.renderer = Renderer()
        self.quiet: QuietHours | None = parse_quiet_hours(settings.quiet_hours)
        self.sender_name = parseaddr(settings.mail_from)[0] or settings.mail_from

    # -- Redis-side facts the policy needs ------------------------------------
    def _bounce_key(self, command: SendCommand) -> str:
        return self.shared.key("bounce", command.customer_id, command.channel)

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
        bounced = _text(results[-1])
        return _Facts(
            ledger=self.ledger.state_of(ledger_raw),
            profile=self.shared.decode_profile(profile_raw),
            consent=_text(consent_raw),
            # Bounces belong to an address: a customer who changed it may be mailed again.
            hard_bounced=bounced is not None and bounced.lower() == command.recipient.lower(),
        )

    def unsubscribe_url(self, command: SendCommand) -> str:
        token = sign(
            unsubscribe_payload(command.customer_id, command.channel),
            self.settings.secret_key,
            self.clock.now_ms(),
            self.settings.unsubscribe_ttl_days * 86400,
        )
        return f"{self.settings.public_url.rstrip('/')}/unsubscribe/{token}"

    # -- the steps -------------------------------------------------------------
    async def deliver(self, command: SendCommand) -> Outcome:
        facts = await self._facts(command)
        state = facts.ledger
        if state is ClaimState.SENT:
            return Outcome("duplicate", "already_sent")
        if state is ClaimState.UNCERTAIN:
            return Outcome("failed", "interrupted_uncertain", detail="found a stale claim")

        trigger = self.triggers.get(command.trigger_id)
        if trigger is not None and not trigger.enabled and command.marketing:
            return Outcome("suppressed", "trigger_disabled")
        customer = merge_customer(command, facts.profile)
        tz_name = customer.get("timezone") if isinstance(customer.get("timezone"), str) else None
        cap = self.settings.frequency_cap_per_day if command.marketing else 0
        cap_key = self._cap_key(command, tz_name)
        decision = decide(
            marketing=command.marketing,
            consent=facts.consent,
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

        # Reserve a slot of today's cap atomically; the check above was only a read,
        # and concurrent commands for one customer would otherwise all pass it.
        if cap:
            pipe = self.redis.pipeline(transaction=False)
            pipe.incr(cap_key)
            pipe.expire(cap_key, 2 * 86400)
            reserved, _ = await pipe.execute()
            if reserved > cap:
                await self.redis.decr(cap_key)
                return Outcome("suppressed", "frequency_cap")
        outcome = await self._render_and_send(command, trigger, customer)
        if cap and outcome.status != "sent":
            await self.redis.decr(cap_key)
        return outcome

    async def _render_and_send(
        self, command: SendCommand, trigger: TriggerDef | None, customer: dict[str, Any]
    ) -> Outcome:
        unsubscribe = self.unsubscribe_url(command) if command.marketing else ""
        utm = utm_params(
            self.settings.utm_source, self.settings.utm_medium, command.trigger_id, command.kind
        )
        try:
            context = await build_context(
                command,
                customer=customer,
                trigger=trigger,
                shared=self.shared,
                recommender=self.recommender,
                utm=utm,
                unsubscribe_url=unsubscribe,
                shop_url=self.settings.shop_url,
                sender={
                    "name": self.sender_name,
                    "email": parseaddr(self.settings.mail_from)[1],
                    "postal_address": self.settings.postal_address,
                },
            )
            rendered = self.renderer.render(
                trigger.message_for(command.step) if trigger else None,
                kind=command.kind,
                step=command.step,
                context=context,
                utm=utm,
                footer=Footer(self.sender_name, self.settings.postal_address, unsubscribe or None),
            )
            message = build_message(
                rendered,
                command_id=command.id,
                mail_from=self.settings.mail_from,
                recipient=command.recipient,
                unsubscribe_url=unsubscribe or None,
                now_ms=self.clock.now_ms(),
            )
        except PermanentError as exc:
            return Outcome("failed", reason_of(exc), detail=str(exc)[:1000])
        return await self._send_with_retries(command, message)

    async def _send_with_retries(self, command: SendCommand, message: OutgoingMessage) -> Outcome:
        attempts = 0
        loop = asyncio.get_running_loop()
        wait_until = loop.time() + self.ledger.lease_ms / 1000 + 2
        while True:
            claim = await self.ledger.claim(command.id)
            if claim.state is ClaimState.SENT:
                return Outcome("duplicate", "already_sent", attempts)
            if claim.state is ClaimState.UNCERTAIN:
                return Outcome("failed", "interrupted_uncertain", attempts)
            if claim.state is ClaimState.IN_FLIGHT:
                # The same command is being sent right now (a duplicate in this batch, or
                # another worker mid-rebalance): wait for its outcome instead of racing.
                if loop.time() > wait_until:
                    return Outcome("failed", "interrupted_uncertain", attempts, "claim held")
                await asyncio.sleep(0.2)
                continue
            attempts += 1
            started = time.perf_counter()
            try:
                await self.transport.send(message)
            except TransientError as exc:
                await self.ledger.release(claim, command.id)
                if attempts >= self.settings.send_max_attempts:
                    return Outcome("failed", "max_attempts", attempts, str(exc)[:1000])
                self.metrics.retries.inc()
                delay = min(self.settings.send_backoff_s * 2 ** (attempts - 1), _MAX_BACKOFF_S)
                log.info("send %s failed (%s), retry in %.2fs", command.id, exc, delay)
                await asyncio.sleep(delay)
                continue
            except PermanentError as exc:
                if reason_of(exc) != "interrupted_uncertain":
                    # Definitely not accepted; DeliveryUncertain keeps its claim instead,
                    # so that no later redelivery sends what the server may already have.
                    await self.ledger.release(claim, command.id)
                if isinstance(exc, SmtpRejected) and exc.hard_bounce:
                    await self.redis.set(self._bounce_key(command), command.recipient)
                return Outcome("failed", reason_of(exc), attempts, str(exc)[:1000])
            except Exception:
                # A bug, not an SMTP answer: nothing suggests the server took it. (On
                # cancellation the claim stays: mid-send, that outcome is unknown.)
                await self.ledger.release(claim, command.id)
                raise
            self.metrics.send_seconds.observe(time.perf_counter() - started)
            await self.ledger.mark_sent(command.id)
            return Outcome("sent", "", attempts)

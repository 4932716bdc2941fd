"""Which channel a command goes out on, and to which address, decided when it is due.

A channel other than email needs its provider set up and the customer's address on it,
read now (the current profile), so a chat id added after the flow started counts.
``channel: auto`` is resolved here on every try from what is known now: the first
channel of its order that is set up, has consent and has an address.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

from redis.asyncio import Redis

from nudge.delivery.channels import REGISTRY, Channel, NotConfigured
from nudge.delivery.channels.auto import NO_CHANNEL, pick
from nudge.delivery.context import merge_customer
from nudge.delivery.idempotency import ClaimState, SendLedger
from nudge.delivery.outcome import Outcome
from nudge.models.commands import SendCommand
from nudge.settings import Settings
from nudge.shared_state import SharedState

log = logging.getLogger(__name__)


def text_of(raw: object) -> str | None:
    return raw.decode() if isinstance(raw, bytes) else None if raw is None else str(raw)


class ChannelChoice:
    def __init__(
        self, settings: Settings, redis: Redis, shared: SharedState, ledger: SendLedger
    ) -> None:
        self.settings = settings
        self.redis = redis
        self.shared = shared
        self.ledger = ledger
        self._unconfigured_warned: set[str] = set()

    def configured(self, channel: Channel) -> NotConfigured | None:
        """None when the channel's provider is set up; else what is missing (logged once)."""
        try:
            channel.required(self.settings)
        except NotConfigured as exc:
            if channel.name not in self._unconfigured_warned:
                self._unconfigured_warned.add(channel.name)
                log.warning("channel %s: %s; its messages fail until it is", channel.name, exc)
            return exc
        return None

    def ready(
        self, channel: Channel, command: SendCommand, customer: dict[str, Any]
    ) -> SendCommand | Outcome:
        """A non-email command with its provider set up and its address, looked up
        now (the customer's current one) when the command did not carry it."""
        missing = self.configured(channel)
        if missing is not None:
            return Outcome("failed", "channel_not_configured", detail=str(missing))
        if command.recipient:
            return command
        address = channel.address(customer)
        if not address:
            return Outcome("suppressed", "no_address", detail=f"no {channel.address_field}")
        return replace(command, recipient=address)

    async def resolve_auto(self, command: SendCommand) -> SendCommand | Outcome:
        """``channel: auto`` as a command for the channel chosen now (the ledger, keyed
        by command id, still sends it once whichever channel a try picks)."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.get(self.ledger.key(command.id))
        pipe.get(self.shared.profile_key(command.customer_id))
        pipe.hgetall(self.shared.consent_key(command.customer_id))
        ledger_raw, profile_raw, consent_raw = await pipe.execute()
        if self.ledger.state_of(ledger_raw) is ClaimState.SENT:
            return Outcome("duplicate", "already_sent")
        carried = command.context.customer.get("consent")
        chosen = pick(
            command.channels,
            REGISTRY,
            marketing=command.marketing,
            stored_consent={text_of(k) or "": text_of(v) or "" for k, v in consent_raw.items()},
            carried_consent=carried if isinstance(carried, dict) else {},
            customer=merge_customer(command, self.shared.decode_profile(profile_raw)),
            configured=lambda channel: self.configured(channel) is None,
        )
        if chosen is None:
            tried = ", ".join(command.channels)
            return Outcome("suppressed", NO_CHANNEL, detail=f"none of {tried} can reach them")
        return replace(command, channel=chosen.channel, recipient=chosen.address)

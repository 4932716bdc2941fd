"""At most one email per send command id, across redeliveries, restarts and rebalances.

Each command id has a Redis key: ``sending:<owner>:<ts_ms>`` while one worker holds it,
``sent:<ts_ms>`` once the SMTP server accepted the message. A claim left ``sending`` by
someone else for longer than the lease means that worker died mid-send: the server may
or may not have the message, and since we never send twice, it is reported, not resent.
"""

from __future__ import annotations

import enum
import os
import socket
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from redis.asyncio import Redis

from nudge.clock import Clock

DEFAULT_TTL_S = 30 * 24 * 3600
DEFAULT_LEASE_MS = 60_000

# Delete only our own claim: a stale worker must not free a claim it no longer holds.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


class ClaimState(enum.Enum):
    CLAIMED = "claimed"
    SENT = "sent"
    IN_FLIGHT = "in_flight"
    UNCERTAIN = "uncertain"


@dataclass(frozen=True, slots=True)
class Claim:
    state: ClaimState
    token: str = ""


def default_owner() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


class SendLedger:
    def __init__(
        self,
        redis: Redis,
        key: Callable[..., str],
        clock: Clock,
        *,
        owner: str | None = None,
        lease_ms: int = DEFAULT_LEASE_MS,
        ttl_s: int = DEFAULT_TTL_S,
    ) -> None:
        self.redis = redis
        self._key = key
        self.clock = clock
        self.owner = owner or default_owner()
        self.lease_ms = lease_ms
        self.ttl_s = ttl_s

    def key(self, command_id: str) -> str:
        return self._key("sent", command_id)

    async def claim(self, command_id: str) -> Claim:
        token = f"sending:{self.owner}:{self.clock.now_ms()}"
        if await self.redis.set(self.key(command_id), token, nx=True, ex=self.ttl_s):
            return Claim(ClaimState.CLAIMED, token)
        state = await self.peek(command_id)
        if state is None:  # released between our SET and GET: just try again
            return await self.claim(command_id)
        return Claim(state)

    async def peek(self, command_id: str) -> ClaimState | None:
        """The state someone else left, without claiming; None when the id is free."""
        return self.state_of(await self.redis.get(self.key(command_id)))

    def state_of(self, raw: bytes | str | None) -> ClaimState | None:
        """``peek`` on a value already read (the pipeline reads it with other facts)."""
        if raw is None:
            return None
        value = raw.decode() if isinstance(raw, bytes) else str(raw)
        if value.startswith("sent"):
            return ClaimState.SENT
        holder, _, ts = value.removeprefix("sending:").rpartition(":")
        try:
            age = self.clock.now_ms() - int(ts)
        except ValueError:
            age = self.lease_ms + 1
        # Our own claim is always live: this process releases or completes it.
        if holder == self.owner or age <= self.lease_ms:
            return ClaimState.IN_FLIGHT
        return ClaimState.UNCERTAIN

    async def mark_sent(self, command_id: str) -> None:
        await self.redis.set(self.key(command_id), f"sent:{self.clock.now_ms()}", ex=self.ttl_s)

    async def release(self, claim: Claim, command_id: str) -> None:
        """Give the id back after a failure known to have happened before the accept."""
        if claim.state is ClaimState.CLAIMED:
            await self.redis.eval(_RELEASE, 1, self.key(command_id), claim.token)

"""At most one email per send command id, across redeliveries, restarts and rebalances.

Each command id has one Redis key whose value says how far its send got:

``claimed:<owner>:<ts>``  a worker holds the id; the message has not reached the server
``data:<owner>:<ts>``     DATA began at ``ts``: from here on the server may have it
``sent:<ts>``             the server accepted it

A claim older than its lease means its holder died (or lost Redis) mid-send:

* a lapsed ``claimed`` entry never reached the server, so it is taken over with a
  compare-and-set and sent again. Should the old holder still be alive, its own
  compare-and-set at DATA (``handing_over``) fails and it aborts before the body goes
  out: exactly one of them hands the message over, however long either one stalled;
* a lapsed ``data`` entry is the one truly uncertain case: the server may or may not
  have the message. ``NUDGE_UNCERTAIN_POLICY`` decides; by default it is not resent.

Entries written before stages existed (``sending:<owner>:<ts>``) are read as ``data``:
their writer held them across the whole SMTP transaction, so a lapsed one may have been
delivered. Liveness is by age alone, whoever the holder: a claim this process failed to
release (Redis hiccup) lapses like any other instead of blocking the id forever.

The two stages have leases of their own. Taking over a ``claimed`` entry is safe at any
age (the fence above), so its lease is short and only spares a slow but live holder a
needless abort; it bounds how long a crashed worker's unsent messages wait. A ``data``
entry's lease must outlast a real DATA exchange, or a live send would look uncertain.
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
from nudge.errors import TransientError

DEFAULT_TTL_S = 30 * 24 * 3600
DEFAULT_LEASE_MS = 60_000  # ``data`` (and pre-stage ``sending``) entries
DEFAULT_CLAIM_LEASE_MS = 15_000  # ``claimed`` entries
# Each round either decides or saw someone else change the key; more than a few in a
# row means heavy contention on one id, and the caller treats it as "held".
_CLAIM_ROUNDS = 5

CLAIMED, DATA, SENT, LEGACY = "claimed", "data", "sent", "sending"

# Replace the value only if it is still the one we read (or hold): the fence between a
# takeover and the old holder's DATA.
_SWAP = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
  return 1
end
return 0
"""

# Delete only our own claim: a stale worker must not free a claim it no longer holds.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


class ClaimState(enum.Enum):
    CLAIMED = "claimed"  # ours: returned by ``claim`` only
    SENT = "sent"
    IN_FLIGHT = "in_flight"  # held by someone (maybe us) within the lease
    STALE = "stale"  # a lapsed claim that never reached DATA: safe to take over
    UNCERTAIN = "uncertain"  # a lapsed claim past DATA: the server may have it


@dataclass(frozen=True, slots=True)
class Claim:
    state: ClaimState
    token: str = ""
    #: the lapsed value this claim took over; empty for a fresh claim
    replaced: str = ""

    @property
    def stage(self) -> str:
        return self.token.partition(":")[0]


class ClaimLost(TransientError):
    """Our claim was taken over (it lapsed) before DATA: the message was not handed over."""

    reason = "claim_lost"


def default_owner() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


def stage_of(value: str) -> str:
    return value.partition(":")[0]


def _text(raw: bytes | str) -> str:
    return raw.decode() if isinstance(raw, bytes) else str(raw)


class SendLedger:
    def __init__(
        self,
        redis: Redis,
        key: Callable[..., str],
        clock: Clock,
        *,
        owner: str | None = None,
        lease_ms: int = DEFAULT_LEASE_MS,
        claim_lease_ms: int = DEFAULT_CLAIM_LEASE_MS,
        ttl_s: int = DEFAULT_TTL_S,
    ) -> None:
        self.redis = redis
        self._key = key
        self.clock = clock
        self.owner = owner or default_owner()
        self.lease_ms = lease_ms
        self.claim_lease_ms = claim_lease_ms
        self.ttl_s = ttl_s

    def key(self, command_id: str) -> str:
        return self._key("sent", command_id)

    def _token(self, stage: str) -> str:
        return f"{stage}:{self.owner}:{self.clock.now_ms()}"

    async def claim(self, command_id: str, *, take_uncertain: bool = False) -> Claim:
        """Hold ``command_id`` for one send, taking over a lapsed pre-DATA claim (and a
        lapsed post-DATA one when ``take_uncertain``); otherwise say who has it."""
        key = self.key(command_id)
        for _ in range(_CLAIM_ROUNDS):
            token = self._token(CLAIMED)
            if await self.redis.set(key, token, nx=True, ex=self.ttl_s):
                return Claim(ClaimState.CLAIMED, token)
            raw = await self.redis.get(key)
            state = self.state_of(raw)
            if state is None:  # released between our SET and GET: try again
                continue
            assert raw is not None
            if state is ClaimState.STALE or (state is ClaimState.UNCERTAIN and take_uncertain):
                if await self._swap(key, _text(raw), token):
                    return Claim(ClaimState.CLAIMED, token, replaced=_text(raw))
                continue  # another worker took it over first: look again
            return Claim(state)
        return Claim(ClaimState.IN_FLIGHT)

    async def peek(self, command_id: str) -> ClaimState | None:
        """The state someone else left, without claiming; None when the id is free."""
        return self.state_of(await self.redis.get(self.key(command_id)))

    def state_of(self, raw: bytes | str | None) -> ClaimState | None:
        """``peek`` on a value already read (the pipeline reads it with other facts)."""
        if raw is None:
            return None
        value = _text(raw)
        stage = stage_of(value)
        if stage == SENT:
            return ClaimState.SENT
        lease = self.claim_lease_ms if stage == CLAIMED else self.lease_ms
        try:
            age = self.clock.now_ms() - int(value.rpartition(":")[2])
        except ValueError:
            age = lease + 1  # unreadable: judge it as lapsed, by its stage
        if age <= lease:
            return ClaimState.IN_FLIGHT
        # ``data``, the pre-stage ``sending`` and anything unknown may have been sent.
        return ClaimState.STALE if stage == CLAIMED else ClaimState.UNCERTAIN

    async def handing_over(self, command_id: str, claim: Claim) -> Claim:
        """Record that DATA begins; raises ``ClaimLost`` if the claim was taken over.

        Called by the transport right before the body goes out: past this point a crash
        leaves an uncertain entry, before it a resendable one.
        """
        token = self._token(DATA)
        if not await self._swap(self.key(command_id), claim.token, token):
            raise ClaimLost(f"claim on {command_id} was taken over before DATA")
        return Claim(ClaimState.CLAIMED, token, claim.replaced)

    async def mark_sent(self, command_id: str) -> None:
        # Unconditional: the server's accept is the truth, whoever holds the key now.
        await self.redis.set(self.key(command_id), f"{SENT}:{self.clock.now_ms()}", ex=self.ttl_s)

    async def release(self, claim: Claim, command_id: str) -> None:
        """Give the id back after a failure known to have happened before the accept."""
        if claim.state is ClaimState.CLAIMED:
            await self.redis.eval(_RELEASE, 1, self.key(command_id), claim.token)

    async def _swap(self, key: str, expected: str, new: str) -> bool:
        return bool(await self.redis.eval(_SWAP, 1, key, expected, new, self.ttl_s))

"""Commands parked until a due time, durably, in Redis: quiet hours and retries.

A sorted set scores command ids by due time; a hash holds the raw command bytes and a
second hash the ``RetryState`` of commands that failed transiently (absent for the
others, and for entries written before retries were parked here). Taking due entries
pushes their score one lease into the future instead of removing them, so a worker that
dies mid-way leaves them to be taken again; the send ledger makes that retake harmless.
``done`` removes an entry once it reached a final outcome.

The lease is short, so a crashed worker's entries come back within seconds, and the
worker renews the leases of entries it still works on (a send stuck in SMTP timeouts).
A renewal is a compare-and-set on the score: an entry re-parked meanwhile, with a due
time of its own, keeps it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from redis.asyncio import Redis

from nudge.delivery.retry import RetryState

# How long a taken entry stays with its taker without a renewal: the delay after which
# a crashed worker's entries are taken again.
DEFAULT_LEASE_MS = 30_000

_TAKE = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
local out = {}
for _, id in ipairs(due) do
  redis.call('ZADD', KEYS[1], ARGV[3], id)
  local raw = redis.call('HGET', KEYS[2], id)
  if raw then
    table.insert(out, id)
    table.insert(out, raw)
    table.insert(out, redis.call('HGET', KEYS[3], id))
  else
    redis.call('ZREM', KEYS[1], id)
  end
end
return out
"""

# ARGV: the new score, then (id, score it was taken with) pairs. Returns the renewed ids.
_RENEW = """
local renewed = {}
for i = 2, #ARGV, 2 do
  local score = redis.call('ZSCORE', KEYS[1], ARGV[i])
  if score and tonumber(score) == tonumber(ARGV[i + 1]) then
    redis.call('ZADD', KEYS[1], ARGV[1], ARGV[i])
    table.insert(renewed, ARGV[i])
  end
end
return renewed
"""


@dataclass(frozen=True, slots=True)
class DeferredEntry:
    command_id: str
    raw: bytes
    retry: RetryState | None = None
    leased_until_ms: int = 0  # the score taking it set: what a renewal compares


class DeferredQueue:
    def __init__(
        self, redis: Redis, key: Callable[..., str], *, lease_ms: int = DEFAULT_LEASE_MS
    ) -> None:
        self.redis = redis
        self.zkey = key("deferred", "due")
        self.hkey = key("deferred", "commands")
        self.rkey = key("deferred", "retries")
        self.lease_ms = lease_ms

    async def add(
        self, command_id: str, raw: bytes, due_ms: int, retry: RetryState | None = None
    ) -> None:
        """Park a command; a retry state already stored is kept when none is given
        (a retried command that then waits for quiet hours keeps its window)."""
        pipe = self.redis.pipeline(transaction=True)
        pipe.hset(self.hkey, command_id, raw)
        if retry is not None:
            pipe.hset(self.rkey, command_id, retry.to_json())
        pipe.zadd(self.zkey, {command_id: due_ms})
        await pipe.execute()

    async def take_due(self, now_ms: int, limit: int = 500) -> list[DeferredEntry]:
        until_ms = now_ms + self.lease_ms
        flat = await self.redis.eval(
            _TAKE, 3, self.zkey, self.hkey, self.rkey, now_ms, limit, until_ms
        )
        entries = []
        for i in range(0, len(flat), 3):
            retry = RetryState.from_json(flat[i + 2])
            entries.append(DeferredEntry(_text(flat[i]), bytes(flat[i + 1]), retry, until_ms))
        return entries

    async def renew(self, leases: dict[str, int], now_ms: int) -> dict[str, int]:
        """Extend the leases still held (id -> score taken with); the new scores of
        those renewed. An entry finished or re-parked meanwhile is left alone."""
        if not leases:
            return {}
        until_ms = now_ms + self.lease_ms
        args: list[str | int] = [until_ms]
        for command_id, held_ms in leases.items():
            args += [command_id, held_ms]
        renewed = await self.redis.eval(_RENEW, 1, self.zkey, *args)
        return {_text(cid): until_ms for cid in renewed}

    async def retry_state(self, command_id: str) -> RetryState | None:
        """The window a command already used, when a replayed copy of it fails again."""
        return RetryState.from_json(await self.redis.hget(self.rkey, command_id))

    async def next_due_ms(self) -> int | None:
        """The earliest due time (a leased entry counts at its lease's end)."""
        first = await self.redis.zrange(self.zkey, 0, 0, withscores=True)
        return int(first[0][1]) if first else None

    async def done(self, command_id: str) -> None:
        pipe = self.redis.pipeline(transaction=True)
        pipe.zrem(self.zkey, command_id)
        pipe.hdel(self.hkey, command_id)
        pipe.hdel(self.rkey, command_id)
        await pipe.execute()

    async def size(self) -> int:
        return int(await self.redis.zcard(self.zkey))


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)

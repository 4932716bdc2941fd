"""Commands parked until a due time, durably, in Redis: quiet hours and retries.

A sorted set scores command ids by due time; a hash holds the raw command bytes and a
second hash the ``RetryState`` of commands that failed transiently (absent for the
others, and for entries written before retries were parked here). Taking due entries
pushes their score one lease into the future instead of removing them, so a worker that
dies mid-way leaves them to be taken again; the send ledger makes that retake harmless.
``done`` removes an entry once it reached a final outcome.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from redis.asyncio import Redis

from delivery.retry import RetryState

# Long enough for a full retry pass to get through the SMTP pool even when every send
# runs into its timeouts; a crashed worker's entries come back after it.
DEFAULT_LEASE_MS = 300_000

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


@dataclass(frozen=True, slots=True)
class DeferredEntry:
    command_id: str
    raw: bytes
    retry: RetryState | None = None


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
        flat = await self.redis.eval(
            _TAKE, 3, self.zkey, self.hkey, self.rkey, now_ms, limit, now_ms + self.lease_ms
        )
        entries = []
        for i in range(0, len(flat), 3):
            cid = flat[i].decode() if isinstance(flat[i], bytes) else str(flat[i])
            retry = RetryState.from_json(flat[i + 2])
            entries.append(DeferredEntry(cid, bytes(flat[i + 1]), retry))
        return entries

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

"""Commands held back (quiet hours) until a due time, durably, in Redis.

A sorted set scores command ids by due time; a hash holds the raw command bytes. Taking
due entries pushes their score one lease into the future instead of removing them, so
a worker that dies mid-way leaves them to be taken again; the send ledger makes that
retake harmless. ``done`` removes an entry once it reached a final outcome.
"""

from __future__ import annotations

from collections.abc import Callable

from redis.asyncio import Redis

_TAKE = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
local out = {}
for _, id in ipairs(due) do
  redis.call('ZADD', KEYS[1], ARGV[3], id)
  local raw = redis.call('HGET', KEYS[2], id)
  if raw then
    table.insert(out, id)
    table.insert(out, raw)
  else
    redis.call('ZREM', KEYS[1], id)
  end
end
return out
"""


class DeferredQueue:
    def __init__(self, redis: Redis, key: Callable[..., str], *, lease_ms: int = 120_000) -> None:
        self.redis = redis
        self.zkey = key("deferred", "due")
        self.hkey = key("deferred", "commands")
        self.lease_ms = lease_ms

    async def add(self, command_id: str, raw: bytes, due_ms: int) -> None:
        pipe = self.redis.pipeline(transaction=True)
        pipe.hset(self.hkey, command_id, raw)
        pipe.zadd(self.zkey, {command_id: due_ms})
        await pipe.execute()

    async def take_due(self, now_ms: int, limit: int = 100) -> list[tuple[str, bytes]]:
        flat = await self.redis.eval(
            _TAKE, 2, self.zkey, self.hkey, now_ms, limit, now_ms + self.lease_ms
        )
        pairs = []
        for i in range(0, len(flat), 2):
            cid = flat[i].decode() if isinstance(flat[i], bytes) else str(flat[i])
            pairs.append((cid, bytes(flat[i + 1])))
        return pairs

    async def done(self, command_id: str) -> None:
        pipe = self.redis.pipeline(transaction=True)
        pipe.zrem(self.zkey, command_id)
        pipe.hdel(self.hkey, command_id)
        await pipe.execute()

    async def size(self) -> int:
        return int(await self.redis.zcard(self.zkey))

"""The frequency cap's slots, given by priority rather than first come, first served.

A marketing message that passed consent and quiet hours, for a customer under a cap,
first enters contention and waits ``NUDGE_CAP_HOLD``: every message of that customer
that enters within a hold of it is arbitrated together. When its hold is over, its rank
among them, highest ``priority`` first (then the earliest to enter, then the id),
decides: a rank below the slots left today takes one; the others follow their flow's
``on_cap``, deferred to the customer's next day or skipped. So a welcome (priority 50)
and a price drop (priority 60) that come due a minute apart under a one-a-day cap send
the price drop, whichever was first.

Contenders live in Redis, per customer and channel: a sorted set by entry time and a
hash of ``priority`` per id. A message leaves when it is decided; one whose worker died
comes back through the deferred queue and is decided then, and entries older than a day
are dropped.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from redis.asyncio import Redis

from nudge.delivery.policy import SEND, Decision, next_local_day_ms
from nudge.models.commands import SendCommand

_FORGET_AFTER_MS = 86_400_000

# KEYS: contenders zset, priorities hash. ARGV: id, now, priority, forget-before.
# Enters the id unless it is in already (a retry keeps its entry time); returns it.
_ENTER = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[4])
local entered = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not entered then
  redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
  redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
  entered = ARGV[2]
end
redis.call('PEXPIRE', KEYS[1], ARGV[5])
redis.call('PEXPIRE', KEYS[2], ARGV[5])
return entered
"""


@dataclass(frozen=True, slots=True)
class Entry:
    command_id: str
    entered_ms: int
    priority: int

    def rank_key(self) -> tuple[int, int, str]:
        return (-self.priority, self.entered_ms, self.command_id)


class CapArbiter:
    def __init__(self, redis: Redis, key: Callable[..., str], hold_ms: int) -> None:
        self.redis = redis
        self.key = key
        self.hold_ms = hold_ms

    def _keys(self, command: SendCommand) -> tuple[str, str]:
        base = (command.customer_id, command.channel)
        return self.key("cap-contenders", *base), self.key("cap-priorities", *base)

    async def contend(
        self, command: SendCommand, cap: int, used_key: str, tz_name: str | None, now_ms: int
    ) -> Decision:
        """Send (a slot of today's cap is taken), or why not now: the message waits out
        its hold, or lost to higher priorities and follows ``on_cap``."""
        if self.hold_ms > 0:
            hold_ends = await self.enter(command, now_ms)
            if now_ms < hold_ends:
                return Decision("defer", "cap_hold", hold_ends)
            used, ahead = await self.standing(command, used_key)
            if used + ahead >= cap:
                await self.leave(command)
                return capped(command, tz_name, now_ms)
        # Take the slot atomically; the standing above was only a read, and concurrent
        # commands for one customer would otherwise all pass it.
        if await self.take_slot(command, used_key) > cap:
            await self.redis.decr(used_key)
            return capped(command, tz_name, now_ms)
        return SEND

    async def enter(self, command: SendCommand, now_ms: int) -> int:
        """Enter the message in contention (once); when its hold ends, epoch ms."""
        zkey, hkey = self._keys(command)
        entered = await self.redis.eval(
            _ENTER, 2, zkey, hkey, command.id, now_ms, command.priority,
            now_ms - _FORGET_AFTER_MS, 2 * _FORGET_AFTER_MS,
        )  # fmt: skip
        return int(float(entered)) + self.hold_ms

    async def standing(self, command: SendCommand, used_key: str) -> tuple[int, int]:
        """(slots used today, contenders ahead of this message): those that entered
        within a hold of it and rank higher. Read in one transaction, so a winner taking
        its slot and leaving is seen either wholly or not at all."""
        zkey, hkey = self._keys(command)
        pipe = self.redis.pipeline(transaction=True)
        pipe.get(used_key)
        pipe.zscore(zkey, command.id)
        pipe.zrange(zkey, 0, -1, withscores=True)
        pipe.hgetall(hkey)
        used_raw, mine, members, priorities = await pipe.execute()
        used = int(used_raw or 0)
        if mine is None:
            return used, 0  # forgotten meanwhile: nothing to compare with
        me = Entry(command.id, int(mine), command.priority)
        ahead = 0
        for raw_id, score in members:
            other_id = raw_id.decode() if isinstance(raw_id, bytes) else str(raw_id)
            if other_id == command.id or abs(int(score) - me.entered_ms) > self.hold_ms:
                continue
            raw = priorities.get(raw_id) or priorities.get(other_id)
            other = Entry(other_id, int(score), int(raw) if raw is not None else 0)
            if other.rank_key() < me.rank_key():
                ahead += 1
        return used, ahead

    async def take_slot(self, command: SendCommand, used_key: str) -> int:
        """Use one of today's slots and leave contention, atomically; the slots used."""
        zkey, hkey = self._keys(command)
        pipe = self.redis.pipeline(transaction=True)
        pipe.incr(used_key)
        pipe.expire(used_key, 2 * 86400)
        pipe.zrem(zkey, command.id)
        pipe.hdel(hkey, command.id)
        used, *_ = await pipe.execute()
        return int(used)

    async def leave(self, command: SendCommand) -> None:
        zkey, hkey = self._keys(command)
        pipe = self.redis.pipeline(transaction=True)
        pipe.zrem(zkey, command.id)
        pipe.hdel(hkey, command.id)
        await pipe.execute()


def capped(command: SendCommand, tz_name: str | None, now_ms: int) -> Decision:
    """No slot today: tomorrow (the customer's), unless the flow says skip or the
    message would be stale by then."""
    tomorrow = next_local_day_ms(tz_name, now_ms)
    late = command.expires_at_ms is not None and tomorrow > command.expires_at_ms
    if command.on_cap == "skip" or late:
        return Decision("suppress", "frequency_cap")
    return Decision("defer", "frequency_cap", tomorrow)

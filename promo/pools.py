"""Pools of promo codes in Redis.

Per pool, three keys: ``available`` (a set of codes not given yet), ``known`` (every
code ever loaded, so a re-import never puts a given code back) and ``given`` (a hash
from message id to ``code|expires_ms``). A claim is one Lua script, so it is atomic:
a message that already has a code gets it back; otherwise one code moves from
``available`` to ``given``. Two messages can never draw the same code, and a replayed
message draws none anew.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from redis.asyncio import Redis

from nudge.errors import NudgeError

POOL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{2,63}$")
#: Letters and digits that cannot be mistaken for one another in print.
_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"

_CLAIM = """
local given = redis.call('HGET', KEYS[2], ARGV[1])
if given then return given end
local code = redis.call('SPOP', KEYS[1])
if not code then return false end
local value = code .. '|' .. ARGV[2]
redis.call('HSET', KEYS[2], ARGV[1], value)
return value
"""


class PoolEmpty(NudgeError):
    """The pool has no code left to give."""

    def __init__(self, pool: str) -> None:
        self.pool = pool
        super().__init__(f"promo pool {pool!r} has no codes left")


@dataclass(frozen=True, slots=True)
class PromoCode:
    code: str
    #: epoch ms; None when the code does not expire
    expires_at: int | None

    def as_context(self) -> dict[str, Any]:
        return {"code": self.code, "expires_at": self.expires_at}


class PromoPools:
    def __init__(self, redis: Redis, namespace: str) -> None:
        self.redis = redis
        self.namespace = namespace
        self._claim = redis.register_script(_CLAIM)

    def _key(self, pool: str, part: str) -> str:
        return f"{self.namespace}:promo:{pool}:{part}"

    async def add(self, pool: str, codes: Iterable[str]) -> tuple[int, int]:
        """Load codes; returns (added, already known). A known code is never re-added,
        so importing a file twice, or after codes were given, gives nothing twice."""
        check_pool_name(pool)
        added = known = 0
        for chunk in _chunks(list(dict.fromkeys(codes)), 1000):
            pipe = self.redis.pipeline(transaction=False)
            for code in chunk:
                pipe.sadd(self._key(pool, "known"), code)
            fresh = [code for code, new in zip(chunk, await pipe.execute(), strict=True) if new]
            if fresh:
                await self.redis.sadd(self._key(pool, "available"), *fresh)
            added += len(fresh)
            known += len(chunk) - len(fresh)
        return added, known

    async def exists(self, pool: str) -> bool:
        return bool(await self.redis.exists(self._key(pool, "known")))

    async def available(self, pool: str) -> int:
        return int(await self.redis.scard(self._key(pool, "available")))

    async def claim(self, pool: str, message_id: str, ttl_ms: int | None, now_ms: int) -> PromoCode:
        """The message's code: drawn once, the same on every replay."""
        expires = "" if ttl_ms is None else str(now_ms + ttl_ms)
        keys = [self._key(pool, "available"), self._key(pool, "given")]
        raw = await self._claim(keys=keys, args=[message_id, expires])
        if raw is None:
            raise PoolEmpty(pool)
        text = raw.decode() if isinstance(raw, bytes) else str(raw)
        code, _, expires_at = text.rpartition("|")
        return PromoCode(code, int(expires_at) if expires_at else None)


def check_pool_name(pool: str) -> None:
    if not POOL_NAME.match(pool):
        raise NudgeError(f"bad pool name {pool!r}: letters, digits, '_', '.', '-', at most 64")


def generate_codes(count: int, *, prefix: str = "", length: int = 8) -> list[str]:
    """``count`` distinct random codes: ``prefix`` then ``length`` unambiguous characters."""
    if count < 1 or not 4 <= length <= 32:
        raise NudgeError("--count must be at least 1 and --length from 4 to 32")
    codes: set[str] = set()
    while len(codes) < count:
        codes.add(prefix + "".join(secrets.choice(_ALPHABET) for _ in range(length)))
    return sorted(codes)


def read_codes(path: Path) -> tuple[list[str], list[str]]:
    """Codes from a file, one per line (a CSV's first column); returns (codes, problems
    with their line numbers). Blank lines and a ``code`` header are skipped."""
    codes: list[str] = []
    problems: list[str] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        value = line.split(",", 1)[0].strip().strip('"')
        if not value or (number == 1 and value.lower() == "code"):
            continue
        if CODE.match(value):
            codes.append(value)
        else:
            problems.append(
                f"line {number}: {value[:40]!r} is not a code (3-64 letters, digits, -, _)"
            )
    return codes, problems


def _chunks(items: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]

"""What the last import of a source produced, per product, in one Redis hash.

The key lives in the deployment's namespace like every SharedState key
(``<namespace>:import:catalog:<source digest>``). Each field is a product id; its value
is ``"<hash> <price> <available 0|1> <currency>"``: the short hash says whether anything
changed, and the rest is the previous state that price drops and returns to stock are
judged against.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import orjson
import redis

from imports.errors import FeedError


@dataclass(frozen=True, slots=True)
class Known:
    digest: str
    price: float
    available: bool
    currency: str

    def encode(self) -> str:
        return f"{self.digest} {self.price!r} {int(self.available)} {self.currency}"

    @classmethod
    def decode(cls, raw: bytes) -> Known | None:
        parts = raw.decode().split(" ")
        try:
            return cls(parts[0], float(parts[1]), parts[2] == "1", parts[3])
        except (IndexError, ValueError):
            return None  # an unreadable entry counts as unknown: the product is re-sent


def fingerprint(record: dict[str, Any], payload: bytes | None = None) -> Known:
    """``payload``, when given, is ``record`` as it will be produced: hashing those bytes
    saves serialising twice. ``build_record`` fixes the key order, so equal records
    give equal bytes."""
    data = payload if payload is not None else orjson.dumps(record)
    digest = hashlib.blake2b(data, digest_size=8)
    return Known(digest.hexdigest(), record["price"], record["available"], record["currency"])


def source_key(namespace: str, source: str) -> str:
    digest = hashlib.sha1(source.encode(), usedforsecurity=False).hexdigest()[:16]
    return f"{namespace}:import:catalog:{digest}"


class FingerprintStore:
    """Reads a batch at a time; writes only what the broker acknowledged."""

    def __init__(self, client: redis.Redis, key: str) -> None:
        self.client = client
        self.key = key
        self._staged: dict[bytes, str] = {}
        self._ready: dict[bytes, str] = {}

    @classmethod
    def connect(cls, url: str, key: str) -> FingerprintStore:
        client = redis.Redis.from_url(url, socket_timeout=30)
        try:
            client.ping()
        except redis.RedisError as exc:
            raise FeedError(f"cannot reach Redis at {url}: {exc}") from None
        return cls(client, key)

    def get_many(self, product_ids: list[str]) -> list[Known | None]:
        raws: list[bytes | None] = self.client.hmget(self.key, product_ids)  # type: ignore[assignment]
        return [Known.decode(raw) if raw else None for raw in raws]

    def stage(self, key: bytes, known: Known) -> None:
        """Remember ``known`` for ``key`` once its record is delivered."""
        self._staged[key] = known.encode()

    def confirm(self, keys: list[bytes]) -> None:
        for key in keys:
            value = self._staged.pop(key, None)
            if value is not None:
                self._ready[key] = value
        if len(self._ready) >= 5000:
            self.write()

    def write(self) -> None:
        if self._ready:
            self.client.hset(self.key, mapping=self._ready)  # type: ignore[arg-type]
            self._ready = {}

    def close(self) -> None:
        self.client.close()

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
from itertools import chain
from typing import Any

import hiredis
import redis

from nudge.imports.errors import FeedError

WRITE_EVERY = 20_000


@dataclass(frozen=True, slots=True)
class Known:
    digest: str
    price: float
    available: bool
    currency: str

    @classmethod
    def decode(cls, raw: bytes) -> Known | None:
        parts = raw.decode().split(" ")
        try:
            return cls(parts[0], float(parts[1]), parts[2] == "1", parts[3])
        except (IndexError, ValueError):
            return None  # an unreadable entry counts as unknown: the product is re-sent


def state_of(record: dict[str, Any]) -> bytes:
    """The part of a fingerprint after the hash: ``b"<price> <available 0|1> <currency>"``.

    The feed reader process computes it, as it holds the record; the importer adds the
    hash (see :func:`encoded_fingerprint`), as it has the spare CPU."""
    available = "1" if record["available"] else "0"
    return f"{record['price']!r} {available} {record['currency']}".encode()


def encoded_fingerprint(payload: bytes, state: bytes) -> bytes:
    """``b"<digest> <price> <available 0|1> <currency>"``, from the record as produced
    and its :func:`state_of`: compared to what Redis holds without decoding either
    (equal bytes: unchanged), and stored as is. ``build_record`` fixes the key order,
    so equal records give equal bytes."""
    return hashlib.blake2b(payload, digest_size=8).hexdigest().encode() + b" " + state


def source_key(namespace: str, source: str) -> str:
    digest = hashlib.sha1(source.encode(), usedforsecurity=False).hexdigest()[:16]
    return f"{namespace}:import:catalog:{digest}"


class _Packer:
    """Commands packed by hiredis at once. redis-py's own packer first copies every
    argument through a generator, which an HSET of 20,000 fields pays 40,000 times;
    this store only sends str and bytes. A first argument with a space ("CLIENT
    SETINFO") is split as redis-py does."""

    def pack(self, *args: Any) -> list[bytes]:
        if isinstance(args[0], str) and " " in args[0]:
            args = (*args[0].split(), *args[1:])
        return [hiredis.pack_command(args)]


class FingerprintStore:
    """Reads a batch at a time; writes only what the broker acknowledged."""

    def __init__(self, client: redis.Redis, key: str) -> None:
        self.client = client
        self.key = key
        self._staged: dict[bytes, bytes] = {}
        self._ready: dict[bytes, bytes] = {}

    @classmethod
    def connect(cls, url: str, key: str) -> FingerprintStore:
        client = redis.Redis.from_url(url, socket_timeout=30, command_packer=_Packer())
        try:
            client.ping()
        except redis.RedisError as exc:
            raise FeedError(f"cannot reach Redis at {url}: {exc}") from None
        return cls(client, key)

    def get_many(self, product_ids: list[bytes]) -> list[bytes | None]:
        """The stored fingerprints as Redis holds them (see :func:`encoded_fingerprint`)."""
        if not product_ids:
            return []  # HMGET needs at least one field
        raws: list[bytes | None] = self.client.hmget(self.key, product_ids)  # type: ignore[assignment]
        return raws

    def stage(self, key: bytes, encoded: bytes) -> None:
        """Remember ``encoded`` for ``key`` once its record is delivered."""
        self._staged[key] = encoded

    def confirm(self, keys: list[bytes]) -> None:
        staged, ready = self._staged, self._ready
        for key in keys:
            value = staged.pop(key, None)
            if value is not None:
                ready[key] = value
        if len(ready) >= WRITE_EVERY:
            self.write()

    def write(self) -> None:
        if self._ready:
            # HSET with a flat argument list: redis-py's mapping= rebuilds one pair by pair.
            args = chain.from_iterable(self._ready.items())
            self.client.execute_command("HSET", self.key, *args)
            self._ready = {}

    def close(self) -> None:
        self.client.close()

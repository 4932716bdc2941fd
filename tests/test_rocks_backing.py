"""The RocksDB side of a table: values by partition, a bounded decoded cache, offsets."""

from __future__ import annotations

from pathlib import Path
from typing import Any, NamedTuple

import rocksdict

from nudge.streams.rocks import RocksBacking, is_rocksdb


class Found(NamedTuple):
    db: Any
    value: bytes


class PartitionedStore:
    """What RocksBacking uses of Faust's RocksDB store, on real rocksdict databases."""

    offset_key = b"__faust\0offset__"

    def __init__(self, root: Path) -> None:
        self.root = root
        self._dbs: dict[int, Any] = {}
        self._key_index: dict[bytes, int] = {}

    def _db_for_partition(self, partition: int) -> Any:
        if partition not in self._dbs:
            path = str(self.root / f"p{partition}")
            self._dbs[partition] = rocksdict.Rdict(path, rocksdict.Options(raw_mode=True))
        return self._dbs[partition]

    def _get_bucket_for_key(self, key: bytes) -> Found | None:
        for db in self._dbs.values():
            value = db.get(key)
            if value is not None:
                return Found(db, value)
        return None

    def set_persisted_offset(self, tp: Any, offset: int) -> None:
        self._db_for_partition(tp.partition).put(self.offset_key, str(offset).encode())

    def close(self) -> None:
        for db in self._dbs.values():
            db.close()


class TP(NamedTuple):
    topic: str
    partition: int


def test_values_land_in_their_partition_and_read_back_decoded(tmp_path: Path) -> None:
    store = PartitionedStore(tmp_path)
    assert is_rocksdb(store) and not is_rocksdb({})
    decoded: list[bytes] = []

    def decode(raw: bytes) -> str:
        decoded.append(raw)
        return raw.decode()

    backing = RocksBacking(store, decode, cache_size=2)
    backing.write({0: [(b"a", b"A"), (b"b", b"B")], 1: [(b"c", b"C")]})
    backing.persisted(TP("changelog", 1), 41)
    assert store._db_for_partition(1).get(b"c") == b"C" and store._key_index[b"c"] == 1
    assert store._db_for_partition(1).get(store.offset_key) == b"41"

    assert backing.get(b"a") == "A" and backing.get(b"a") == "A"
    assert decoded == [b"A"], "decoded once, then served from the cache"
    assert backing.get(b"missing") is None
    backing.get(b"b")
    backing.get(b"c")  # the cache holds two: "a" was least recently used
    backing.get(b"a")
    assert decoded == [b"A", b"B", b"C", b"A"]
    # The offset key is Faust's bookkeeping, not a value.
    assert sorted(backing.items()) == [(b"a", "A"), (b"b", "B"), (b"c", "C")]
    backing.forget_cache()
    assert backing.get(b"c") == "C" and decoded[-1] == b"C"
    store.close()


def test_a_value_not_yet_flushed_is_read_from_the_cache(tmp_path: Path) -> None:
    store = PartitionedStore(tmp_path)
    backing = RocksBacking(store, bytes.decode, cache_size=10)
    backing.write({0: [(b"a", b"old")]})
    backing.remember(b"a", "new")
    assert backing.get(b"a") == "new"
    assert dict(backing.items())[b"a"] == "new"
    store.close()


def test_a_value_waits_in_pending_until_its_changelog_write_is_acknowledged(
    tmp_path: Path,
) -> None:
    store = PartitionedStore(tmp_path)
    backing = RocksBacking(store, bytes.decode, cache_size=1)
    first, second = "one", "two"
    backing.put(b"a", first)
    backing.put(b"b", "other")  # evicts "a" from the one-entry cache
    assert backing.get(b"a") == "one", "pending, not yet in the database"
    backing.put(b"a", second)  # put again before the first write is acknowledged
    backing.write({0: [(b"a", b"one")]})
    backing.written({0: {b"a": first}})
    assert backing.get(b"a") == "two", "the newer value stays pending"
    backing.written({0: {b"a": second}})
    assert b"a" not in backing.pending
    store.close()

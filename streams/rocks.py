"""A table's values in Faust's RocksDB store (``NUDGE_STORE=rocksdb://``), written by
the batch path and the timers, which have no current event.

Faust's RocksDB store picks a value's partition database from the event being
processed. Here the value says its partition (as the changelog write does), and the
store's databases are written directly, one ``WriteBatch`` per partition and flush.
After the changelog acknowledges a flush, its offset is recorded in each partition's
database (Faust's ``set_persisted_offset``), so that a restart reads only the
changelog's tail instead of all of it.

Decoding a customer's state costs more than folding an event into it, so the states
last used stay decoded in a bounded cache; the cache is dropped whenever the table
is recovered (partitions moved), when the database is the truth again.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, Generic, TypeVar

V = TypeVar("V")


def is_rocksdb(store: Any) -> bool:
    return hasattr(store, "_db_for_partition") and hasattr(store, "set_persisted_offset")


class RocksBacking(Generic[V]):
    def __init__(self, store: Any, decode: Callable[[bytes], V], cache_size: int) -> None:
        self.store = store
        self.decode = decode
        self.cache_size = cache_size
        self._cache: OrderedDict[bytes, V] = OrderedDict()

    def get(self, key: bytes) -> V | None:
        cache = self._cache
        value = cache.get(key)
        if value is not None:
            cache.move_to_end(key)
            return value
        found = self.store._get_bucket_for_key(key)
        if found is None:
            return None
        value = self.decode(found.value)
        self.remember(key, value)
        return value

    def remember(self, key: bytes, value: V) -> None:
        cache = self._cache
        cache[key] = value
        cache.move_to_end(key)
        while len(cache) > self.cache_size:
            cache.popitem(last=False)

    def write(self, records: Mapping[int, Sequence[tuple[bytes, bytes]]]) -> None:
        """Encoded values into each partition's database, one write batch each."""
        from rocksdict import WriteBatch

        store = self.store
        for partition, pairs in records.items():
            batch = WriteBatch(raw_mode=True)
            for key, value in pairs:
                batch.put(key, value)
                store._key_index[key] = partition
            store._db_for_partition(partition).write(batch)

    def persisted(self, tp: Any, offset: int) -> None:
        self.store.set_persisted_offset(tp, offset)

    def forget_cache(self) -> None:
        self._cache.clear()

    def items(self) -> Iterator[tuple[bytes, V]]:
        """Every value of the partitions open here (the cache is never newer than the
        database between flushes, except for values of the batch in hand)."""
        offset_key = self.store.offset_key
        for db in list(self.store._dbs.values()):
            for key, raw in db.items():
                if key == offset_key or raw is None:
                    continue
                cached = self._cache.get(key)
                yield key, cached if cached is not None else self.decode(raw)

"""A table's values in Faust's RocksDB store (``NUDGE_STORE=rocksdb://``), written by
the batch path and the timers, which have no current event.

Faust's RocksDB store picks a value's partition database from the event being
processed. Here the value says its partition (as the changelog write does), and the
store's databases are written directly, one ``WriteBatch`` per partition and flush,
once the changelog has acknowledged the flush: the files are never ahead of the
changelog (a state there but not in the changelog would survive a crash on this
worker only, and its input, replayed, would find nothing to do). Until then the
values are ``pending``, and read from there. The changelog offset reached is
recorded with them (Faust's ``set_persisted_offset``), so that a restart reads only
the changelog's tail instead of all of it.

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
        #: put, and not in the database yet (its changelog write not acknowledged)
        self.pending: dict[bytes, V] = {}

    def put(self, key: bytes, value: V) -> None:
        self.pending[key] = value
        self.remember(key, value)

    def get(self, key: bytes) -> V | None:
        pending = self.pending.get(key)
        if pending is not None:
            return pending
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

    def written(self, values: Mapping[int, Mapping[bytes, V]]) -> None:
        """``values`` are in the database: no longer pending, unless put again since."""
        pending = self.pending
        for states in values.values():
            for key, value in states.items():
                if pending.get(key) is value:
                    del pending[key]

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
        """Every value of the partitions open here, pending ones included."""
        offset_key, pending = self.store.offset_key, dict(self.pending)
        for db in list(self.store._dbs.values()):
            for key, raw in db.items():
                if key == offset_key or raw is None or key in pending:
                    continue
                cached = self._cache.get(key)
                yield key, cached if cached is not None else self.decode(raw)
        yield from pending.items()

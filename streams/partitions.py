"""Where Kafka's default partitioner puts a key."""

from __future__ import annotations

from aiokafka.partitioner import murmur2


def partition_of(key: bytes, partitions: int) -> int:
    """The partition Kafka's default (murmur2) partitioner gives ``key``: where the
    storefront's records of a customer, or ``catalog-changes`` of a product, land."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions

"""The ``customer-state`` table, written with an explicit partition.

Faust derives the changelog partition from the *current event*, which a batch of
events from several partitions, or a timer, does not have. Every state records the
partition its customer's events arrive on, and writes go to that partition.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import faust

from models.state import CustomerState
from streams import state_codec


class _StateValueType:
    """What Faust asks of a table's ``value_type``: a serializer name and ``from_data``.

    The codec already returns ``CustomerState`` objects, so ``from_data`` passes them on.
    """

    class _options:  # noqa: N801 - the attribute name Faust looks up
        serializer = state_codec.CODEC_NAME

    @staticmethod
    def from_data(data: Any, preferred_type: Any = None) -> Any:
        return data


def declare_table(app: faust.App, name: str, partitions: int) -> faust.Table:
    state_codec.register()
    return app.Table(
        name, default=None, partitions=partitions, key_type=bytes, value_type=_StateValueType
    )


class StateStore:
    """Reads and writes of customer state, with the changelog only on real change."""

    def __init__(self, table: faust.Table) -> None:
        self.table = table
        self._data: Any = None

    def get(self, key: bytes) -> CustomerState | None:
        value = self.table.data.get(key)
        return value if isinstance(value, CustomerState) else None

    def put(self, key: bytes, state: CustomerState) -> None:
        self.table.send_changelog(state.partition, key, state)
        self.table.data[key] = state

    def items(self) -> Iterator[tuple[bytes, CustomerState]]:
        for key, value in self.table.data.items():
            if isinstance(value, CustomerState):
                yield key, value

"""Reading training interactions from CSV or JSON Lines.

Columns: ``customer_id``, ``product_id``, ``type`` (weighted by the event weights) or
``weight`` (used as is; with a ``type`` too, a purchase type still marks the row as a
purchase for ``also_bought``), and ``ts`` as epoch milliseconds or ISO 8601 (naive = UTC).
Rows of an event type without a weight (a category view, a search) are skipped and
counted; a malformed row stops the read with :class:`DataError` naming its line.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from nudge.recommender.errors import DataError
from nudge.recommender.training import PURCHASE_TYPES, Interactions, InteractionsBuilder


@dataclass(slots=True)
class ReadStats:
    rows: int = 0
    used: int = 0
    skipped_types: dict[str, int] = field(default_factory=dict)


def parse_ts(value: Any) -> float:
    """Epoch seconds from epoch milliseconds (number or digits) or an ISO 8601 string."""
    if isinstance(value, bool):
        raise ValueError("a boolean is not a timestamp")
    if isinstance(value, int | float):
        return float(value) / 1000.0
    text = str(value).strip()
    try:
        return float(text) / 1000.0
    except ValueError:
        pass
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def json_objects(handle: Iterable[str], where: str) -> Iterator[tuple[int, dict[str, Any]]]:
    """One JSON object per line, with its line number; blank lines skipped. A line that
    is not an object stops the read with ``DataError`` naming ``where`` and the line."""
    for line_no, line in enumerate(handle, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"{where}:{line_no}: not JSON: {exc}") from None
        if not isinstance(record, dict):
            raise DataError(f"{where}:{line_no}: expected a JSON object")
        yield line_no, record


def _records(path: Path) -> Iterator[tuple[int, Mapping[str, Any]]]:
    suffix = path.suffix.lower()
    with path.open(newline="") as handle:
        if suffix == ".csv":
            yield from enumerate(csv.DictReader(handle), start=2)
        elif suffix in (".jsonl", ".ndjson", ".json"):
            yield from json_objects(handle, str(path))
        else:
            raise DataError(f"{path}: unknown format {suffix!r}; use .csv or .jsonl")


def read_interactions(
    path: Path,
    event_weights: Mapping[str, float],
    progress: Callable[[int], None] | None = None,
) -> tuple[Interactions, ReadStats]:
    """Read and encode a file of interactions; ``progress`` is called every 10k rows."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    builder = InteractionsBuilder()
    stats = ReadStats()
    for line_no, record in _records(path):
        stats.rows += 1
        if progress is not None and stats.rows % 10_000 == 0:
            progress(10_000)
        try:
            customer = record["customer_id"]
            product = record["product_id"]
            raw_weight = record.get("weight")
            kind = str(record.get("type") or "")
            if raw_weight not in (None, ""):
                weight = float(raw_weight)
            else:
                if not kind:
                    raise KeyError("type or weight")
                if kind not in event_weights:
                    stats.skipped_types[kind] = stats.skipped_types.get(kind, 0) + 1
                    continue
                weight = float(event_weights[kind])
            ts = parse_ts(record["ts"])
        except KeyError as exc:
            raise DataError(f"{path}:{line_no}: missing column {exc.args[0]}") from None
        except (TypeError, ValueError) as exc:
            raise DataError(f"{path}:{line_no}: bad value: {exc}") from None
        if customer in (None, "") or product in (None, ""):
            raise DataError(f"{path}:{line_no}: empty customer_id or product_id")
        if weight <= 0:
            stats.skipped_types["non-positive weight"] = (
                stats.skipped_types.get("non-positive weight", 0) + 1
            )
            continue
        builder.add(str(customer), str(product), weight, ts, kind in PURCHASE_TYPES)
        stats.used += 1
    if progress is not None:
        progress(stats.rows % 10_000)
    return builder.build(), stats

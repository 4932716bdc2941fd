"""Synthetic shoppers with planted co-purchase structure, for tests and benchmarks.

Products come in groups of ``group_size`` (product ``p{n}`` belongs to group
``n // group_size``). Every customer is interested in one group: each of their
interactions is, with probability ``1 - noise``, a product of that group and otherwise a
product drawn uniformly from the whole catalogue. A good item-item model should therefore
rank a product's group mates as its top neighbours.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nudge.recommender.training import DAY_S, Interactions

EVENT_TYPES = ("view", "cart_add", "purchase")
EVENT_PROBABILITIES = (0.8, 0.15, 0.05)
EVENT_WEIGHTS = np.array([1.0, 3.0, 5.0])
START_TS = 1_700_000_000.0  # 2023-11-14, seconds


@dataclass(frozen=True, slots=True)
class SyntheticSpec:
    n_customers: int = 2000
    n_groups: int = 50
    group_size: int = 8
    per_customer: int = 6
    noise: float = 0.2
    days: float = 60.0
    seed: int = 0

    @property
    def n_items(self) -> int:
        return self.n_groups * self.group_size


def group_of(product_id: str, group_size: int) -> int:
    return int(product_id[1:]) // group_size


def generate_codes(spec: SyntheticSpec) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Vectorised draw: (customer, item, event type index, ts seconds) arrays."""
    rng = np.random.default_rng(spec.seed)
    n = spec.n_customers * spec.per_customer
    customers = np.repeat(np.arange(spec.n_customers, dtype=np.int64), spec.per_customer)
    interest = rng.integers(0, spec.n_groups, size=spec.n_customers)[customers]
    in_group = interest * spec.group_size + rng.integers(0, spec.group_size, size=n)
    random_item = rng.integers(0, spec.n_items, size=n)
    items = np.where(rng.random(n) < spec.noise, random_item, in_group).astype(np.int64)
    kinds = rng.choice(len(EVENT_TYPES), size=n, p=EVENT_PROBABILITIES)
    ts = START_TS + rng.random(n) * spec.days * DAY_S
    return customers, items, kinds, ts


def interactions(spec: SyntheticSpec) -> Interactions:
    """The synthetic set encoded for :func:`recommender.training.train`; item n is ``p{n}``."""
    customers, items, kinds, ts = generate_codes(spec)
    return Interactions(
        customers=customers,
        items=items,
        weights=EVENT_WEIGHTS[kinds],
        ts=ts,
        item_ids=[f"p{n}" for n in range(spec.n_items)],
        n_customers=spec.n_customers,
    )


def rows(spec: SyntheticSpec) -> Iterator[dict[str, object]]:
    """Interaction records as the ``nudge train`` reader expects them (ts in epoch ms)."""
    customers, items, kinds, ts = generate_codes(spec)
    for c, i, kind, t in zip(
        customers.tolist(), items.tolist(), kinds.tolist(), ts.tolist(), strict=True
    ):
        yield {
            "customer_id": f"c{c}",
            "product_id": f"p{i}",
            "type": EVENT_TYPES[kind],
            "ts": int(t * 1000),
        }


def write(spec: SyntheticSpec, path: Path) -> Path:
    """Write the set as ``.csv`` or ``.jsonl`` (by suffix)."""
    path = Path(path)
    with path.open("w", newline="") as handle:
        if path.suffix == ".csv":
            writer = csv.DictWriter(handle, fieldnames=["customer_id", "product_id", "type", "ts"])
            writer.writeheader()
            writer.writerows(rows(spec))
        else:
            for row in rows(spec):
                handle.write(json.dumps(row) + "\n")
    return path

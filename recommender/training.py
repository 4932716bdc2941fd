"""Learning item-item similarities from weighted, time-decayed interactions.

The customer x item matrix ``X`` holds, per customer and product, the sum of the event
weights (view 1, cart add 3, purchase 5 by default), each decayed by
``0.5 ** (age / half_life)`` where the age is measured from the newest interaction.
With ``weighting="bm25"`` (the default) ``X`` is then BM25-weighted, or with ``"tfidf"``
TF-IDF-weighted, customers being the documents. Similarities are
``sim(i, j) = X[:, i] · X[:, j] / (‖X[:, i]‖ ‖X[:, j]‖ + shrink)``; only the ``k`` most
similar neighbours of each item are kept (see :mod:`recommender.similarity` for the
``target`` and ``source`` neighbourhoods).

``also_bought`` gets its own similarities, from purchases alone; ``popular`` gets a
global and a per-category list over the last ``popular_window_s`` of the data.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp

from nudge.recommender.errors import DataError
from nudge.recommender.popularity import per_category, top_items, window_totals
from nudge.recommender.similarity import (
    Neighbours,
    bm25_weight,
    cosine_top_k,
    serving_rows,
    tfidf_weight,
    top_k_rows,
)

__all__ = ["Interactions", "Neighbours", "TrainParams", "TrainedArrays", "top_k_rows", "train"]

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
#: Event types that are purchases: they also feed ``also_bought``.
PURCHASE_TYPES = frozenset({"purchase", "order", "transaction"})
WEIGHTINGS = frozenset({"none", "tfidf", "bm25"})
NEIGHBOURHOODS = frozenset({"target", "source"})


@dataclass(frozen=True, slots=True)
class TrainParams:
    """How a model is learnt (and the serving defaults stored with it)."""

    event_weights: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_EVENT_WEIGHTS))
    half_life_s: float | None = 30 * DAY_S
    k: int = 50
    shrink: float = 10.0
    weighting: str = "bm25"
    bm25_k1: float = 100.0
    bm25_b: float = 0.8
    neighbourhood: str = "target"
    #: ``target`` only: a served row keeps at most ``fan_out * k`` entries, so a hub item
    #: in a history cannot make a call slow (4: NDCG@10 on ML-100k within noise of none)
    fan_out: float | None = 4.0
    popular_window_s: float = 30 * DAY_S
    popular_count: int = 1000
    popular_per_category: int = 100
    history_half_life: float | None = 5.0
    #: similarities from who touched what, not how much or how lately (event weights and
    #: decay then only rank popularity)
    binary: bool = False
    #: ``personal`` at serving: each candidate's score over the customer's best, plus
    #: this much of its popularity over the best seller's (0: similarity alone)
    popularity_blend: float = 0.0
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
        if self.weighting not in WEIGHTINGS:
            raise ValueError(f"weighting must be one of {sorted(WEIGHTINGS)}")
        if self.neighbourhood not in NEIGHBOURHOODS:
            raise ValueError(f"neighbourhood must be one of {sorted(NEIGHBOURHOODS)}")
        if self.bm25_k1 <= 0 or not 0 <= self.bm25_b <= 1:
            raise ValueError("bm25_k1 must be positive and bm25_b within [0, 1]")
        if self.fan_out is not None and self.fan_out < 1:
            raise ValueError("fan_out must be at least 1 (or None)")
        if self.popularity_blend < 0:
            raise ValueError("popularity_blend cannot be negative")
        if self.popular_count < 1 or self.popular_per_category < 1:
            raise ValueError("popular_count and popular_per_category must be positive")

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
    purchases: np.ndarray | None = None  # bool per interaction; None: no purchase known

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
        self._bought: list[int] = []  # positions of purchases

    def add(
        self, customer_id: str, product_id: str, weight: float, ts: float, purchase: bool = False
    ) -> None:
        if purchase:
            self._bought.append(len(self._c))
        self._c.append(self._customers.setdefault(customer_id, len(self._customers)))
        self._i.append(self._items.setdefault(product_id, len(self._items)))
        self._w.append(weight)
        self._t.append(ts)

    def _purchase_mask(self) -> np.ndarray:
        mask = np.zeros(len(self._c), dtype=bool)
        mask[np.asarray(self._bought, dtype=np.int64)] = True
        return mask

    def build(self) -> Interactions:
        return Interactions(
            customers=np.asarray(self._c, dtype=np.int64),
            items=np.asarray(self._i, dtype=np.int64),
            weights=np.asarray(self._w, dtype=np.float64),
            ts=np.asarray(self._t, dtype=np.float64),
            item_ids=list(self._items),
            n_customers=len(self._customers),
            purchases=self._purchase_mask(),
        )


def interactions_from_records(records: Iterable[tuple[str, str, float, float]]) -> Interactions:
    builder = InteractionsBuilder()
    for customer_id, product_id, weight, ts in records:
        builder.add(customer_id, product_id, weight, ts)
    return builder.build()


def decayed_weights(data: Interactions, half_life_s: float | None) -> np.ndarray:
    if half_life_s is None or not len(data):
        return data.weights
    age = data.ts.max() - data.ts
    return data.weights * np.exp2(-age / half_life_s)


def interaction_matrix(
    data: Interactions,
    half_life_s: float | None,
    rows: np.ndarray | None = None,
    weights: np.ndarray | None = None,
) -> sp.csr_matrix:
    """The customer x item matrix of decayed weights (duplicates summed); ``rows``
    (a boolean mask) keeps only some interactions; ``weights``, already decayed ones."""
    if weights is None:
        weights = decayed_weights(data, half_life_s)
    customers, items = data.customers, data.items
    if rows is not None:
        weights, customers, items = weights[rows], customers[rows], items[rows]
    # csr_matrix sums duplicates itself while building (cheaper than coo -> csr -> sum)
    return sp.csr_matrix(
        (weights, (customers, items)), shape=(data.n_customers, len(data.item_ids))
    )


def similarities(
    matrix: sp.csr_matrix,
    params: TrainParams,
    progress: Callable[[int], None] | None = None,
) -> Neighbours:
    """The serving neighbour lists of ``matrix``'s items under ``params``."""
    if params.weighting == "bm25":
        matrix = bm25_weight(matrix, params.bm25_k1, params.bm25_b)
    elif params.weighting == "tfidf":
        matrix = tfidf_weight(matrix)
    neighbours = cosine_top_k(matrix, params.k, params.shrink, params.chunk_budget, progress)
    if params.neighbourhood == "target":
        cap = None if params.fan_out is None else int(params.fan_out * params.k)
        neighbours = serving_rows(neighbours, matrix.shape[1], cap)
    return neighbours


@dataclass(slots=True)
class TrainedArrays:
    """What :func:`train` learns, before it is wrapped into a servable model."""

    item_ids: list[str]
    neighbours: Neighbours
    bought: Neighbours
    popular_items: np.ndarray
    popular_scores: np.ndarray
    category_ids: list[str]
    category_indptr: np.ndarray
    category_items: np.ndarray
    data_range: dict[str, Any]
    metrics: dict[str, Any]


def _empty_neighbours(n_items: int) -> Neighbours:
    return Neighbours(
        indptr=np.zeros(n_items + 1, dtype=np.int64),
        indices=np.zeros(0, dtype=np.int32),
        scores=np.zeros(0, dtype=np.float32),
    )


def train(
    data: Interactions,
    params: TrainParams,
    progress: Callable[[int], None] | None = None,
    categories: Mapping[str, Sequence[str]] | None = None,
) -> TrainedArrays:
    """Learn neighbours, co-purchase neighbours and popularity.

    ``progress`` is called with item rows done; ``categories`` maps product ids to their
    category path, for the per-category popular lists.
    """
    if not len(data):
        raise DataError("no usable interactions to train on")
    if np.any(data.weights <= 0) or not np.all(np.isfinite(data.weights)):
        raise DataError("interaction weights must be positive and finite")
    began = time.perf_counter()
    n_items = len(data.item_ids)
    decayed = decayed_weights(data, params.half_life_s)
    matrix = interaction_matrix(data, params.half_life_s, weights=decayed)
    if params.binary:
        matrix.data[:] = 1.0
    neighbours = similarities(matrix, params, progress)
    bought = _empty_neighbours(n_items)
    if data.purchases is not None and data.purchases.any():
        purchases = interaction_matrix(data, None, rows=data.purchases, weights=decayed)
        bought = similarities(purchases, params)
    totals = window_totals(data.items, data.weights, data.ts, n_items, params.popular_window_s)
    popular_items, popular_scores = top_items(totals, params.popular_count)
    category_ids, category_indptr, category_items = per_category(
        totals, data.item_ids, categories or {}, params.popular_per_category
    )
    with_neighbours = int(np.count_nonzero(np.diff(neighbours.indptr)))
    metrics = {
        "fit_seconds": round(time.perf_counter() - began, 3),
        "interactions": len(data),
        "customers": data.n_customers,
        "items": n_items,
        "matrix_nnz": int(matrix.nnz),
        "neighbour_pairs": int(neighbours.indices.shape[0]),
        "co_purchase_pairs": int(bought.indices.shape[0]),
        "categories": len(category_ids),
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
        bought=bought,
        popular_items=popular_items,
        popular_scores=popular_scores,
        category_ids=category_ids,
        category_indptr=category_indptr,
        category_items=category_items,
        data_range=data_range,
        metrics=metrics,
    )

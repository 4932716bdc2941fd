"""The servable item-item similarity model: fit, save, load, recommend.

>>> model = ItemKNN.fit(interactions, TrainParams(k=50, shrink=10))
>>> model.save(Path("models/itemknn"))
>>> model = ItemKNN.load(Path("models/itemknn"))
>>> model.recommend(["p1", "p7"], k=10)

Every list leaves out the history, ``exclude`` and duplicates, and is topped up from
popularity when the history is unknown or has too few neighbours.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from nudge.recommender.artifact import FORMAT_VERSION, read_artifact, write_artifact
from nudge.recommender.batch import recommend_batch
from nudge.recommender.errors import ModelError
from nudge.recommender.model_check import check_arrays
from nudge.recommender.training import Interactions, TrainedArrays, TrainParams, train

ALGORITHMS = frozenset({"personal", "similar", "also_bought", "popular"})
#: Best sellers a popularity blend adds as candidates.
BLEND_POOL = 200


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=UTC).isoformat().replace("+00:00", "Z")


def _empty_arrays(n_items: int) -> dict[str, np.ndarray]:
    """What a version 1 model lacks: no co-purchases, no categories."""
    return {
        "bought_indptr": np.zeros(n_items + 1, dtype=np.int64),
        "bought_indices": np.zeros(0, dtype=np.int32),
        "bought_scores": np.zeros(0, dtype=np.float32),
        "category_ids": np.zeros(0, dtype="<U1"),
        "category_indptr": np.zeros(1, dtype=np.int64),
        "category_items": np.zeros(0, dtype=np.int32),
    }


class ItemKNN:
    """Item neighbours (all interactions, and purchases alone) in CSR arrays, plus
    popularity lists, global and per category, for ``popular`` and for fallback.

    A neighbour row ``i`` lists the items that a history holding ``i`` makes likely,
    with their similarity; a candidate's score is the sum over the history.
    """

    def __init__(
        self,
        arrays: Mapping[str, np.ndarray],
        metadata: Mapping[str, Any],
        item_ids: list[str] | None = None,
    ) -> None:
        """``item_ids``: the ids as a list when the caller has one (saves converting)."""
        full = {**_empty_arrays(arrays["item_ids"].shape[0]), **arrays}
        check_arrays(full, metadata.get("item_count"))
        self._arrays = full
        self.item_ids_array = full["item_ids"]
        self.indptr = full["neighbour_indptr"]
        self.indices = full["neighbour_indices"]
        self.scores = full["neighbour_scores"]
        self.bought_indptr = full["bought_indptr"]
        self.bought_indices = full["bought_indices"]
        self.bought_scores = full["bought_scores"]
        self.popular_items = full["popular_items"]
        self.popular_scores = full["popular_scores"]
        self.metadata = dict(metadata)
        params = self.metadata.get("params", {})
        self.history_half_life: float | None = params.get("history_half_life", 5.0)
        self.max_history = int(params.get("max_history", 50))
        self.similar_seeds = int(params.get("similar_seeds", 3))
        self.popularity_blend = float(params.get("popularity_blend", 0.0))
        pool = self.popular_items[:BLEND_POOL].astype(np.int64)
        top = float(self.popular_scores[0]) if self.popular_scores.size else 0.0
        self.blend_items = pool
        # Strictly decreasing in best-seller order, so equal sales never tie: the batch
        # path's top-k cut and a single call then rank them alike.
        self.blend_scores = (
            self.popular_scores[: pool.size].astype(np.float64) / top * self.popularity_blend
            - np.arange(pool.size) * 1e-9
            if top > 0
            else np.zeros(pool.size)
        )
        self.item_ids: list[str] = (
            list(item_ids) if item_ids is not None else self.item_ids_array.tolist()
        )
        self._built_index: dict[str, int] | None = None
        if item_ids is None:  # loaded: a model with repeated ids is refused before it serves
            self._built_index = self._index
        self._popular_list: list[int] = self.popular_items.tolist()
        self._categories = {c: n for n, c in enumerate(full["category_ids"].tolist())}
        self._matrices: dict[str, sp.csr_matrix] = {}

    # -- building and storing -------------------------------------------------------------

    @classmethod
    def from_trained(cls, trained: TrainedArrays, params: TrainParams) -> ItemKNN:
        def strings(values: list[str]) -> np.ndarray:
            return np.asarray(values, dtype=str) if values else np.zeros(0, dtype="<U1")

        arrays = {
            "item_ids": strings(trained.item_ids),
            "neighbour_indptr": trained.neighbours.indptr.astype(np.int64),
            "neighbour_indices": trained.neighbours.indices.astype(np.int32),
            "neighbour_scores": trained.neighbours.scores.astype(np.float32),
            "bought_indptr": trained.bought.indptr.astype(np.int64),
            "bought_indices": trained.bought.indices.astype(np.int32),
            "bought_scores": trained.bought.scores.astype(np.float32),
            "popular_items": trained.popular_items.astype(np.int32),
            "popular_scores": trained.popular_scores.astype(np.float32),
            "category_ids": strings(trained.category_ids),
            "category_indptr": trained.category_indptr.astype(np.int64),
            "category_items": trained.category_items.astype(np.int32),
        }
        now = datetime.now(UTC)
        # a random suffix, not a content hash: hashing ~50 MB of arrays cost more than
        # a tenth of a RetailRocket-sized fit, and two trainings are two versions anyway
        token = secrets.token_hex(4)
        data_range = dict(trained.data_range)
        data_range["first_event"] = _iso(data_range["first_ts"])
        data_range["last_event"] = _iso(data_range["last_ts"])
        metadata = {
            "format_version": FORMAT_VERSION,
            "model_version": f"itemknn-{now:%Y%m%dT%H%M%SZ}-{token}",
            "trained_at": now.isoformat().replace("+00:00", "Z"),
            "data_range": data_range,
            "params": params.to_json(),
            "metrics": dict(trained.metrics),
            "item_count": len(trained.item_ids),
        }
        return cls(arrays, metadata, trained.item_ids)

    @classmethod
    def fit(
        cls,
        data: Interactions,
        params: TrainParams | None = None,
        progress: Callable[[int], None] | None = None,
        categories: Mapping[str, Sequence[str]] | None = None,
    ) -> ItemKNN:
        """Train on ``data``; ``categories`` (product id -> category path) enables
        per-category ``popular``."""
        params = params or TrainParams()
        return cls.from_trained(train(data, params, progress, categories), params)

    def arrays(self) -> dict[str, np.ndarray]:
        return dict(self._arrays)

    def save(self, directory: Path) -> Path:
        meta = {k: v for k, v in self.metadata.items() if k not in ("arrays", "format")}
        meta["format_version"] = FORMAT_VERSION
        return write_artifact(Path(directory), self.arrays(), meta)

    @classmethod
    def load(cls, directory: Path) -> ItemKNN:
        arrays, metadata = read_artifact(Path(directory))
        return cls(arrays, metadata)

    @property
    def model_version(self) -> str:
        return str(self.metadata.get("model_version", ""))

    @property
    def memory_bytes(self) -> int:
        """Bytes held by the model's arrays (what a worker's memory grows by, roughly,
        plus Python's copy of the item ids)."""
        return sum(int(array.nbytes) for array in self._arrays.values())

    # -- serving ------------------------------------------------------------------------

    @property
    def _index(self) -> dict[str, int]:
        """Product id -> item code; built on first use (a fit that is only saved never
        needs it)."""
        if self._built_index is None:
            index = dict(zip(self.item_ids, range(len(self.item_ids)), strict=True))
            if len(index) != len(self.item_ids):
                raise ModelError("inconsistent model: item_ids are not unique")
            self._built_index = index
        return self._built_index

    def known(self, product_ids: Iterable[str]) -> list[int]:
        """Item codes of the product ids the model knows, in order."""
        index = self._index
        return [index[p] for p in product_ids if p in index]

    def seeds(self, history: Sequence[str], algorithm: str) -> tuple[np.ndarray, np.ndarray]:
        """Distinct known history items (newest first) and their weights."""
        if algorithm not in ALGORITHMS:
            raise ModelError(
                f"unknown algorithm {algorithm!r}; expected one of {sorted(ALGORITHMS)}"
            )
        if algorithm == "popular":
            return np.zeros(0, dtype=np.int64), np.zeros(0)
        limit = self.max_history if algorithm == "personal" else self.similar_seeds
        seen: dict[int, int] = {}
        for product in reversed(history):
            n = self._index.get(product)
            if n is not None and n not in seen:
                seen[n] = len(seen)
                if len(seen) == limit:
                    break
        seeds = np.fromiter(seen, dtype=np.int64, count=len(seen))
        ages = np.arange(len(seen), dtype=np.float64)
        if algorithm == "personal" and self.history_half_life is not None:
            return seeds, np.exp2(-ages / self.history_half_life)
        return seeds, np.ones(len(seen))

    def _csr(self, algorithm: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if algorithm == "also_bought":
            return self.bought_indptr, self.bought_indices, self.bought_scores
        return self.indptr, self.indices, self.scores

    def neighbour_matrix(self, algorithm: str = "personal") -> sp.csr_matrix:
        """The neighbour rows ``algorithm`` scores with, as a sparse item x item matrix."""
        name = "also_bought" if algorithm == "also_bought" else "personal"
        if name not in self._matrices:
            indptr, indices, scores = self._csr(name)
            n = len(self.item_ids)
            self._matrices[name] = sp.csr_matrix(
                (scores.astype(np.float64), indices, indptr), shape=(n, n)
            )
        return self._matrices[name]

    def _score(
        self, seeds: np.ndarray, weights: np.ndarray, algorithm: str
    ) -> tuple[np.ndarray, np.ndarray]:
        indptr, indices, scores = self._csr(algorithm)
        starts = indptr[seeds]
        lengths = indptr[seeds + 1] - starts
        total = int(lengths.sum())
        if total == 0:
            return np.zeros(0, dtype=np.int64), np.zeros(0)
        offsets = np.cumsum(lengths) - lengths
        positions = np.arange(total) + np.repeat(starts - offsets, lengths)
        candidates = indices[positions]
        contributions = scores[positions] * np.repeat(weights, lengths)
        items, inverse = np.unique(candidates, return_inverse=True)
        return items.astype(np.int64), np.bincount(inverse, weights=contributions)

    def fill(
        self, chosen: list[int], k: int, banned: set[int], ranked: Iterable[int] = ()
    ) -> list[int]:
        """``chosen`` topped up to ``k`` from ``ranked`` and then global popularity,
        skipping ``banned`` and repeats."""
        if len(chosen) >= k:
            return chosen
        taken = banned.union(chosen)
        for source in (ranked, self._popular_list):
            for n in source:
                if n not in taken:
                    chosen.append(n)
                    taken.add(n)
                    if len(chosen) == k:
                        return chosen
        return chosen

    def _ranked(
        self, seeds: np.ndarray, weights: np.ndarray, k: int, banned: set[int], algorithm: str
    ) -> list[int]:
        """Up to ``k`` scored candidates, best first (ties: lower item code)."""
        items, totals = self._score(seeds, weights, algorithm)
        if algorithm == "personal" and self.popularity_blend > 0:
            items, totals = self._blended(items, totals)
        if banned and items.size:
            keep = ~np.isin(items, np.fromiter(banned, dtype=np.int64, count=len(banned)))
            items, totals = items[keep], totals[keep]
        if items.size > k:
            top = np.argpartition(-totals, k - 1)[:k]
            items, totals = items[top], totals[top]
        order = np.lexsort((items, -totals))
        ranked: list[int] = items[order].tolist()
        return ranked

    def _blended(self, items: np.ndarray, totals: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Similarity over the customer's best, plus the blend of the best sellers'
        popularity (``TrainParams.popularity_blend``)."""
        if not totals.size or totals.max() <= 0:
            return items, totals  # a cold customer: the best sellers' fill, as without
        totals = totals * (1.0 / totals.max())  # as the batch path's row scaling
        # ``items`` come sorted and unique from ``_score``, so the few best sellers are
        # found by binary search; a second sort of every candidate cost more than the
        # scoring itself at a large K.
        pool, boost = self.blend_items, self.blend_scores
        at = np.minimum(np.searchsorted(items, pool), items.size - 1)
        found = items[at] == pool
        totals[at[found]] += boost[found]
        return np.concatenate([items, pool[~found]]), np.concatenate([totals, boost[~found]])

    def _category_items(self, category: str | None) -> list[int]:
        code = self._categories.get(category) if category is not None else None
        if code is None:
            return []
        indptr = self._arrays["category_indptr"]
        items: list[int] = self._arrays["category_items"][indptr[code] : indptr[code + 1]].tolist()
        return items

    def recommend(
        self,
        history: Sequence[str],
        k: int,
        algorithm: str = "personal",
        exclude: Iterable[str] = (),
        category: str | None = None,
    ) -> list[str]:
        """Up to ``k`` product ids for a customer whose history is given oldest first.

        ``personal`` sums neighbour similarities of the last ``max_history`` distinct
        items, each weighted ``0.5 ** (age / history_half_life)`` (age 0 = newest);
        ``similar`` uses the newest ``similar_seeds`` items equally; ``also_bought`` does
        the same with co-purchase neighbours and tops up with ``personal``; ``popular``
        ranks by popularity over the training's recent window, within ``category`` (and
        its subcategories) when given and known. Unknown product ids are ignored.
        """
        if k <= 0:
            return []
        seeds, weights = self.seeds(history, algorithm)
        banned = set(self.known(history))
        banned.update(self.known(exclude))
        if algorithm == "popular":
            chosen = self.fill([], k, banned, self._category_items(category))
        elif algorithm == "also_bought":
            chosen = self._ranked(seeds, weights, k, banned, algorithm)
            if len(chosen) < k:
                personal = self.seeds(history, "personal")
                chosen = self.fill(
                    chosen, k, banned, self._ranked(*personal, k, banned, "personal")
                )
        else:
            chosen = self.fill(self._ranked(seeds, weights, k, banned, algorithm), k, banned)
        ids = self.item_ids
        return [ids[n] for n in chosen]

    def similar(self, product_ids: Sequence[str], k: int, exclude: Iterable[str] = ()) -> list[str]:
        """Products most similar to all of ``product_ids`` together (which are left out)."""
        if k <= 0:
            return []
        seeds = np.asarray(sorted(set(self.known(product_ids))), dtype=np.int64)
        banned = set(seeds.tolist())
        banned.update(self.known(exclude))
        ranked = self._ranked(seeds, np.ones(seeds.size), k, banned, "similar")
        ids = self.item_ids
        return [ids[n] for n in self.fill(ranked, k, banned)]

    def popular(
        self, k: int, exclude: Iterable[str] = (), category: str | None = None
    ) -> list[str]:
        """The most popular products of the training window, best first."""
        return self.recommend([], k, "popular", exclude, category)

    def recommend_batch(
        self,
        histories: Sequence[Sequence[str]],
        k: int,
        algorithm: str = "personal",
        excludes: Sequence[Iterable[str]] | None = None,
    ) -> list[list[str]]:
        """:meth:`recommend` for many customers at once, as one sparse product."""
        return recommend_batch(self, histories, k, algorithm, excludes)

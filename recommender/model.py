"""The servable item-item similarity model: fit, save, load, recommend.

>>> model = ItemKNN.fit(interactions, TrainParams(k=50, shrink=10))
>>> model.save(Path("models/itemknn"))
>>> model = ItemKNN.load(Path("models/itemknn"))
>>> model.recommend(["p1", "p7"], k=10)

Every list leaves out the history, ``exclude`` and duplicates, and is topped up from
popularity when the history is unknown or has too few neighbours.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from recommender.artifact import FORMAT_VERSION, read_artifact, write_artifact
from recommender.errors import ModelError
from recommender.training import Interactions, TrainedArrays, TrainParams, top_k_rows, train

ALGORITHMS = frozenset({"personal", "similar", "popular"})


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=UTC).isoformat().replace("+00:00", "Z")


class ItemKNN:
    """Top-k item neighbours in CSR arrays, plus a popularity list for fallback."""

    def __init__(self, arrays: Mapping[str, np.ndarray], metadata: Mapping[str, Any]) -> None:
        self.item_ids_array = arrays["item_ids"]
        self.indptr = arrays["neighbour_indptr"]
        self.indices = arrays["neighbour_indices"]
        self.scores = arrays["neighbour_scores"]
        self.popular_items = arrays["popular_items"]
        self.popular_scores = arrays["popular_scores"]
        self.metadata = dict(metadata)
        self._check()
        params = self.metadata.get("params", {})
        self.history_half_life: float | None = params.get("history_half_life", 5.0)
        self.max_history = int(params.get("max_history", 50))
        self.similar_seeds = int(params.get("similar_seeds", 3))
        self.item_ids: list[str] = self.item_ids_array.tolist()
        self._index = {item: n for n, item in enumerate(self.item_ids)}
        self._popular_list: list[int] = self.popular_items.tolist()
        self._matrix: sp.csr_matrix | None = None

    def _check(self) -> None:
        n = self.item_ids_array.shape[0]
        nnz = self.indices.shape[0]
        problems = []
        if self.metadata.get("item_count", n) != n:
            problems.append(f"item_count {self.metadata.get('item_count')} != {n} item ids")
        if self.indptr.shape != (n + 1,):
            problems.append(f"neighbour_indptr has shape {self.indptr.shape}, expected ({n + 1},)")
        elif self.indptr[0] != 0 or self.indptr[-1] != nnz or np.any(np.diff(self.indptr) < 0):
            problems.append("neighbour_indptr is not a valid CSR pointer array")
        if self.scores.shape != (nnz,):
            problems.append("neighbour_scores and neighbour_indices differ in length")
        if nnz and (self.indices.min() < 0 or self.indices.max() >= n):
            problems.append("neighbour_indices point outside the catalogue")
        if self.popular_scores.shape != self.popular_items.shape:
            problems.append("popular_scores and popular_items differ in length")
        pop = self.popular_items
        if pop.size and (pop.min() < 0 or pop.max() >= n):
            problems.append("popular_items point outside the catalogue")
        if len(set(self.item_ids_array.tolist())) != n:
            problems.append("item_ids are not unique")
        if problems:
            raise ModelError("inconsistent model: " + "; ".join(problems))

    # -- building and storing -------------------------------------------------------------

    @classmethod
    def from_trained(cls, trained: TrainedArrays, params: TrainParams) -> ItemKNN:
        arrays = {
            "item_ids": np.asarray(trained.item_ids, dtype=str)
            if trained.item_ids
            else np.zeros(0, dtype="<U1"),
            "neighbour_indptr": trained.neighbours.indptr.astype(np.int64),
            "neighbour_indices": trained.neighbours.indices.astype(np.int32),
            "neighbour_scores": trained.neighbours.scores.astype(np.float32),
            "popular_items": trained.popular_items.astype(np.int32),
            "popular_scores": trained.popular_scores.astype(np.float32),
        }
        now = datetime.now(UTC)
        digest = hashlib.sha256()
        for name in ("neighbour_indptr", "neighbour_indices", "neighbour_scores"):
            digest.update(arrays[name].tobytes())
        data_range = dict(trained.data_range)
        data_range["first_event"] = _iso(data_range["first_ts"])
        data_range["last_event"] = _iso(data_range["last_ts"])
        metadata = {
            "format_version": FORMAT_VERSION,
            "model_version": f"itemknn-{now:%Y%m%dT%H%M%SZ}-{digest.hexdigest()[:8]}",
            "trained_at": now.isoformat().replace("+00:00", "Z"),
            "data_range": data_range,
            "params": params.to_json(),
            "metrics": dict(trained.metrics),
            "item_count": len(trained.item_ids),
        }
        return cls(arrays, metadata)

    @classmethod
    def fit(
        cls,
        data: Interactions,
        params: TrainParams | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> ItemKNN:
        params = params or TrainParams()
        return cls.from_trained(train(data, params, progress), params)

    def arrays(self) -> dict[str, np.ndarray]:
        return {
            "item_ids": self.item_ids_array,
            "neighbour_indptr": self.indptr,
            "neighbour_indices": self.indices,
            "neighbour_scores": self.scores,
            "popular_items": self.popular_items,
            "popular_scores": self.popular_scores,
        }

    def save(self, directory: Path) -> Path:
        meta = {k: v for k, v in self.metadata.items() if k not in ("arrays", "format")}
        return write_artifact(Path(directory), self.arrays(), meta)

    @classmethod
    def load(cls, directory: Path) -> ItemKNN:
        arrays, metadata = read_artifact(Path(directory))
        return cls(arrays, metadata)

    @property
    def model_version(self) -> str:
        return str(self.metadata.get("model_version", ""))

    # -- serving ------------------------------------------------------------------------

    def _known(self, product_ids: Iterable[str]) -> list[int]:
        index = self._index
        return [index[p] for p in product_ids if p in index]

    def _seeds(self, history: Sequence[str], algorithm: str) -> tuple[np.ndarray, np.ndarray]:
        """Distinct known history items (newest first) and their weights."""
        if algorithm not in ALGORITHMS:
            raise ModelError(
                f"unknown algorithm {algorithm!r}; expected one of {sorted(ALGORITHMS)}"
            )
        if algorithm == "popular":
            return np.zeros(0, dtype=np.int64), np.zeros(0)
        limit = self.similar_seeds if algorithm == "similar" else self.max_history
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

    def _score(self, seeds: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        starts = self.indptr[seeds]
        lengths = self.indptr[seeds + 1] - starts
        total = int(lengths.sum())
        if total == 0:
            return np.zeros(0, dtype=np.int64), np.zeros(0)
        offsets = np.cumsum(lengths) - lengths
        positions = np.arange(total) + np.repeat(starts - offsets, lengths)
        candidates = self.indices[positions]
        contributions = self.scores[positions] * np.repeat(weights, lengths)
        items, inverse = np.unique(candidates, return_inverse=True)
        return items.astype(np.int64), np.bincount(inverse, weights=contributions)

    def _fill(self, chosen: list[int], k: int, banned: set[int]) -> list[int]:
        """Top ``chosen`` up to ``k`` items from popularity, skipping ``banned`` and repeats."""
        if len(chosen) >= k:
            return chosen
        taken = banned.union(chosen)
        for n in self._popular_list:
            if n not in taken:
                chosen.append(n)
                taken.add(n)
                if len(chosen) == k:
                    break
        return chosen

    def _rank(self, seeds: np.ndarray, weights: np.ndarray, k: int, banned: set[int]) -> list[str]:
        items, totals = self._score(seeds, weights)
        if banned and items.size:
            keep = ~np.isin(items, np.fromiter(banned, dtype=np.int64, count=len(banned)))
            items, totals = items[keep], totals[keep]
        if items.size > k:
            top = np.argpartition(-totals, k - 1)[:k]
            items, totals = items[top], totals[top]
        order = np.lexsort((items, -totals))
        chosen = self._fill(items[order].tolist(), k, banned)
        ids = self.item_ids
        return [ids[n] for n in chosen]

    def recommend(
        self,
        history: Sequence[str],
        k: int,
        algorithm: str = "personal",
        exclude: Iterable[str] = (),
    ) -> list[str]:
        """Up to ``k`` product ids for a customer whose history is given oldest first.

        ``personal`` sums neighbour similarities of the last ``max_history`` distinct
        items, each weighted ``0.5 ** (age / history_half_life)`` (age 0 = newest);
        ``similar`` uses the newest ``similar_seeds`` items equally; ``popular`` ranks by
        recent popularity. Unknown product ids are ignored.
        """
        if k <= 0:
            return []
        seeds, weights = self._seeds(history, algorithm)
        banned = set(self._known(history))
        banned.update(self._known(exclude))
        return self._rank(seeds, weights, k, banned)

    def similar(self, product_ids: Sequence[str], k: int, exclude: Iterable[str] = ()) -> list[str]:
        """Products most similar to all of ``product_ids`` together (which are left out)."""
        if k <= 0:
            return []
        seeds = np.asarray(sorted(set(self._known(product_ids))), dtype=np.int64)
        banned = set(seeds.tolist())
        banned.update(self._known(exclude))
        return self._rank(seeds, np.ones(seeds.size), k, banned)

    def popular(self, k: int, exclude: Iterable[str] = ()) -> list[str]:
        """The most popular products of the training window, best first."""
        if k <= 0:
            return []
        ids = self.item_ids
        return [ids[n] for n in self._fill([], k, set(self._known(exclude)))]

    def _neighbour_matrix(self) -> sp.csr_matrix:
        if self._matrix is None:
            n = len(self.item_ids)
            self._matrix = sp.csr_matrix(
                (self.scores.astype(np.float64), self.indices, self.indptr), shape=(n, n)
            )
        return self._matrix

    def recommend_batch(
        self,
        histories: Sequence[Sequence[str]],
        k: int,
        algorithm: str = "personal",
        excludes: Sequence[Iterable[str]] | None = None,
    ) -> list[list[str]]:
        """:meth:`recommend` for many customers at once, as one sparse product."""
        if excludes is not None and len(excludes) != len(histories):
            raise ModelError("excludes must have one entry per history")
        if k <= 0 or not histories:
            return [[] for _ in histories]
        n_items = len(self.item_ids)
        rows: list[np.ndarray] = []
        cols: list[np.ndarray] = []
        vals: list[np.ndarray] = []
        banned_sets: list[set[int]] = []
        for r, history in enumerate(histories):
            seeds, weights = self._seeds(history, algorithm)
            rows.append(np.full(seeds.size, r, dtype=np.int64))
            cols.append(seeds)
            vals.append(weights)
            banned = set(self._known(history))
            if excludes is not None:
                banned.update(self._known(excludes[r]))
            banned_sets.append(banned)
        n = len(histories)
        seed_matrix = sp.csr_matrix(
            (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
            shape=(n, n_items),
        )
        scores = (seed_matrix @ self._neighbour_matrix()).tocsr()
        banned_rows = np.repeat(np.arange(n, dtype=np.int64), [len(b) for b in banned_sets])
        banned_cols = np.fromiter(
            (c for banned in banned_sets for c in banned), dtype=np.int64, count=banned_rows.size
        )
        banned_matrix = sp.csr_matrix(
            (np.ones(banned_rows.size), (banned_rows, banned_cols)), shape=(n, n_items)
        )
        scores = (scores - scores.multiply(banned_matrix)).tocsr()
        scores.eliminate_zeros()
        scores.sort_indices()
        score_rows = np.repeat(np.arange(n, dtype=np.int64), np.diff(scores.indptr))
        score_cols = scores.indices.astype(np.int64)
        keep = scores.data > 0
        counts, top_cols, _ = top_k_rows(
            score_rows[keep], score_cols[keep], scores.data[keep], n, k
        )
        ends = np.cumsum(counts)
        ids = self.item_ids
        result: list[list[str]] = []
        flat = top_cols.tolist()
        start = 0
        for r in range(n):
            chosen = flat[start : int(ends[r])]
            start = int(ends[r])
            if len(chosen) < k:
                chosen = self._fill(chosen, k, banned_sets[r])
            result.append([ids[c] for c in chosen])
        return result

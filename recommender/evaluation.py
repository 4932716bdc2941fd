"""Offline evaluation of the item-item recommender, on RecBole's default protocol.

Per user, a seeded random permutation of their distinct items is split 80/10/10 with
RecBole's rounding (:func:`split_counts`). Every method ranks all items for every user
with the training items masked; on test the validation items are masked too. Recall,
NDCG, Hit and MRR at ``k`` are averaged over the users who have held-out items. Each
method picks its configuration on the validation split only (best NDCG@k) and scores
the test split once; seeds 0..N-1 give N independent splits, reported as mean ± std.

Methods are named sets of candidate fitters, so a benchmark can put its own peers
(another library's models) through the same split, tuning and metrics.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np
import scipy.sparse as sp

from nudge.recommender.evaluation_data import Pairs
from nudge.recommender.model import ItemKNN
from nudge.recommender.training import Interactions, TrainParams

METRICS = ("recall", "ndcg", "hit", "mrr")
RATIOS = (0.8, 0.1, 0.1)

# Each entry is keyword arguments for TrainParams on top of EVAL_PARAMS, so a field added
# to TrainParams can be tuned by adding it here (or to --grid) and nowhere else.
DEFAULT_GRID: list[dict[str, Any]] = [
    {"k": k, "shrink": shrink}
    for k in (50, 100, 200, 400, 800)
    for shrink in (0.0, 10.0, 50.0, 100.0)
]
QUICK_GRID: list[dict[str, Any]] = [{"k": 100, "shrink": 0.0}, {"k": 800, "shrink": 0.0}]

# The split is a random permutation, not a timeline: decay by age or by history order
# would weigh noise, so both are off and the whole training history counts.
EVAL_PARAMS: dict[str, Any] = {
    "half_life_s": None,
    "popular_window_s": float("inf"),
    "history_half_life": None,
}


def split_counts(total: int, ratios: Sequence[float] = RATIOS) -> list[int]:
    """RecBole's ``_calcu_split_ids``: later parts round down, but get one item when they
    would round to none, as long as the first part keeps more than one."""
    counts = [int(r * total) for r in ratios]
    counts[0] = total - sum(counts[1:])
    for i in range(1, len(ratios)):
        if counts[0] <= 1:
            break
        if 0 < ratios[-i] * total < 1:
            counts[-i] += 1
            counts[0] -= 1
    return counts


@dataclass(slots=True)
class Split:
    """One seed's split. Item ``n`` of ``train`` is the string ``str(n)``."""

    train: Interactions
    seen: sp.csr_matrix  # users x items, 1.0 for each training pair
    valid: list[np.ndarray]  # per user, held-out item codes
    test: list[np.ndarray]
    #: per user, training item codes oldest first, when the split knows the order
    ordered: list[list[str]] | None = None

    @property
    def n_users(self) -> int:
        return int(self.seen.shape[0])

    @property
    def n_items(self) -> int:
        return int(self.seen.shape[1])

    def histories(self) -> list[list[str]]:
        if self.ordered is not None:
            return self.ordered
        seen = self.seen
        return [
            [str(i) for i in seen.indices[seen.indptr[u] : seen.indptr[u + 1]]]
            for u in range(self.n_users)
        ]


def split(pairs: Pairs, seed: int, ratios: Sequence[float] = RATIOS) -> Split:
    rng = np.random.default_rng(seed)
    users, n_users = pairs.users, pairs.n_users
    order = np.argsort(users, kind="stable")
    bounds = np.searchsorted(users[order], np.arange(n_users + 1))
    train_rows: list[np.ndarray] = []
    valid: list[np.ndarray] = []
    test: list[np.ndarray] = []
    for u in range(n_users):
        start, end = int(bounds[u]), int(bounds[u + 1])
        mine = order[start:end][rng.permutation(end - start)]
        n_train, n_valid, _ = split_counts(mine.size, ratios)
        train_rows.append(mine[:n_train])
        valid.append(pairs.items[mine[n_train : n_train + n_valid]])
        test.append(pairs.items[mine[n_train + n_valid :]])
    rows = np.concatenate(train_rows) if train_rows else np.zeros(0, dtype=np.int64)
    # (user, item) order: the fit sees the same input whatever the permutation was.
    rows = rows[np.lexsort((pairs.items[rows], users[rows]))]
    train = Interactions(
        customers=users[rows],
        items=pairs.items[rows],
        weights=pairs.weights[rows],
        ts=pairs.ts[rows],
        item_ids=[str(n) for n in range(pairs.n_items)],
        n_customers=n_users,
    )
    seen = sp.csr_matrix(
        (np.ones(rows.size), (train.customers, train.items)), shape=(n_users, pairs.n_items)
    )
    # Histories oldest first, as a shop serves them: a method that weighs the latest
    # items more must see the real latest, not the lowest item codes.
    by_time = np.lexsort((train.ts, train.customers))
    ordered: list[list[str]] = [[] for _ in range(n_users)]
    for u, i in zip(train.customers[by_time].tolist(), train.items[by_time].tolist(), strict=True):
        ordered[u].append(str(i))
    return Split(train, seen, valid, test, ordered=ordered)


def metrics(
    ranked: Sequence[Sequence[int]], truth: Sequence[np.ndarray], k: int
) -> dict[str, float]:
    """Recall, NDCG, Hit and MRR at ``k``, averaged over users with held-out items.

    NDCG's ideal gain counts ``min(|relevant|, k)`` hits, as RecBole does.
    """
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    sums = dict.fromkeys(METRICS, 0.0)
    users = 0
    for top, relevant in zip(ranked, truth, strict=True):
        if relevant.size == 0:
            continue
        users += 1
        hits = np.isin(np.asarray(top[:k], dtype=np.int64), relevant)
        if hits.any():
            sums["hit"] += 1.0
            sums["mrr"] += 1.0 / (int(np.argmax(hits)) + 1)
        sums["recall"] += float(hits.sum()) / relevant.size
        ideal = discounts[: min(relevant.size, k)].sum()
        sums["ndcg"] += float((discounts[: hits.size] * hits).sum() / ideal)
    return {name: value / users if users else 0.0 for name, value in sums.items()}


# Given per user the items to mask beyond their training items, the top-k item codes.
Ranker = Callable[[Sequence[np.ndarray]], list[list[int]]]
# Fits one configuration on a split's training part: a ranker and the fit's seconds.
Fitter = Callable[[Split, int], tuple[Ranker, float]]


def train_params(split: Split, entry: Mapping[str, Any]) -> TrainParams:
    """TrainParams for evaluation: EVAL_PARAMS, every item kept, then ``entry``."""
    whole = {"popular_count": split.n_items, "max_history": max(split.n_items, 1)}
    return TrainParams(**{**EVAL_PARAMS, **whole, **entry})


def fit_itemknn(
    split: Split, k: int, entry: Mapping[str, Any], algorithm: str = "personal"
) -> tuple[Ranker, float]:
    params = train_params(split, entry)
    began = time.perf_counter()
    model = ItemKNN.fit(split.train, params)
    seconds = time.perf_counter() - began
    histories = split.histories()

    def rank(masked: Sequence[np.ndarray]) -> list[list[int]]:
        excludes = [[str(i) for i in extra] for extra in masked]
        lists = model.recommend_batch(histories, k, algorithm, excludes=excludes)
        return [[int(i) for i in top] for top in lists]

    return rank, seconds


def grid_label(entry: Mapping[str, Any]) -> str:
    return (
        " ".join(
            f"{key}={value:g}" if isinstance(value, float) else f"{key}={value}"
            for key, value in entry.items()
        )
        or "defaults"
    )


@dataclass(frozen=True, slots=True)
class Method:
    """A named set of configurations; the one best on validation is scored on test."""

    name: str
    candidates: Mapping[str, Fitter]


def itemknn_method(
    grid: Sequence[Mapping[str, Any]] = DEFAULT_GRID, name: str = "nudge ItemKNN"
) -> Method:
    return Method(name, {grid_label(entry): partial(fit_itemknn, entry=entry) for entry in grid})


def popularity_method(name: str = "popularity (train counts)") -> Method:
    return Method(name, {"-": partial(fit_itemknn, entry={}, algorithm="popular")})


def check_grid(grid: Iterable[Mapping[str, Any]]) -> None:
    """Raise ValueError naming the first entry TrainParams refuses."""
    for entry in grid:
        try:
            TrainParams(**{**EVAL_PARAMS, **entry})
        except (TypeError, ValueError) as exc:
            raise ValueError(f"grid entry {dict(entry)}: {exc}") from None


@dataclass(frozen=True, slots=True)
class Outcome:
    """One method on one seed: what validation chose and how it did on test."""

    chosen: str
    scores: dict[str, float]
    fit_seconds: float


def tune(method: Method, data: Split, k: int) -> Outcome:
    """Pick the candidate with the best validation NDCG@k (first on ties); score it on test."""
    no_mask = [np.zeros(0, dtype=np.int64)] * data.n_users
    best: tuple[float, str, Ranker, float] | None = None
    for label, fit in method.candidates.items():
        rank, seconds = fit(data, k)
        if len(method.candidates) == 1:  # nothing to choose: spare the validation pass
            best = (0.0, label, rank, seconds)
            break
        score = metrics(rank(no_mask), data.valid, k)["ndcg"]
        if best is None or score > best[0]:
            best = (score, label, rank, seconds)
    if best is None:
        raise ValueError(f"{method.name}: no configuration to evaluate")
    _, label, rank, seconds = best
    return Outcome(label, metrics(rank(data.valid), data.test, k), seconds)


@dataclass(slots=True)
class MethodRuns:
    """A method's outcomes, one per seed."""

    name: str
    outcomes: list[Outcome] = field(default_factory=list)

    def values(self, metric: str) -> list[float]:
        return [o.scores[metric] for o in self.outcomes]

    def chosen(self) -> list[str]:
        """Distinct choices in order of first appearance."""
        return list(dict.fromkeys(o.chosen for o in self.outcomes))


def evaluate(
    pairs: Pairs,
    methods: Sequence[Method],
    seeds: int,
    k: int = 10,
    on_seed: Callable[[int, Mapping[str, Outcome]], None] | None = None,
) -> list[MethodRuns]:
    """Every method on the splits of seeds ``0..seeds-1``; ``on_seed`` after each seed."""
    if seeds < 1 or k < 1:
        raise ValueError("seeds and k must be at least 1")
    runs = [MethodRuns(m.name) for m in methods]
    for seed in range(seeds):
        data = split(pairs, seed)
        this_seed: dict[str, Outcome] = {}
        for method, record in zip(methods, runs, strict=True):
            outcome = tune(method, data, k)
            record.outcomes.append(outcome)
            this_seed[method.name] = outcome
        if on_seed is not None:
            on_seed(seed, this_seed)
    return runs

"""Evaluation by time: the protocols that match what a shop asks of its model.

``temporal`` (leave-last-out by time): per customer, their last moment (every
interaction at their latest timestamp) is the test, the moment before it the
validation, and everything earlier the training. ``next-basket``: the same with
moments that are orders (purchases), for basket data: the test is the last order.

Either way only the products *new* to the customer count as hits, since a customer's
history is never recommended; customers without a history before their validation
moment, or with nothing new in it, are left out. One split, no seeds: it is fixed by
the data's timestamps. Methods see ``Split.train`` only; validation chooses among their
settings and the test is scored once.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any, Literal

import numpy as np
import scipy.sparse as sp

from nudge.recommender.errors import DataError
from nudge.recommender.evaluation import (
    Method,
    MethodRuns,
    Ranker,
    Split,
    fit_itemknn,
    train_params,
)
from nudge.recommender.evaluation import tune as choose
from nudge.recommender.training import Interactions, TrainParams
from nudge.recommender.tuning import Holdout, tune

Protocol = Literal["temporal", "next-basket"]


def _moments(ts: np.ndarray, customers: np.ndarray, rows: np.ndarray, n: int) -> np.ndarray:
    """Per customer, the latest timestamp among ``rows`` (``-inf`` for none)."""
    latest = np.full(n, -np.inf)
    np.maximum.at(latest, customers[rows], ts[rows])
    return latest


def temporal_split(data: Interactions, protocol: Protocol = "temporal") -> Split:
    n = data.n_customers
    customers, items, ts = data.customers, data.items, data.ts
    if protocol == "next-basket":
        if data.purchases is None or not data.purchases.any():
            raise DataError("next-basket needs purchases (basket data)")
        eligible = data.purchases
    else:
        eligible = np.ones(len(data), dtype=bool)
    rows = np.flatnonzero(eligible)
    last = _moments(ts, customers, rows, n)
    earlier = rows[ts[rows] < last[customers[rows]]]
    previous = _moments(ts, customers, earlier, n)
    test_rows = eligible & (ts == last[customers])
    valid_rows = eligible & (ts == previous[customers])
    train_rows = ts < previous[customers]
    train = Interactions(
        customers=customers[train_rows],
        items=items[train_rows],
        weights=data.weights[train_rows],
        ts=ts[train_rows],
        item_ids=[str(i) for i in range(len(data.item_ids))],
        n_customers=n,
        purchases=None if data.purchases is None else data.purchases[train_rows],
    )
    seen = sp.csr_matrix(
        (np.ones(int(train_rows.sum())), (train.customers, train.items)),
        shape=(n, len(data.item_ids)),
    )
    seen.data[:] = 1.0
    known = [set(seen.indices[seen.indptr[u] : seen.indptr[u + 1]].tolist()) for u in range(n)]
    valid = _new_items(customers[valid_rows], items[valid_rows], known, n)
    valid_known = [known[u].union(valid[u].tolist()) for u in range(n)]
    test = _new_items(customers[test_rows], items[test_rows], valid_known, n)
    keep = [bool(known[u]) and valid[u].size > 0 and test[u].size > 0 for u in range(n)]
    if not any(keep):
        raise DataError(f"{protocol}: no customer has a history, a validation and a test moment")
    empty = np.zeros(0, dtype=np.int64)
    order = np.lexsort((train.ts, train.customers))
    ordered: list[list[str]] = [[] for _ in range(n)]
    for c, i in zip(train.customers[order].tolist(), train.items[order].tolist(), strict=True):
        ordered[c].append(str(i))
    return Split(
        train,
        seen,
        [v if k else empty for v, k in zip(valid, keep, strict=True)],
        [t if k else empty for t, k in zip(test, keep, strict=True)],
        ordered=ordered,
    )


def _new_items(
    customers: np.ndarray, items: np.ndarray, known: list[set[int]], n: int
) -> list[np.ndarray]:
    found: list[set[int]] = [set() for _ in range(n)]
    for c, i in zip(customers.tolist(), items.tolist(), strict=True):
        if i not in known[c]:
            found[c].add(i)
    return [np.fromiter(sorted(f), dtype=np.int64, count=len(f)) for f in found]


#: What ``nudge train`` uses with tuning off: its time decays included (the random
#: protocol's evaluation switches them off; time is what these protocols are about).
DEFAULTS: dict[str, Any] = {
    name: getattr(TrainParams(), name)
    for name in ("half_life_s", "popular_window_s", "history_half_life", "weighting", "k",
                 "shrink", "bm25_k1", "bm25_b")
}  # fmt: skip


def defaults_method(name: str = "nudge, default settings") -> Method:
    return Method(name, {"defaults": partial(fit_itemknn, entry=DEFAULTS)})


def fit_tuned(
    split: Split,
    k: int,
    budget_s: float,
    on_chosen: Callable[[dict[str, Any]], None] | None = None,
) -> tuple[Ranker, float]:
    """``nudge train`` as shipped: tuning on the training part's own latest moment
    (``split.train`` is all it is given), then the chosen settings fitted on it."""
    began = time.perf_counter()
    chosen = tune(split.train, TrainParams(), budget_s).best.settings
    if on_chosen is not None:
        on_chosen(chosen)
    rank, _ = fit_itemknn(split, k, {**DEFAULTS, **chosen})
    return rank, time.perf_counter() - began


def tuned_method(
    budget_s: float,
    name: str = "nudge, tuned (default)",
    on_chosen: Callable[[dict[str, Any]], None] | None = None,
) -> Method:
    return Method(name, {"tuned": partial(fit_tuned, budget_s=budget_s, on_chosen=on_chosen)})


def fit_tuned_on_validation(split: Split, k: int, budget_s: float) -> tuple[Ranker, float]:
    """``nudge train``'s search, with the protocol's own validation split as its holdout.

    For RecBole's random protocol, where a shop's "latest moment" means nothing (the
    test is a random tenth of each customer's products): every method there is chosen
    on the validation split, and so is this one. The search space, the start (the
    shipped defaults) and the budget are ``nudge train``'s."""
    began = time.perf_counter()
    users = [u for u in range(split.n_users) if split.valid[u].size]
    histories = split.histories()
    given = Holdout(
        train=split.train,
        histories=[histories[u] for u in users],
        truth=[split.valid[u] for u in users],
        described="the validation split",
    )
    base = train_params(split, DEFAULTS)
    chosen = tune(split.train, base, budget_s, given=given).best.settings
    rank, _ = fit_itemknn(split, k, {**DEFAULTS, **chosen})
    return rank, time.perf_counter() - began


def validation_tuned_method(budget_s: float, name: str = "nudge, tuned on validation") -> Method:
    return Method(name, {"tuned": partial(fit_tuned_on_validation, budget_s=budget_s)})


def evaluate_by_time(
    data: Interactions, protocol: Protocol, methods: Sequence[Method], k: int = 10
) -> list[MethodRuns]:
    """Every method on the one split the protocol gives."""
    split = temporal_split(data, protocol)
    return [MethodRuns(method.name, [choose(method, split, k)]) for method in methods]

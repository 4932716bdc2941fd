"""Settings chosen on the shop's own latest interactions (``nudge train``'s tuning).

A shop's data looks nothing like a public benchmark's: groceries live on repeats and
best sellers, fashion on browsing. So ``nudge train`` holds out the latest slice of
the data, by time, and picks the settings that best predict it:

* the holdout is each customer's last moment (every interaction at their latest
  timestamp: a last basket), or, with ``holdout_days``, everything of the last days;
* a candidate is fitted on all the interactions before the holdout and scored by
  NDCG@10 of ``personal`` against each held-out customer's *new* products (those not
  in their history: the history is never recommended), with the evaluation's own
  ``metrics``;
* candidates come from ``SPACE`` (weighting, K, shrink, time decay, binary weights,
  the decay along a customer's history, a blend with popularity) by coordinate
  ascent from the defaults, until a sweep improves nothing or the budget is spent.

The caller refits the chosen settings on everything; the holdout only ever chooses.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from nudge.recommender.errors import DataError
from nudge.recommender.evaluation import metrics
from nudge.recommender.model import ItemKNN
from nudge.recommender.training import DAY_S, Interactions, TrainParams

TOP = 10
#: The settings tuning may choose, each a list of ``TrainParams`` keyword sets.
SPACE: dict[str, list[dict[str, Any]]] = {
    "weighting": [
        {"weighting": "none"},
        {"weighting": "tfidf"},
        {"weighting": "bm25", "bm25_k1": 1.2, "bm25_b": 0.75},
        {"weighting": "bm25", "bm25_k1": 100.0, "bm25_b": 0.8},
    ],
    "k": [{"k": k} for k in (20, 50, 100, 200, 400, 800)],
    "shrink": [{"shrink": s} for s in (0.0, 10.0, 50.0, 100.0)],
    "half_life_s": [{"half_life_s": h} for h in (None, 7 * DAY_S, 30 * DAY_S, 90 * DAY_S)],
    "binary": [{"binary": False}, {"binary": True}],
    "history_half_life": [{"history_half_life": h} for h in (5.0, 20.0, None)],
    "popularity_blend": [{"popularity_blend": b} for b in (0.0, 0.1, 0.3, 1.0)],
}
#: Held-out customers scored per candidate at most (a seeded sample): enough to rank
#: settings, few enough for a budget of a minute on a large shop.
MAX_CUSTOMERS = 20_000


@dataclass(frozen=True, slots=True)
class Holdout:
    """The interactions before the holdout, and per held-out customer their history
    (product ids, oldest first) and the codes of the new products they turned to."""

    train: Interactions
    histories: list[list[str]]
    truth: list[np.ndarray]
    described: str


@dataclass(frozen=True, slots=True)
class Trial:
    settings: dict[str, Any]
    ndcg: float
    recall: float
    fit_s: float


@dataclass(slots=True)
class Tuning:
    holdout: str
    customers: int
    budget_s: float
    trials: list[Trial] = field(default_factory=list)
    spent_s: float = 0.0

    @property
    def best(self) -> Trial:
        return max(self.trials, key=lambda t: t.ndcg)  # first of equals: the defaults

    def as_metadata(self) -> dict[str, Any]:
        return {
            "holdout": self.holdout,
            "customers": self.customers,
            "budget_s": self.budget_s,
            "spent_s": round(self.spent_s, 2),
            "chosen": self.best.settings,
            "validation_ndcg@10": round(self.best.ndcg, 6),
            "default_ndcg@10": round(self.trials[0].ndcg, 6),
            "trials": [
                {
                    **t.settings,
                    "ndcg@10": round(t.ndcg, 6),
                    "recall@10": round(t.recall, 6),
                    "fit_s": round(t.fit_s, 3),
                }
                for t in self.trials
            ],
        }


def holdout(data: Interactions, holdout_days: float | None = None, seed: int = 0) -> Holdout:
    """Split off the latest slice (see the module); raise DataError when nobody in it
    has both a history before it and a new product in it."""
    customers, items, ts = data.customers, data.items, data.ts
    if holdout_days is not None:
        held = ts > ts.max() - holdout_days * DAY_S
        described = f"the last {holdout_days:g} days"
    else:
        last = np.full(data.n_customers, -np.inf)
        np.maximum.at(last, customers, ts)
        held = ts == last[customers]
        described = "each customer's last moment"
    before = ~held
    train = replace(
        data,
        customers=customers[before],
        items=items[before],
        weights=data.weights[before],
        ts=ts[before],
        purchases=None if data.purchases is None else data.purchases[before],
    )
    history: dict[int, list[int]] = {}
    order = np.argsort(train.ts, kind="stable")
    for c, i in zip(train.customers[order].tolist(), train.items[order].tolist(), strict=True):
        history.setdefault(c, []).append(i)
    wanted: dict[int, set[int]] = {}
    for c, i in zip(customers[held].tolist(), items[held].tolist(), strict=True):
        if c in history:
            wanted.setdefault(c, set()).add(i)
    chosen = [c for c, new in wanted.items() if new.difference(history[c])]
    if not chosen:
        raise DataError(f"nobody in the holdout ({described}) has a history before it")
    if len(chosen) > MAX_CUSTOMERS:
        chosen = sorted(random.Random(seed).sample(chosen, MAX_CUSTOMERS))
    ids = data.item_ids
    return Holdout(
        train=train,
        histories=[[ids[i] for i in history[c]] for c in chosen],
        truth=[
            np.fromiter(sorted(wanted[c].difference(history[c])), dtype=np.int64) for c in chosen
        ],
        described=described,
    )


def score(split: Holdout, params: TrainParams) -> Trial:
    began = time.perf_counter()
    model = ItemKNN.fit(split.train, params)
    fit_s = time.perf_counter() - began
    index = {product: n for n, product in enumerate(model.item_ids)}
    ranked = [
        [index[p] for p in top] for top in model.recommend_batch(split.histories, TOP, "personal")
    ]
    found = metrics(ranked, split.truth, TOP)
    return Trial({}, found["ndcg"], found["recall"], fit_s)


def tune(
    data: Interactions,
    base: TrainParams,
    budget_s: float,
    fixed: Mapping[str, Any] | None = None,
    holdout_days: float | None = None,
    seed: int = 0,
    on_trial: Callable[[Trial], None] | None = None,
    clock: Callable[[], float] = time.perf_counter,
    given: Holdout | None = None,
) -> Tuning:
    """Coordinate ascent from ``base`` (the defaults and whatever the caller fixed): each
    setting of ``SPACE`` in turn is tried at each of its values with the others at the
    best found so far, and the sweeps repeat until one improves nothing or ``budget_s``
    is spent (a trial is started only while budget remains).

    The holdout is ``data``'s latest slice, unless the caller ``given`` one of its own
    (an evaluation protocol's validation split); ``data`` is then not read."""
    began = clock()
    split = given if given is not None else holdout(data, holdout_days, seed)
    fixed = dict(fixed or {})
    result = Tuning(split.described, len(split.histories), budget_s)
    tried: dict[str, Trial] = {}

    def attempt(changes: Mapping[str, Any]) -> Trial | None:
        params = replace(base, **{**changes, **fixed})
        settings = _settings(params)
        key = repr(sorted(settings.items()))
        if key in tried:
            return tried[key]
        if result.trials and clock() - began >= budget_s:
            return None
        trial = replace(score(split, params), settings=settings)
        tried[key] = trial
        result.trials.append(trial)
        if on_trial is not None:
            on_trial(trial)
        return trial

    best = attempt({})
    assert best is not None
    current: dict[str, Any] = {}
    improved = True
    while improved:
        improved = False
        for name, values in SPACE.items():
            if name in fixed:
                continue
            for value in values:
                trial = attempt({**current, **value})
                if trial is None:
                    result.spent_s = clock() - began
                    return result
                if trial.ndcg > best.ndcg:
                    best, current, improved = trial, {**current, **value}, True
    result.spent_s = clock() - began
    return result


def _settings(params: TrainParams) -> dict[str, Any]:
    """The tuned fields of ``params``."""
    names = {key for values in SPACE.values() for part in values for key in part}
    if params.weighting != "bm25":  # its parameters then change nothing
        names -= {"bm25_k1", "bm25_b"}
    data = params.to_json()
    return {name: data[name] for name in sorted(names)}

"""Offline quality of the item-item recommender on MovieLens-100k, next to `implicit`.

    python benchmarks/recommender_eval.py [--seeds 5] [--big]

The protocol (data fetch, per-user 80/10/10 split, full ranking with masking, tuning on
validation, mean ± std over seeds) is the library's, :mod:`recommender.evaluation`, the
one ``nudge evaluate`` runs; ``--inter PATH`` uses a local ``ml-100k.inter`` instead of
downloading the recbole wheel.

What this script adds are the peers, in the same run and on the same splits: ``implicit``
0.7.3 CosineRecommender and BM25Recommender (a benchmark-only install:
``pip install implicit==0.7.3``), each tuned on K over the validation split like ours.
``--big`` also times fitting on a synthetic RetailRocket-sized set (1.4M customers x
235k products, 2.5M interactions) against implicit's CosineRecommender.
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from nudge.recommender import temporal
from nudge.recommender.evaluation import (
    Method,
    Ranker,
    Split,
    evaluate,
    itemknn_method,
    popularity_method,
)
from nudge.recommender.evaluation_data import (
    distinct_pairs,
    fetch_ml100k,
    inter_interactions,
    load_instacart,
    load_ml100k,
)
from nudge.recommender.evaluation_report import anchors_for, seed_line, table
from nudge.recommender.model import ItemKNN
from nudge.recommender.training import Interactions, TrainParams

TOP = 10
IMPLICIT_GRID = [50, 100, 200, 400, 800]


def fit_implicit(data: Split, k: int, kind: str, neighbours: int) -> tuple[Ranker, float]:
    from implicit.nearest_neighbours import BM25Recommender, CosineRecommender

    model = (
        CosineRecommender(K=neighbours, num_threads=1)
        if kind == "cosine"
        else BM25Recommender(K=neighbours, num_threads=1)
    )
    user_items = data.seen.astype(np.float32).tocsr()
    began = time.perf_counter()
    with warnings.catch_warnings():
        # implicit's own weighting step hands its fit a COO matrix and warns about the
        # (sub-millisecond) conversion: noise, not something a caller can change.
        warnings.filterwarnings("ignore", message="Method expects CSR input")
        model.fit(user_items, show_progress=False)
    seconds = time.perf_counter() - began
    users = np.arange(data.n_users)

    def rank(masked: Sequence[np.ndarray]) -> list[list[int]]:
        extra = max((m.size for m in masked), default=0)
        ids, _ = model.recommend(users, user_items, N=k + extra, filter_already_liked_items=True)
        out = []
        for row, mask in zip(ids, masked, strict=True):
            banned = set(mask.tolist())
            out.append([int(i) for i in row if i >= 0 and i not in banned][:k])
        return out

    return rank, seconds


def implicit_method(kind: str, label: str) -> Method:
    fits = {f"K={n}": partial(fit_implicit, kind=kind, neighbours=n) for n in IMPLICIT_GRID}
    return Method(f"{label} 0.7.3", fits)


def big_fit(with_implicit: bool, rounds: int) -> None:
    """Fit time on a synthetic RetailRocket-sized set: ours vs implicit, alternating."""
    n_customers, n_items, n = 1_400_000, 235_000, 2_500_000
    rng = np.random.default_rng(0)
    # mostly one or two events per customer, plus 50 heavy customers (bots, power
    # shoppers) with ~1,000 events each
    customers = rng.integers(0, n_customers, size=n)
    heavy = rng.random(n) < 0.02
    customers[heavy] = rng.integers(0, 50, size=int(heavy.sum()))
    group_size = 20
    interest = (customers * 2_654_435_761) % (n_items // group_size)
    grouped = interest * group_size + rng.integers(0, group_size, size=n)
    # noise follows a skewed popularity, like real catalogues
    skewed = np.minimum((rng.pareto(1.2, size=n) * 50).astype(np.int64), n_items - 1)
    items = np.where(rng.random(n) < 0.3, skewed, grouped)
    weights = rng.choice([1.0, 3.0, 5.0], size=n, p=[0.9, 0.07, 0.03])
    data = Interactions(
        customers=customers,
        items=items,
        weights=weights,
        ts=1.7e9 + rng.random(n) * 140 * 86_400,
        item_ids=[str(i) for i in range(n_items)],
        n_customers=n_customers,
        purchases=weights == 5.0,  # so the fit also learns also_bought
    )
    print(f"\nbig: {n} interactions, {n_customers} customers, {n_items} items; {rounds} rounds")
    fits: dict[str, Callable[[], object]] = {
        "nudge ItemKNN fit (K=50; decay, BM25, also_bought, popularity)": partial(
            ItemKNN.fit, data, TrainParams(k=50, shrink=10.0)
        )
    }
    if with_implicit:
        from implicit.nearest_neighbours import BM25Recommender, CosineRecommender

        matrix = sp.csr_matrix(
            (weights.astype(np.float32), (customers, items)), shape=(n_customers, n_items)
        )
        fits["implicit CosineRecommender fit (K=50, 1 thread)"] = lambda: CosineRecommender(
            K=50, num_threads=1
        ).fit(matrix, show_progress=False)
        fits["implicit BM25Recommender fit (K=50, 1 thread)"] = lambda: BM25Recommender(
            K=50, num_threads=1
        ).fit(matrix, show_progress=False)
    seconds: dict[str, list[float]] = {name: [] for name in fits}
    for _ in range(rounds):
        for name, fit in fits.items():
            began = time.perf_counter()
            fit()
            seconds[name].append(time.perf_counter() - began)
    ours = next(iter(seconds))
    print("| measure | median | runs |")
    print("|---|---|---|")
    for name, runs in seconds.items():
        ratio = statistics.median(runs) / statistics.median(seconds[ours])
        note = "" if name == ours else f" ({ratio:.2f}x ours)"
        listed = ", ".join(f"{s:.2f}" for s in runs)
        print(f"| {name} | {statistics.median(runs):.2f} s{note} | {listed} |")
    model = ItemKNN.fit(data, TrainParams(k=50, shrink=10.0))
    print(
        f"| neighbour pairs / co-purchase pairs | {model.indices.size:,} / "
        f"{model.bought_indices.size:,} | |"
    )
    print(f"| model arrays in memory | {model.memory_bytes / 2**20:.0f} MiB | |")
    histories = [
        [str(i) for i in items[customers == c][:20]] for c in rng.integers(50, n_customers, 300)
    ]
    histories = [h for h in histories if h] * 10
    long = [[str(i) for i in rng.choice(items, 20)] for _ in range(3000)]
    for label, sample in (("customer histories", histories), ("20-item histories", long)):
        print(f"| recommend top-10, {label}, p50 / p99 | {serving(model, sample)} | |")
    # What tuning may choose serves too: a popularity blend, and the largest K with
    # binary weights (Instacart's choice).
    for label, params in (
        ("popularity blend 0.3", TrainParams(k=50, shrink=10.0, popularity_blend=0.3)),
        (
            "K=800, binary, no weighting, blend 0.3",
            TrainParams(k=800, shrink=100.0, binary=True, weighting="none", popularity_blend=0.3),
        ),
    ):
        tuned = ItemKNN.fit(data, params)
        timing = serving(tuned, long)
        print(f"| recommend top-10, 20-item histories, {label}, p50 / p99 | {timing} | |")
    batch = (histories * 10)[:10_000]
    began = time.perf_counter()
    model.recommend_batch(batch, 10)
    rate = len(batch) / (time.perf_counter() - began)
    print(f"| recommend_batch top-10, {len(batch)} customers | {rate:,.0f} customers/s | |")
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"| process peak RSS | {peak:.0f} MiB | |")


def serving(model: ItemKNN, sample: list[list[str]]) -> str:
    """p50 / p99 of one top-10 ``recommend`` call over ``sample``, in milliseconds."""
    latencies = []
    for history in sample:
        began = time.perf_counter()
        model.recommend(history, 10)
        latencies.append(time.perf_counter() - began)
    p50, p99 = np.percentile(latencies, [50, 99]) * 1000
    return f"{p50:.3f} / {p99:.3f} ms"


def by_time(dataset: str, protocol: Any, budget_s: float, with_implicit: bool) -> None:
    """The shipped (tuned) model, its default settings, popularity and implicit's two
    models on the one split a temporal protocol gives; implicit tuned on K over the
    validation moment like ours."""
    data = load_instacart() if dataset == "instacart" else inter_interactions(fetch_ml100k())
    print(f"{dataset}: {len(data)} interactions, {data.n_customers} customers; {protocol}")
    methods = [
        temporal.tuned_method(budget_s, on_chosen=lambda chosen: print(f"tuned: {chosen}")),
        temporal.defaults_method(),
        popularity_method(),
    ]
    if with_implicit:
        methods += [implicit_method("cosine", "implicit Cosine")]
        methods += [implicit_method("bm25", "implicit BM25")]
    began = time.perf_counter()
    runs = temporal.evaluate_by_time(data, protocol, methods, TOP)
    print(f"({time.perf_counter() - began:.0f} s)")
    print(table(runs, TOP, {}))


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--inter", type=Path, help="a local ml-100k.inter instead of the wheel")
    parser.add_argument("--big", action="store_true", help="also time a RetailRocket-sized fit")
    parser.add_argument("--rounds", type=int, default=5, help="--big: fits of each, alternating")
    parser.add_argument("--only-big", action="store_true", help="skip the ML-100k evaluation")
    parser.add_argument(
        "--protocol", choices=["random", "temporal", "next-basket"], default="random"
    )
    parser.add_argument(
        "--dataset",
        choices=["ml-100k", "instacart"],
        default="ml-100k",
        help="with --protocol temporal or next-basket",
    )
    parser.add_argument(
        "--tune-budget",
        type=float,
        default=20.0,
        help="seconds of tuning for the tuned model (temporal protocols)",
    )
    args = parser.parse_args(argv)
    try:
        import implicit  # noqa: F401

        with_implicit = True
    except ImportError:
        print("implicit is not installed (pip install implicit==0.7.3): peers skipped")
        with_implicit = False
    if args.only_big:
        big_fit(with_implicit, args.rounds)
        return
    if args.protocol != "random":
        by_time(args.dataset, args.protocol, args.tune_budget, with_implicit)
        return
    if args.dataset == "instacart":
        pairs = distinct_pairs("instacart", load_instacart())
    else:
        pairs = load_ml100k(args.inter)
    # nudge train's search on the protocol's validation split, nudge train as shipped
    # (its holdout is each customer's last moment of the training part), and the grid
    methods = [
        temporal.validation_tuned_method(args.tune_budget),
        temporal.tuned_method(args.tune_budget),
    ]
    print(f"{pairs.describe()}; {args.seeds} seeds")
    methods += [itemknn_method(), popularity_method()]
    if with_implicit:
        methods += [implicit_method("cosine", "implicit Cosine")]
        methods += [implicit_method("bm25", "implicit BM25")]
    runs = evaluate(
        pairs,
        methods,
        args.seeds,
        TOP,
        on_seed=lambda seed, done: print(seed_line(seed, done), flush=True),
    )
    print()
    print(table(runs, TOP, anchors_for(args.dataset, TOP)))
    if args.big:
        big_fit(with_implicit, args.rounds)


if __name__ == "__main__":
    main()

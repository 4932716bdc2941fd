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
import time
import warnings
from collections.abc import Sequence
from functools import partial
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from recommender.evaluation import (
    Method,
    Ranker,
    Split,
    evaluate,
    itemknn_method,
    popularity_method,
)
from recommender.evaluation_data import load_ml100k
from recommender.evaluation_report import anchors_for, seed_line, table
from recommender.model import ItemKNN
from recommender.training import Interactions, TrainParams

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


def big_fit(with_implicit: bool) -> None:
    """Fit time on a synthetic RetailRocket-sized set: ours vs implicit CosineRecommender."""
    n_customers, n_items, n = 1_400_000, 235_000, 2_500_000
    rng = np.random.default_rng(0)
    # mostly one or two events per customer, plus 50 heavy customers (bots, power
    # shoppers) with ~1,000 events each: they dominate the cost of X.T @ X
    customers = rng.integers(0, n_customers, size=n)
    heavy = rng.random(n) < 0.02
    customers[heavy] = rng.integers(0, 50, size=int(heavy.sum()))
    group_size = 20
    interest = (customers * 2_654_435_761) % (n_items // group_size)
    grouped = interest * group_size + rng.integers(0, group_size, size=n)
    # noise follows a skewed popularity, like real catalogues
    skewed = np.minimum((rng.pareto(1.2, size=n) * 50).astype(np.int64), n_items - 1)
    items = np.where(rng.random(n) < 0.3, skewed, grouped)
    data = Interactions(
        customers=customers,
        items=items,
        weights=rng.choice([1.0, 3.0, 5.0], size=n, p=[0.9, 0.07, 0.03]),
        ts=1.7e9 + rng.random(n) * 140 * 86_400,
        item_ids=[str(i) for i in range(n_items)],
        n_customers=n_customers,
    )
    print(f"\nbig: {n} interactions, {n_customers} customers, {n_items} items")
    began = time.perf_counter()
    model = ItemKNN.fit(data, TrainParams(k=50, shrink=10.0))
    ours = time.perf_counter() - began
    print(f"| nudge ItemKNN fit (K=50, decay, weights) | {ours:.1f} s |")
    print(f"|   neighbour pairs | {model.indices.size} |")
    histories = [
        [str(i) for i in items[customers == c][:20]] for c in rng.integers(50, n_customers, 300)
    ]
    histories = [h for h in histories if h] * 10
    long = [[str(i) for i in rng.choice(items, 20)] for _ in range(3000)]
    for label, sample in (("customer histories", histories), ("20-item histories", long)):
        latencies = []
        for history in sample:
            began = time.perf_counter()
            model.recommend(history, 10)
            latencies.append(time.perf_counter() - began)
        p50, p99 = np.percentile(latencies, [50, 99]) * 1000
        print(f"| recommend top-10, {label}, p50 / p99 | {p50:.3f} / {p99:.3f} ms |")
    batch = (histories * 10)[:10_000]
    began = time.perf_counter()
    model.recommend_batch(batch, 10)
    rate = len(batch) / (time.perf_counter() - began)
    print(f"| recommend_batch top-10, {len(batch)} customers | {rate:,.0f} customers/s |")
    if with_implicit:
        from implicit.nearest_neighbours import CosineRecommender

        matrix = sp.csr_matrix(
            (data.weights.astype(np.float32), (customers, items)), shape=(n_customers, n_items)
        )
        began = time.perf_counter()
        CosineRecommender(K=50, num_threads=1).fit(matrix, show_progress=False)
        print(f"| implicit CosineRecommender fit (K=50) | {time.perf_counter() - began:.1f} s |")
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"| process peak RSS | {peak:.0f} MiB |")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--inter", type=Path, help="a local ml-100k.inter instead of the wheel")
    parser.add_argument("--big", action="store_true", help="also time a RetailRocket-sized fit")
    args = parser.parse_args(argv)
    try:
        import implicit  # noqa: F401

        with_implicit = True
    except ImportError:
        print("implicit is not installed (pip install implicit==0.7.3): peers skipped")
        with_implicit = False
    pairs = load_ml100k(args.inter)
    print(f"{pairs.describe()}; {args.seeds} seeds")
    methods = [itemknn_method(), popularity_method()]
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
    print(table(runs, TOP, anchors_for("ml-100k", TOP)))
    if args.big:
        big_fit(with_implicit)


if __name__ == "__main__":
    main()

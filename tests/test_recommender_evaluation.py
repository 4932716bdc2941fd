"""The offline evaluation protocol and ``nudge evaluate``, with no network."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

from nudge.cli.main import main
from nudge.recommender import synthetic
from nudge.recommender.evaluation import (
    Method,
    Ranker,
    Split,
    fit_itemknn,
    metrics,
    split,
    split_counts,
    tune,
)
from nudge.recommender.evaluation_data import distinct_pairs, parse_inter
from nudge.recommender.training import Interactions


# Worked through RecBole's _calcu_split_ids by hand: int(0.1 * n) for valid and test,
# the rest to train; then valid and test each take one item from train when 0.1 * n
# is under 1, but only while train still has more than one.
@pytest.mark.parametrize(
    ("total", "expected"),
    [
        (1, [1, 0, 0]),  # train has one: nothing moves
        (2, [1, 0, 1]),  # test takes one, then train is down to one
        (3, [1, 1, 1]),
        (5, [3, 1, 1]),
        (9, [7, 1, 1]),
        (10, [8, 1, 1]),  # 0.1 * 10 = 1 exactly: no top-up
        (19, [17, 1, 1]),  # int(1.9) = 1
        (20, [16, 2, 2]),
        (25, [21, 2, 2]),
    ],
)
def test_split_counts_follow_recbole_rounding(total: int, expected: list[int]) -> None:
    assert split_counts(total) == expected


def test_metrics_by_hand() -> None:
    ranked = [[5, 2, 7, 1], [9, 8, 6], [1, 2, 3]]
    truth = [np.array([2, 1]), np.array([4]), np.array([], dtype=np.int64)]
    # user 0, k=3: one hit (item 2) at rank 2; item 1 is at rank 4, past the cutoff.
    #   recall 1/2, hit 1, mrr 1/2, ndcg (1/log2 3) / (1 + 1/log2 3)
    # user 1: no hit, all zero. user 2 has nothing held out and does not count.
    got = metrics(ranked, truth, k=3)
    ndcg_0 = (1 / math.log2(3)) / (1 + 1 / math.log2(3))
    assert got["recall"] == pytest.approx(0.25)
    assert got["hit"] == pytest.approx(0.5)
    assert got["mrr"] == pytest.approx(0.25)
    assert got["ndcg"] == pytest.approx(ndcg_0 / 2)


def test_metrics_ideal_dcg_is_capped_at_k() -> None:
    # four relevant items, k=2, both slots hit: NDCG is 1 (the ideal has only 2 slots),
    # recall is 2/4, MRR 1.
    got = metrics([[3, 4]], [np.array([1, 2, 3, 4])], k=2)
    assert got == pytest.approx({"recall": 0.5, "ndcg": 1.0, "hit": 1.0, "mrr": 1.0})


def _pairs(n_users: int = 40, per_user: int = 12, n_items: int = 30, seed: int = 0) -> Split:
    rng = np.random.default_rng(seed)
    users = np.repeat(np.arange(n_users), per_user)
    items = np.concatenate([rng.choice(n_items, per_user, replace=False) for _ in range(n_users)])
    data = Interactions(
        customers=users,
        items=items,
        weights=np.ones(users.size),
        ts=np.zeros(users.size),
        item_ids=[str(n) for n in range(n_items)],
        n_customers=n_users,
    )
    return split(distinct_pairs("test", data), seed=seed)


def test_split_partitions_each_users_items() -> None:
    rng = np.random.default_rng(1)
    sizes = [1, 2, 3, 7, 10, 25]
    users = np.repeat(np.arange(len(sizes)), sizes)
    items = np.concatenate([rng.choice(40, n, replace=False) for n in sizes])
    shuffle = rng.permutation(users.size)  # file order should not matter to the sizes
    data = Interactions(
        customers=users[shuffle],
        items=items[shuffle],
        weights=np.ones(users.size),
        ts=np.zeros(users.size),
        item_ids=[str(n) for n in range(40)],
        n_customers=len(sizes),
    )
    pairs = distinct_pairs("test", data)
    one, again, other = split(pairs, 3), split(pairs, 3), split(pairs, 4)
    for u, n in enumerate(sizes):
        train = one.seen.indices[one.seen.indptr[u] : one.seen.indptr[u + 1]]
        parts = [train, one.valid[u], one.test[u]]
        assert [p.size for p in parts] == split_counts(n)
        assert sorted(np.concatenate(parts).tolist()) == sorted(items[users == u].tolist())
        assert np.array_equal(one.test[u], again.test[u])  # seeded
    assert len(one.train) == one.seen.nnz
    assert any(not np.array_equal(a, b) for a, b in zip(one.test, other.test, strict=True))


def test_repeated_events_become_one_pair_with_summed_weight() -> None:
    data = Interactions(
        customers=np.array([0, 0, 1, 0]),
        items=np.array([1, 0, 1, 1]),
        weights=np.array([1.0, 3.0, 1.0, 5.0]),
        ts=np.array([10.0, 20.0, 30.0, 40.0]),
        item_ids=["a", "b"],
        n_customers=2,
    )
    pairs = distinct_pairs("x", data)
    assert list(zip(pairs.users.tolist(), pairs.items.tolist(), strict=True)) == [
        (0, 1),
        (0, 0),
        (1, 1),
    ]
    assert pairs.weights.tolist() == [6.0, 3.0, 1.0]
    assert pairs.ts.tolist() == [40.0, 20.0, 30.0]


def test_parse_inter_reads_recbole_atomic_files() -> None:
    raw = (
        b"user_id:token\titem_id:token\trating:float\ttimestamp:float\n"
        b"7\t1\t3\t5\n8\t1\t4\t6\n7\t2\t1\t7\n"
    )
    pairs = parse_inter(raw)
    assert (pairs.n_users, pairs.n_items, len(pairs)) == (2, 2, 3)
    assert pairs.users.tolist() == [0, 1, 0]
    assert pairs.items.tolist() == [0, 0, 1]
    assert pairs.weights.tolist() == [1.0, 1.0, 1.0]


@pytest.mark.parametrize("algorithm", ["personal", "popular"])
def test_seen_items_are_masked(algorithm: str) -> None:
    data = _pairs()
    rank, _ = fit_itemknn(data, 5, {"k": 20, "shrink": 0.0}, algorithm)
    none = [np.zeros(0, dtype=np.int64)] * data.n_users
    for u, (on_valid, on_test) in enumerate(zip(rank(none), rank(data.valid), strict=True)):
        train = set(data.seen.indices[data.seen.indptr[u] : data.seen.indptr[u + 1]].tolist())
        assert len(on_valid) == 5 and len(on_test) == 5
        assert not train & set(on_valid)
        assert not (train | set(data.valid[u].tolist())) & set(on_test)


def test_tune_picks_on_validation_and_scores_on_test() -> None:
    data = _pairs()

    def oracle(truth: list[np.ndarray]) -> Ranker:
        return lambda masked: [t.tolist() for t in truth]

    method = Method(
        "oracles",
        {
            "knows test": lambda split, k: (oracle(split.test), 0.0),
            "knows valid": lambda split, k: (oracle(split.valid), 0.0),
        },
    )
    outcome = tune(method, data, 10)
    # the validation oracle wins on validation; on test it hits nothing (disjoint parts)
    assert outcome.chosen == "knows valid"
    assert outcome.scores["hit"] == 0.0


SPEC = synthetic.SyntheticSpec(n_customers=600, n_groups=20, group_size=6, per_customer=10)


def test_cli_evaluate_on_planted_structure(tmp_path: Path) -> None:
    data = synthetic.write(SPEC, tmp_path / "events.csv")
    out = tmp_path / "results.json"
    args = ["evaluate", "--interactions", str(data), "--seeds", "1", "--quick"]
    result = CliRunner().invoke(main, [*args, "--json", str(out)])
    assert result.exit_code == 0, result.output
    assert "| nudge ItemKNN |" in result.stdout
    assert "| popularity (train counts) |" in result.stdout
    assert "RecBole" not in result.stdout  # the anchor is for ML-100k only
    report = json.loads(out.read_text())
    ours = report["methods"]["nudge ItemKNN"]
    popular = report["methods"]["popularity (train counts)"]
    assert ours["chosen_per_seed"][0] in ("k=100 shrink=0", "k=800 shrink=0")
    # customers shop within one group of 6 out of 120 products: neighbours must find it
    assert ours["ndcg"]["mean"] > 2 * popular["ndcg"]["mean"]
    assert ours["recall"]["mean"] > popular["recall"]["mean"]
    assert report["dataset"]["users"] == SPEC.n_customers


def test_cli_evaluate_grid_is_checked(tmp_path: Path) -> None:
    data = synthetic.write(SPEC, tmp_path / "events.jsonl")
    runner = CliRunner()
    base = ["evaluate", "--interactions", str(data), "--seeds", "1"]
    bad = runner.invoke(main, [*base, "--grid", '[{"k": 0}]'])
    assert bad.exit_code == 2 and "k must be at least 1" in bad.output
    unknown = runner.invoke(main, [*base, "--grid", '[{"no_such_field": 1}]'])
    assert unknown.exit_code == 2 and "no_such_field" in unknown.output
    both = runner.invoke(main, [*base, "--quick", "--grid", '[{"k": 5}]'])
    assert both.exit_code == 2
    two_sources = runner.invoke(main, [*base, "--dataset", "ml-100k"])  # fails before fetching
    assert two_sources.exit_code == 2 and "not both" in two_sources.output
    good = runner.invoke(main, [*base, "--grid", '[{"k": 5, "shrink": 1}]', "--k", "5"])
    assert good.exit_code == 0, good.output
    assert "| k=5 shrink=1 |" in good.stdout and "Recall@5" in good.stdout


def test_split_histories_are_oldest_first() -> None:
    # Item codes run against time, so code order and time order disagree.
    users = np.zeros(10, dtype=np.int64)
    items = np.arange(10)
    data = Interactions(
        customers=users,
        items=items,
        weights=np.ones(10),
        ts=(100.0 - items * 10.0),
        item_ids=[str(n) for n in range(10)],
        n_customers=1,
    )
    one = split(distinct_pairs("test", data), 0)
    history = one.histories()[0]
    ts_of = {str(i): t for i, t in zip(items.tolist(), data.ts.tolist(), strict=True)}
    assert len(history) == one.seen.nnz
    assert [ts_of[i] for i in history] == sorted(ts_of[i] for i in history)


def test_tuning_on_validation_chooses_on_validation_and_never_sees_the_test(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from nudge.recommender import temporal, tuning

    data = split(distinct_pairs("test", synthetic.interactions(SPEC)), 0)
    holdouts: list[tuning.Holdout] = []
    real_score = tuning.score

    def spying_score(given: tuning.Holdout, params: Any) -> tuning.Trial:
        holdouts.append(given)
        return real_score(given, params)

    monkeypatch.setattr(tuning, "score", spying_score)
    rank, _ = temporal.fit_tuned_on_validation(data, 10, budget_s=5.0)
    assert holdouts, "the search ran"
    test_pairs = {(u, int(i)) for u, items in enumerate(data.test) for i in items}
    for given in holdouts:
        assert given.train is data.train
        trained = set(zip(given.train.customers.tolist(), given.train.items.tolist(), strict=True))
        assert not trained & test_pairs
        truth = {int(i) for t in given.truth for i in t}
        assert truth <= {int(i) for v in data.valid for i in v}
    assert len(rank([np.zeros(0, dtype=np.int64)] * data.n_users)) == data.n_users

"""The item-item maths: shrunk cosine, BM25, time decay, top-k pruning, chunking, the
target-side serving rows, popularity."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from nudge.recommender import synthetic
from nudge.recommender.errors import DataError
from nudge.recommender.model import ItemKNN
from nudge.recommender.popularity import top_items, window_totals
from nudge.recommender.similarity import Neighbours, bm25_weight, keep_top_k, serving_rows
from nudge.recommender.training import (
    TrainParams,
    cosine_top_k,
    interaction_matrix,
    interactions_from_records,
    top_k_rows,
    train,
)

# 3 customers x 3 items, weights given directly:
#        i0  i1  i2
#   u0    1   1   0
#   u1    1   0   2
#   u2    0   3   1
TINY = [
    ("u0", "i0", 1.0, 0.0),
    ("u0", "i1", 1.0, 0.0),
    ("u1", "i0", 1.0, 0.0),
    ("u1", "i2", 2.0, 0.0),
    ("u2", "i1", 3.0, 0.0),
    ("u2", "i2", 1.0, 0.0),
]


def neighbours_of(model: ItemKNN, item: str) -> dict[str, float]:
    n = model.item_ids.index(item)
    lo, hi = model.indptr[n], model.indptr[n + 1]
    return {
        model.item_ids[j]: float(s)
        for j, s in zip(model.indices[lo:hi], model.scores[lo:hi], strict=True)
    }


def test_cosine_with_shrinkage_matches_the_formula_by_hand() -> None:
    shrink = 1.0
    # column norms: |i0| = sqrt(1+1), |i1| = sqrt(1+9), |i2| = sqrt(4+1)
    n0, n1, n2 = math.sqrt(2), math.sqrt(10), math.sqrt(5)
    # dot products: i0·i1 = 1*1, i0·i2 = 1*2, i1·i2 = 3*1
    s01 = 1 / (n0 * n1 + shrink)
    s02 = 2 / (n0 * n2 + shrink)
    s12 = 3 / (n1 * n2 + shrink)
    params = TrainParams(
        half_life_s=None, k=5, shrink=shrink, weighting="none", neighbourhood="source"
    )
    model = ItemKNN.fit(interactions_from_records(TINY), params)
    assert neighbours_of(model, "i0") == pytest.approx({"i2": s02, "i1": s01}, rel=1e-6)
    assert neighbours_of(model, "i1") == pytest.approx({"i2": s12, "i0": s01}, rel=1e-6)
    assert neighbours_of(model, "i2") == pytest.approx({"i1": s12, "i0": s02}, rel=1e-6)
    # k=1 keeps the best only: s02 ≈ 0.4084 > s01 ≈ 0.1827
    best_only = ItemKNN.fit(interactions_from_records(TINY), replace(params, k=1))
    assert neighbours_of(best_only, "i0") == pytest.approx({"i2": s02}, rel=1e-6)


def test_zero_shrink_is_plain_cosine_and_self_similarity_is_dropped() -> None:
    params = TrainParams(
        half_life_s=None, k=5, shrink=0.0, weighting="none", neighbourhood="source"
    )
    model = ItemKNN.fit(interactions_from_records(TINY), params)
    assert neighbours_of(model, "i1")["i2"] == pytest.approx(3 / math.sqrt(50), rel=1e-6)
    for item in ("i0", "i1", "i2"):
        assert item not in neighbours_of(model, item)


def test_time_decay_halves_a_weight_per_half_life() -> None:
    half_life = 1000.0
    data = interactions_from_records(
        [
            ("u0", "a", 4.0, 0.0),  # one half-life before the newest event
            ("u0", "a", 4.0, 0.0),  # duplicates are summed
            ("u1", "a", 4.0, 1000.0),  # the newest event: no decay
            ("u2", "a", 4.0, -1000.0),  # two half-lives old
        ]
    )
    matrix = interaction_matrix(data, half_life).toarray()
    assert matrix[:, 0] == pytest.approx([2.0 + 2.0, 4.0, 1.0])
    assert interaction_matrix(data, None).toarray()[:, 0] == pytest.approx([8.0, 4.0, 4.0])


def test_top_k_rows_keeps_the_best_per_row_and_breaks_ties_by_column() -> None:
    rows = np.array([0, 0, 0, 0, 2, 2])
    cols = np.array([1, 3, 5, 7, 0, 4])
    vals = np.array([0.5, 0.9, 0.5, 0.1, 0.2, 0.3])
    counts, kept_cols, kept_vals = top_k_rows(rows, cols, vals, 3, 2)
    assert counts.tolist() == [2, 0, 2]
    assert kept_cols.tolist() == [3, 1, 4, 0]
    assert kept_vals.tolist() == pytest.approx([0.9, 0.5, 0.3, 0.2])


def test_top_k_rows_gives_the_same_lists_on_both_paths() -> None:
    # rows in order take the packed-key sort; the same entries shuffled take lexsort
    rng = np.random.default_rng(7)
    n = 20_000
    rows = np.sort(rng.integers(0, 300, n))
    cols = rng.integers(0, 5_000, n)
    vals = rng.integers(1, 50, n) / 64.0  # many exact ties
    fast = top_k_rows(rows, cols, vals, 300, 7)
    shuffled = rng.permutation(n)
    slow = top_k_rows(rows[shuffled], cols[shuffled], vals[shuffled], 300, 7)
    for a, b in zip(fast, slow, strict=True):
        assert a.tolist() == b.tolist()
    counts, kept_cols, _ = fast
    start = 0
    for row, count in enumerate(counts.tolist()):
        mine = sorted(zip(-vals[rows == row], cols[rows == row], strict=True))[:7]
        assert [c for _, c in mine] == kept_cols[start : start + count].tolist()
        start += count


def test_top_k_pruning_and_chunking_do_not_change_the_neighbours() -> None:
    data = synthetic.interactions(synthetic.SyntheticSpec(n_customers=300, n_groups=10, seed=3))
    matrix = interaction_matrix(data, None)
    full = cosine_top_k(matrix, k=1000, shrink=5.0, chunk_budget=10**9)
    chunked = cosine_top_k(matrix, k=1000, shrink=5.0, chunk_budget=50)
    assert np.array_equal(full.indptr, chunked.indptr)
    assert np.array_equal(full.indices, chunked.indices)
    assert np.allclose(full.scores, chunked.scores)
    pruned = cosine_top_k(matrix, k=3, shrink=5.0, chunk_budget=200)
    assert np.diff(pruned.indptr).max() == 3
    dense = matrix.T @ matrix
    norms = np.sqrt(dense.diagonal())
    for item in range(0, matrix.shape[1], 7):
        lo, hi = full.indptr[item], full.indptr[item + 1]
        row = dense[item].toarray().ravel() / (norms[item] * norms + 5.0)
        row[item] = 0
        best = np.sort(row[row > 0])[::-1][:3]
        plo, phi = pruned.indptr[item], pruned.indptr[item + 1]
        assert np.sort(pruned.scores[plo:phi])[::-1] == pytest.approx(best, rel=1e-5)
        assert np.sort(full.scores[lo:hi])[::-1] == pytest.approx(
            np.sort(row[row > 0])[::-1], rel=1e-5
        )


def test_popularity_counts_only_the_recent_window() -> None:
    data = interactions_from_records(
        [
            ("u0", "old", 5.0, 0.0),
            ("u1", "old", 5.0, 0.0),
            ("u0", "new", 1.0, 900.0),
            ("u1", "newer", 3.0, 1000.0),
        ]
    )
    totals = window_totals(data.items, data.weights, data.ts, len(data.item_ids), 500.0)
    items, scores = top_items(totals, count=10)
    assert [data.item_ids[n] for n in items] == ["newer", "new"]
    assert scores.tolist() == [3.0, 1.0]


def test_training_refuses_empty_or_non_positive_data() -> None:
    with pytest.raises(DataError):
        train(interactions_from_records([]), TrainParams())
    with pytest.raises(DataError):
        train(interactions_from_records([("u", "p", -1.0, 0.0)]), TrainParams())


def test_train_params_validate() -> None:
    with pytest.raises(ValueError):
        TrainParams(k=0)
    with pytest.raises(ValueError):
        TrainParams(shrink=-1)
    with pytest.raises(ValueError):
        TrainParams(half_life_s=0)


def test_bm25_weights_match_the_formula_by_hand() -> None:
    k1, b = 1.2, 0.75
    matrix = interaction_matrix(interactions_from_records(TINY), None)
    weighted = bm25_weight(matrix, k1, b).toarray()
    # every item is used by 2 of the 3 customers: idf = ln 3 - ln(1 + 2)= 0 -> floored
    floor = 1e-6
    row_sums = [2.0, 3.0, 4.0]
    mean = 3.0
    raw = matrix.toarray()
    for u in range(3):
        norm = (1 - b) + b * row_sums[u] / mean
        for i in range(3):
            x = raw[u, i]
            expected = x * (k1 + 1) / (k1 * norm + x) * floor if x else 0.0
            assert weighted[u, i] == pytest.approx(expected, rel=1e-9)


def test_bm25_idf_favours_rare_items() -> None:
    data = interactions_from_records(
        [("u0", "rare", 1.0, 0.0)] + [(f"u{n}", "common", 1.0, 0.0) for n in range(5)]
    )
    weighted = bm25_weight(interaction_matrix(data, None), 100.0, 0.0).toarray()
    rare, common = data.item_ids.index("rare"), data.item_ids.index("common")
    # 5 customers: idf(rare) = ln 5 - ln 2, idf(common) = ln 5 - ln 6 < 0 -> floored
    assert weighted[0, rare] == pytest.approx(math.log(5) - math.log(2))
    assert weighted[0, common] == pytest.approx(1e-6)


def test_target_neighbourhood_serves_each_item_from_the_lists_it_is_in() -> None:
    shrink = 1.0
    s01 = 1 / (math.sqrt(2) * math.sqrt(10) + shrink)
    s02 = 2 / (math.sqrt(2) * math.sqrt(5) + shrink)
    s12 = 3 / (math.sqrt(10) * math.sqrt(5) + shrink)
    assert s02 > s12 > s01  # so with k=1: i0 -> i2, i1 -> i2, i2 -> i0
    data = interactions_from_records(TINY)
    source = ItemKNN.fit(
        data,
        TrainParams(half_life_s=None, k=1, shrink=shrink, weighting="none", neighbourhood="source"),
    )
    assert neighbours_of(source, "i0") == pytest.approx({"i2": s02})
    assert neighbours_of(source, "i1") == pytest.approx({"i2": s12})
    assert neighbours_of(source, "i2") == pytest.approx({"i0": s02})
    target = ItemKNN.fit(data, TrainParams(half_life_s=None, k=1, shrink=shrink, weighting="none"))
    # i2 is the neighbour of i0 and i1: a history holding i2 makes both likely
    assert neighbours_of(target, "i2") == pytest.approx({"i0": s02, "i1": s12})
    assert neighbours_of(target, "i0") == pytest.approx({"i2": s02})
    assert neighbours_of(target, "i1") == {}


def test_serving_rows_cap_the_fan_out_of_hub_items() -> None:
    # items 1..4 each have item 0 as their only neighbour, with rising similarity
    lists = Neighbours(
        indptr=np.array([0, 0, 1, 2, 3, 4]),
        indices=np.array([0, 0, 0, 0], dtype=np.int32),
        scores=np.array([0.1, 0.4, 0.3, 0.2], dtype=np.float32),
    )
    rows = serving_rows(lists, 5, max_fan_out=2)
    assert rows.indptr.tolist() == [0, 2, 2, 2, 2, 2]
    assert rows.indices.tolist() == [2, 3]
    assert rows.scores.tolist() == pytest.approx([0.4, 0.3])
    uncapped = serving_rows(lists, 5, max_fan_out=None)
    assert uncapped.indices.tolist() == [1, 2, 3, 4]  # in item order when not capped
    assert uncapped.scores.tolist() == pytest.approx([0.1, 0.4, 0.3, 0.2])


def test_keep_top_k_cuts_long_rows_and_keeps_short_ones_as_they_are() -> None:
    indptr = np.array([0, 2, 6, 6, 7])
    cols = np.array([9, 3, 1, 2, 3, 4, 5], dtype=np.int32)
    vals = np.array([0.1, 0.2, 0.5, 0.7, 0.6, 0.5, 0.3], dtype=np.float32)
    kept = keep_top_k(indptr, cols, vals, 2)
    assert kept.indptr.tolist() == [0, 2, 4, 4, 5]
    assert kept.indices.tolist() == [9, 3, 2, 3, 5]  # row 1: 0.7, 0.6 (best first)
    assert kept.scores.tolist() == pytest.approx([0.1, 0.2, 0.7, 0.6, 0.3])
    same = keep_top_k(indptr, cols, vals, 4)
    assert same.indptr.tolist() == indptr.tolist() and same.indices.tolist() == cols.tolist()

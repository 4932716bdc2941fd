"""Serving: exclusions, no duplicates, popularity fallback, batch = single, the adapter."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pytest

from nudge.recommender import synthetic
from nudge.recommender.errors import ModelError
from nudge.recommender.model import ItemKNN
from nudge.recommender.service import ModelRecommender
from nudge.recommender.training import TrainParams, interactions_from_records

SPEC = synthetic.SyntheticSpec(n_customers=1500, n_groups=30, group_size=6, seed=11)


@pytest.fixture(scope="module")
def model() -> ItemKNN:
    return ItemKNN.fit(synthetic.interactions(SPEC), TrainParams(k=20, shrink=5.0))


def check_list(items: list[str], k: int, banned: Iterable[str]) -> None:
    assert len(items) == k
    assert len(set(items)) == len(items)
    assert not set(items) & set(banned)


def test_recommend_leaves_out_history_and_exclude(model: ItemKNN) -> None:
    history = ["p0", "p1", "p2", "p0"]
    exclude = ["p3", "p4"]
    items = model.recommend(history, 10, exclude=exclude)
    check_list(items, 10, [*history, *exclude])
    # group 0 is p0..p5: the remaining group mate leads the list
    assert items[0] == "p5"


def test_recent_history_weighs_more() -> None:
    # a half-life of half a position: the newest item weighs 4x the one before it
    params = TrainParams(k=20, shrink=5.0, history_half_life=0.5)
    model = ItemKNN.fit(synthetic.interactions(SPEC), params)
    group_1, group_2 = {f"p{n}" for n in range(6, 12)}, {f"p{n}" for n in range(12, 18)}
    assert model.recommend(["p6", "p12"], 4)[0] in group_2
    assert model.recommend(["p12", "p6"], 4)[0] in group_1


def test_cold_customer_gets_popular_items(model: ItemKNN) -> None:
    popular = model.popular(5)
    check_list(popular, 5, [])
    assert model.recommend([], 5) == popular
    assert model.recommend(["unknown-product"], 5) == popular
    assert model.recommend([], 4, exclude=[popular[0]]) == popular[1:5]
    assert (
        model.recommend(["p0"], 5, algorithm="popular")
        == [p for p in model.popular(6) if p != "p0"][:5]
    )


def test_few_neighbours_are_topped_up_with_popular_items() -> None:
    data = interactions_from_records(
        [("u0", "a", 1.0, 0.0), ("u0", "b", 1.0, 0.0)]
        + [(f"v{n}", "hit", 1.0, 10.0) for n in range(5)]
        + [("w", "c", 1.0, 5.0)]
    )
    model = ItemKNN.fit(data, TrainParams(half_life_s=None, shrink=0.0))
    assert model.recommend(["a"], 3) == ["b", "hit", "c"]
    assert model.similar(["a"], 3, exclude=["hit"]) == ["b", "c"]  # all there is
    assert model.recommend(["a"], 0) == []


def test_similar_leaves_out_its_inputs(model: ItemKNN) -> None:
    items = model.similar(["p6", "p7"], 6)
    check_list(items, 6, ["p6", "p7"])
    assert set(items[:4]) == {"p8", "p9", "p10", "p11"}
    assert model.recommend(["p0", "p6"], 4, algorithm="similar")[0] in {
        f"p{n}" for n in range(7, 12)
    } | {f"p{n}" for n in range(1, 6)}


def test_unknown_algorithm_is_refused(model: ItemKNN) -> None:
    with pytest.raises(ModelError, match="unknown algorithm"):
        model.recommend(["p0"], 3, algorithm="bestsellers")


def test_batch_matches_single_calls(model: ItemKNN) -> None:
    histories: list[list[str]] = [
        ["p0"],
        [],
        ["p6", "p12", "p6"],
        ["nope"],
        [f"p{n}" for n in range(0, 170, 7)],
    ]
    excludes = [["p1"], ["p2"], [], [], ["p3"]]
    batch = model.recommend_batch(histories, 8, excludes=excludes)
    for history, exclude, items in zip(histories, excludes, batch, strict=True):
        assert items == model.recommend(history, 8, exclude=exclude)
        check_list(items, 8, [*history, *exclude])
    assert model.recommend_batch([], 5) == []
    with pytest.raises(ModelError):
        model.recommend_batch([["p0"]], 5, excludes=[])


class Catalogue:
    def __init__(self, unavailable: set[str]) -> None:
        self.unavailable = unavailable

    async def get_products(self, ids: Iterable[str]) -> Mapping[str, Mapping[str, Any]]:
        return {
            i: {"product_id": i, "title": i.upper(), "available": i not in self.unavailable}
            for i in ids
        }


async def test_adapter_implements_the_recommender_seam(model: ItemKNN) -> None:
    histories = {"c1": ["p0", "p1"]}

    async def history_of(customer_id: str) -> Sequence[str]:
        return histories.get(customer_id, [])

    plain = ModelRecommender(model, history_of)
    recs = await plain.recommend("c1", "personal", 3, ["p2"])
    assert recs == [{"product_id": p} for p in model.recommend(["p0", "p1"], 3, exclude=["p2"])]
    cold = await plain.recommend("stranger", "personal", 3, [])
    assert [r["product_id"] for r in cold] == model.popular(3)

    expected = model.recommend(["p0", "p1"], 6)
    catalogue = ModelRecommender(
        model, history_of, products_of=Catalogue({expected[0]}).get_products
    )
    recs = await catalogue.recommend("c1", "personal", 3, [])
    assert [r["product_id"] for r in recs] == expected[1:4]
    assert recs[0]["title"] == expected[1].upper()
    assert await catalogue.recommend("c1", "personal", 0, []) == []


async def test_adapter_hands_unserved_algorithms_to_the_fallback(model: ItemKNN) -> None:
    calls: list[tuple[str, str, int]] = []

    class Fallback:
        async def recommend(
            self,
            customer_id: str,
            algorithm: str,
            count: int,
            exclude: Sequence[str],
            history: Sequence[str] = (),
            category: str | None = None,
            query: str | None = None,
        ) -> list[dict[str, Any]]:
            calls.append((customer_id, algorithm, count))
            return [{"product_id": "fallback"}]

    async def history_of(customer_id: str) -> Sequence[str]:
        return ["p0"]

    recommender = ModelRecommender(model, history_of, fallback=Fallback())
    assert await recommender.recommend("c", "recently_viewed", 2, []) == [
        {"product_id": "fallback"}
    ]
    assert calls == [("c", "recently_viewed", 2)]
    # without a fallback an unserved algorithm is answered as "personal"
    alone = ModelRecommender(model, history_of)
    recs = await alone.recommend("c", "also_bought", 2, [])
    assert [r["product_id"] for r in recs] == model.recommend(["p0"], 2)

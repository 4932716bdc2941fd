"""``also_bought`` (co-purchase) and ``popular`` per category, and reading older models."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from nudge.recommender import ItemKNN, TrainParams  # the public surface
from nudge.recommender.artifact import METADATA, V1_ARRAY_SPECS
from nudge.recommender.training import InteractionsBuilder

DAY = 86_400.0
CATEGORIES = {
    "tent": ["outdoor", "camping"],
    "stove": ["outdoor", "camping"],
    "boots": ["outdoor", "hiking"],
    "lamp": ["home"],
    "mug": ["home"],
}


@pytest.fixture(scope="module")
def model() -> ItemKNN:
    """Tents are browsed with lamps by many, but bought with stoves by a few; boots sell
    well; mugs sell best but only long ago."""
    builder = InteractionsBuilder()
    now = 1_700_000_000.0
    for n in range(40):
        builder.add(f"browser{n}", "tent", 1.0, now)
        builder.add(f"browser{n}", "lamp", 1.0, now)
    for n in range(10):
        builder.add(f"camper{n}", "tent", 5.0, now, purchase=True)
        builder.add(f"camper{n}", "stove", 5.0, now, purchase=True)
    for n in range(30):
        builder.add(f"hiker{n}", "boots", 5.0, now - DAY, purchase=True)
    for n in range(100):
        builder.add(f"old{n}", "mug", 5.0, now - 90 * DAY, purchase=True)
    params = TrainParams(k=10, shrink=0.0, popular_window_s=30 * DAY)
    return ItemKNN.fit(builder.build(), params, categories=CATEGORIES)


def test_also_bought_ranks_co_purchases_where_personal_ranks_co_views(model: ItemKNN) -> None:
    assert model.recommend(["tent"], 1, "personal") == ["lamp"]
    assert model.recommend(["tent"], 1, "also_bought") == ["stove"]
    assert model.recommend(["stove"], 1, "also_bought") == ["tent"]


def test_also_bought_tops_up_with_personal_then_popular(model: ItemKNN) -> None:
    # lamps were never bought: nothing co-purchased, so the personal list answers
    assert model.recommend(["lamp"], 1, "also_bought") == model.recommend(["lamp"], 1)
    # co-purchase first, then personal, then the best seller of the window
    assert model.recommend(["tent"], 3, "also_bought") == ["stove", "lamp", "boots"]
    assert "stove" not in model.recommend(["tent"], 3, "also_bought", exclude=["stove"])


def test_popular_counts_only_the_recent_window(model: ItemKNN) -> None:
    # the mugs sold 90 days ago, outside the 30-day window
    assert model.popular(10) == ["boots", "tent", "stove", "lamp"]


def test_popular_in_a_category_includes_its_subcategories(model: ItemKNN) -> None:
    assert model.popular(2, category="camping") == ["tent", "stove"]
    assert model.popular(3, category="outdoor") == ["boots", "tent", "stove"]
    # a short category list is topped up with the global best sellers
    assert model.popular(3, category="home") == ["lamp", "boots", "tent"]
    assert model.popular(2, category="camping", exclude=["tent"]) == ["stove", "boots"]
    assert model.popular(2, category="no-such-category") == model.popular(2)
    assert model.recommend(["tent"], 1, "popular", category="camping") == ["stove"]


def test_batch_also_bought_matches_single_calls(model: ItemKNN) -> None:
    histories = [["tent"], ["lamp"], ["stove", "tent"], [], ["unknown"]]
    batch = model.recommend_batch(histories, 3, "also_bought")
    assert batch == [model.recommend(h, 3, "also_bought") for h in histories]


def test_a_version_1_model_still_loads_and_serves(model: ItemKNN, tmp_path: Path) -> None:
    saved = model.save(tmp_path / "model")
    metadata = json.loads((saved / METADATA).read_text())
    for name in set(metadata["arrays"]) - set(V1_ARRAY_SPECS):
        (saved / metadata["arrays"].pop(name)["file"]).unlink()
    metadata["format_version"] = 1
    (saved / METADATA).write_text(json.dumps(metadata))
    old = ItemKNN.load(saved)
    assert old.recommend(["tent"], 2) == model.recommend(["tent"], 2)
    # no co-purchases in a version 1 model: also_bought answers as personal
    assert old.recommend(["tent"], 2, "also_bought") == model.recommend(["tent"], 2)
    assert old.popular(2, category="camping") == model.popular(2)
    assert np.array_equal(old.bought_indptr, np.zeros(len(old.item_ids) + 1))

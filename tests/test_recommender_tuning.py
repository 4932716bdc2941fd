"""``nudge train`` chooses its settings on the latest interactions, within its budget."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

from nudge.cli.main import main
from nudge.recommender import synthetic, tuning
from nudge.recommender.errors import DataError
from nudge.recommender.model import ItemKNN
from nudge.recommender.training import DAY_S, Interactions, TrainParams, interactions_from_records
from nudge.recommender.tuning import holdout, tune
from nudge.recommender.tuning_cli import parse_budget

SPEC = synthetic.SyntheticSpec(n_customers=300, n_groups=10, group_size=5, seed=3)


def records(rows: list[tuple[str, str, float]]) -> Interactions:
    return interactions_from_records((c, p, 1.0, ts) for c, p, ts in rows)


def test_the_holdout_is_each_customers_last_moment_and_only_new_products_count() -> None:
    data = records([
        ("ann", "tent", 1.0), ("ann", "stove", 2.0), ("ann", "lamp", 3.0), ("ann", "mug", 3.0),
        ("bob", "tent", 1.0), ("bob", "tent", 5.0),  # came back for the same: nothing new
        ("cid", "lamp", 4.0),  # one moment only: no history to predict from
    ])  # fmt: skip
    split = holdout(data)
    assert split.histories == [["tent", "stove"]]
    assert [sorted(data.item_ids[i] for i in t) for t in split.truth] == [["lamp", "mug"]]
    assert sorted(split.train.ts.tolist()) == [1.0, 1.0, 2.0], "held-out rows are not trained on"
    with pytest.raises(DataError, match="has a history before it"):
        holdout(records([("ann", "tent", 1.0), ("bob", "lamp", 2.0)]))


def test_the_holdout_by_days_takes_everything_of_the_last_days() -> None:
    day = DAY_S
    data = records([
        ("ann", "tent", 0.0), ("ann", "stove", 9 * day), ("bob", "lamp", 1 * day),
        ("bob", "mug", 8.5 * day), ("bob", "cup", 9 * day),
    ])  # fmt: skip
    split = holdout(data, holdout_days=1)
    assert split.histories == [["tent"], ["lamp"]]
    assert [sorted(data.item_ids[i] for i in t) for t in split.truth] == [["stove"], ["cup", "mug"]]


def test_tuning_fits_only_what_came_before_the_holdout(monkeypatch: pytest.MonkeyPatch) -> None:
    data = synthetic.interactions(SPEC)
    last = np.full(data.n_customers, -np.inf)
    np.maximum.at(last, data.customers, data.ts)
    fitted: list[Interactions] = []
    real_fit = ItemKNN.fit

    def spying_fit(train: Interactions, params: Any = None, *args: Any) -> ItemKNN:
        fitted.append(train)
        return real_fit(train, params, *args)

    monkeypatch.setattr(ItemKNN, "fit", staticmethod(spying_fit))
    fixed = {"k": 20, "shrink": 10.0, "half_life_s": None, "popularity_blend": 0.0}
    tune(data, TrainParams(), budget_s=60, fixed=fixed)
    assert len(fitted) >= 4, "each weighting, binary weights and history decay at least"
    for train in fitted:
        assert np.all(train.ts < last[train.customers]), "a customer's last moment leaked"


def test_the_budget_bounds_the_search_and_the_defaults_come_first() -> None:
    data = synthetic.interactions(SPEC)
    ticks = iter(range(1000))
    result = tune(data, TrainParams(), budget_s=3, clock=lambda: float(next(ticks)))
    assert len(result.trials) == 3, "a trial is started only while budget remains"
    assert result.trials[0].settings == tuning._settings(TrainParams())
    assert result.best.ndcg == max(t.ndcg for t in result.trials)
    assert result.best.ndcg > 0.2, "the planted groups are found"
    kept = tune(data, TrainParams(), 60, fixed={"k": 30, "shrink": 0.0, "weighting": "none"})
    assert {t.settings["k"] for t in kept.trials} == {30}
    assert {t.settings["weighting"] for t in kept.trials} == {"none"}
    assert len(kept.trials) >= 1 + 3 + 1 + 2 + 3, "every other setting's values, once each"


@pytest.mark.parametrize(("text", "seconds"), [("60s", 60), ("2m", 120), ("90", 90), ("1h", 3600)])
def test_budgets(text: str, seconds: float) -> None:
    assert parse_budget(text) == seconds


def test_train_tunes_reports_and_keeps_what_it_chose(tmp_path: Path) -> None:
    data = synthetic.write(SPEC, tmp_path / "events.csv")
    out = tmp_path / "model"
    result = CliRunner().invoke(
        main, ["train", "--interactions", str(data), "--out", str(out), "--k", "20",
               "--popularity-blend", "0", "--tune-budget", "30s"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "validation: each customer's last moment" in result.stderr
    assert "chosen" in result.stderr and "defaults" in result.stderr
    model = ItemKNN.load(out)
    found = model.metadata["tuning"]
    assert found["chosen"]["k"] == 20, "an explicit setting is kept"
    for name, value in found["chosen"].items():
        assert model.metadata["params"][name] == value, "the chosen settings are trained"
    assert found["validation_ndcg@10"] >= found["default_ndcg@10"]
    assert {t["popularity_blend"] for t in found["trials"]} == {0.0}, "given: kept"
    assert len(found["trials"]) >= 4 + 3 + 3 + 1 + 2, "each free setting's values"
    json.dumps(found)  # plain JSON in the model's metadata

    plain = tmp_path / "plain"
    result = CliRunner().invoke(
        main, ["train", "--interactions", str(data), "--out", str(plain), "--no-tune"]
    )
    assert result.exit_code == 0, result.output
    assert "tuning" not in ItemKNN.load(plain).metadata
    assert "tuning for" not in result.stderr


def test_a_bad_budget_is_named(tmp_path: Path) -> None:
    data = synthetic.write(SPEC, tmp_path / "events.csv")
    result = CliRunner().invoke(
        main, ["train", "--interactions", str(data), "--tune-budget", "soon"]
    )
    assert result.exit_code == 2
    assert "--tune-budget" in result.output and "'soon'" in result.output


def test_a_popularity_blend_lifts_best_sellers_the_same_in_batch_and_alone() -> None:
    data = synthetic.interactions(SPEC)
    plain = ItemKNN.fit(data, TrainParams(k=20))
    blended = ItemKNN.fit(data, TrainParams(k=20, popularity_blend=5.0))
    history = ["p0", "p1"]
    best = set(plain.popular(5, exclude=history))

    def sellers(model: ItemKNN) -> int:
        return len(best.intersection(model.recommend(history, 5)))

    assert sellers(blended) > sellers(plain), "a strong blend brings in best sellers"
    histories = [["p0"], ["p7", "p8"], [], ["p12"]]
    for model in (plain, blended, ItemKNN.fit(data, TrainParams(k=20, popularity_blend=0.3))):
        alone = [model.recommend(h, 5) for h in histories]
        assert model.recommend_batch(histories, 5) == alone

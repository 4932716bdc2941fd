"""Evaluation by time: the last moment tests, the one before validates, methods see
only what came before, and only products new to the customer count."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from nudge.cli.main import main
from nudge.recommender import synthetic, temporal
from nudge.recommender.errors import DataError
from nudge.recommender.evaluation import popularity_method
from nudge.recommender.evaluation_data import parse_instacart
from nudge.recommender.training import Interactions, InteractionsBuilder


def build(rows: list[tuple[str, str, float, bool]]) -> Interactions:
    builder = InteractionsBuilder()
    for customer, product, ts, purchase in rows:
        builder.add(customer, product, 1.0, ts, purchase)
    return builder.build()


def names(codes: np.ndarray, ids: list[str]) -> list[str]:
    return sorted(ids[int(c)] for c in codes)


ROWS = [
    ("ann", "tent", 1.0, True), ("ann", "lamp", 2.0, False), ("ann", "stove", 3.0, True),
    ("ann", "mug", 3.0, True), ("ann", "tent", 4.0, True), ("ann", "cup", 4.0, True),
    ("bob", "tent", 1.0, True), ("bob", "lamp", 2.0, True),  # two moments: no test
]  # fmt: skip


def test_temporal_holds_out_the_last_two_moments_and_only_new_products() -> None:
    data = build(ROWS)
    split = temporal.temporal_split(data, "temporal")
    ids = data.item_ids
    ann, bob = 0, 1
    assert split.histories()[ann] == [str(ids.index("tent")), str(ids.index("lamp"))]
    assert names(split.valid[ann], ids) == ["mug", "stove"]
    assert names(split.test[ann], ids) == ["cup"], "the tent again is not new"
    assert split.valid[bob].size == 0 and split.test[bob].size == 0
    assert float(split.train.ts.max()) < 3.0, "nothing of the held-out moments is trained on"


def test_next_basket_moments_are_orders() -> None:
    data = build(ROWS)
    split = temporal.temporal_split(data, "next-basket")
    ids = data.item_ids
    # ann's orders: t1, t3, t4: the view at t2 is history, not a basket
    assert names(split.valid[0], ids) == ["mug", "stove"]
    assert names(split.test[0], ids) == ["cup"]
    views = build([("ann", "tent", 1.0, False), ("ann", "lamp", 2.0, False)])
    with pytest.raises(DataError, match="purchases"):
        temporal.temporal_split(views, "next-basket")


def test_the_tuned_method_is_given_the_training_part_only(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    data = synthetic.interactions(synthetic.SyntheticSpec(n_customers=300, n_groups=10,
                                                          group_size=5, seed=4))  # fmt: skip
    split = temporal.temporal_split(data, "temporal")
    seen: list[float] = []
    real_tune = temporal.tune

    def spying_tune(train: object, *args: object, **kwargs: object) -> object:
        seen.append(float(train.ts.max()))  # type: ignore[attr-defined]
        return real_tune(train, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(temporal, "tune", spying_tune)
    runs = temporal.evaluate_by_time(
        data, "temporal", [temporal.tuned_method(2.0), popularity_method()], 10
    )
    assert seen == [float(split.train.ts.max())], "tuning saw the training part, no more"
    tuned, popular = (run.outcomes[0].scores["ndcg"] for run in runs)
    assert tuned > popular, "the planted groups beat best sellers"


def test_instacart_orders_become_timed_purchases() -> None:
    raw = (
        b",order_id,user_id,order_number,order_dow,order_hour_of_day,days_since_prior_order,"
        b"product_id,add_to_cart_order,reordered\n"
        b"0,10,1,1,2,8,,196,1.0,0.0\n1,10,1,1,2,8,,14084,2.0,0.0\n"
        b"2,11,1,2,3,7,15.0,196,1.0,1.0\n"
    )
    data = parse_instacart(raw)
    assert data.item_ids == ["196", "14084"]
    assert data.purchases is not None and data.purchases.all()
    day = 86_400.0
    assert data.ts.tolist() == [8 / 24 * day, 8 / 24 * day, (15 + 7 / 24) * day]
    with pytest.raises(DataError, match="Instacart"):
        parse_instacart(b"a,b\n1,2\n")


def test_evaluate_by_time_on_a_file(tmp_path: Path) -> None:
    spec = synthetic.SyntheticSpec(n_customers=300, n_groups=10, group_size=5, seed=5)
    data = synthetic.write(spec, tmp_path / "events.csv")
    result = CliRunner().invoke(
        main, ["evaluate", "--interactions", str(data), "--protocol", "temporal",
               "--tune-budget", "3s"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    for name in ("nudge, tuned (default)", "nudge, default settings", "popularity"):
        assert name in result.stdout

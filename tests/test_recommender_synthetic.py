"""The model recovers the co-purchase groups planted by the synthetic generator."""

from __future__ import annotations

import numpy as np
import pytest

from nudge.recommender import synthetic
from nudge.recommender.model import ItemKNN
from nudge.recommender.training import TrainParams


def neighbour_precision(model: ItemKNN, spec: synthetic.SyntheticSpec) -> float:
    """Mean share of each product's top (group_size - 1) neighbours that are group mates."""
    top = spec.group_size - 1
    hits = []
    for n, product in enumerate(model.item_ids):
        lo = model.indptr[n]
        neighbours = model.indices[lo : min(lo + top, model.indptr[n + 1])]
        group = synthetic.group_of(product, spec.group_size)
        same = sum(
            synthetic.group_of(model.item_ids[j], spec.group_size) == group for j in neighbours
        )
        hits.append(same / top)
    return float(np.mean(hits))


@pytest.mark.parametrize("noise", [0.2, 0.4])
def test_top_neighbours_are_mostly_group_mates(noise: float) -> None:
    # Each interaction lands in the customer's group with probability >= 1 - noise, so
    # at least (1 - noise)^2 of the co-occurring pairs are within a group by construction,
    # while the noisy pairs spread over the whole catalogue. (1 - noise)^2 is therefore a
    # conservative floor for precision; chance is (group_size - 1) / (n_items - 1) ≈ 0.018.
    spec = synthetic.SyntheticSpec(noise=noise, seed=7)
    model = ItemKNN.fit(synthetic.interactions(spec), TrainParams(k=spec.group_size - 1))
    precision = neighbour_precision(model, spec)
    assert precision >= (1 - noise) ** 2
    assert precision > 10 * (spec.group_size - 1) / (spec.n_items - 1)


def test_personal_recommendations_follow_the_customers_group() -> None:
    spec = synthetic.SyntheticSpec(noise=0.2, seed=8)
    model = ItemKNN.fit(synthetic.interactions(spec), TrainParams(k=20))
    rng = np.random.default_rng(1)
    shares = []
    for group in rng.choice(spec.n_groups, size=20, replace=False).tolist():
        members = [f"p{group * spec.group_size + n}" for n in range(spec.group_size)]
        history = list(rng.choice(members, size=3, replace=False))
        items = model.recommend(history, spec.group_size - 3)
        shares.append(np.mean([synthetic.group_of(p, spec.group_size) == group for p in items]))
    # the 5 unseen group mates are the only strongly connected candidates
    assert float(np.mean(shares)) >= (1 - spec.noise) ** 2

"""Recommending for many customers at once: one sparse product instead of a loop."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp

from nudge.recommender.errors import ModelError
from nudge.recommender.similarity import top_k_rows

if TYPE_CHECKING:
    from nudge.recommender.model import ItemKNN


def recommend_batch(
    model: ItemKNN,
    histories: Sequence[Sequence[str]],
    k: int,
    algorithm: str = "personal",
    excludes: Sequence[Iterable[str]] | None = None,
) -> list[list[str]]:
    """:meth:`ItemKNN.recommend` for each history; the same lists, much faster.

    A customer whose scored candidates fall short of ``k`` is topped up exactly as a
    single call would be (for ``also_bought``, by a single call).
    """
    if excludes is not None and len(excludes) != len(histories):
        raise ModelError("excludes must have one entry per history")
    if k <= 0 or not histories:
        return [[] for _ in histories]
    n_items = len(model.item_ids)
    n = len(histories)
    rows: list[np.ndarray] = []
    cols: list[np.ndarray] = []
    vals: list[np.ndarray] = []
    banned_sets: list[set[int]] = []
    for r, history in enumerate(histories):
        seeds, weights = model.seeds(history, algorithm)
        rows.append(np.full(seeds.size, r, dtype=np.int64))
        cols.append(seeds)
        vals.append(weights)
        banned = set(model.known(history))
        if excludes is not None:
            banned.update(model.known(excludes[r]))
        banned_sets.append(banned)
    seed_matrix = sp.csr_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
        shape=(n, n_items),
    )
    scores = (seed_matrix @ model.neighbour_matrix(algorithm)).tocsr()
    if algorithm == "personal" and model.popularity_blend > 0:
        scores = _blended(model, scores)
    score_rows = np.repeat(np.arange(n, dtype=np.int64), np.diff(scores.indptr))
    keep = scores.data > 0
    # Take enough candidates that the banned ones can be dropped afterwards, per row:
    # cheaper than subtracting a sparse mask of them from every score.
    widest_ban = max((len(banned) for banned in banned_sets), default=0)
    counts, top_cols, _ = top_k_rows(
        score_rows[keep], scores.indices[keep], scores.data[keep], n, k + widest_ban
    )
    ends = np.cumsum(counts)
    ids = model.item_ids
    result: list[list[str]] = []
    flat = top_cols.tolist()
    start = 0
    for r in range(n):
        banned = banned_sets[r]
        chosen = [c for c in flat[start : int(ends[r])] if c not in banned][:k]
        start = int(ends[r])
        if len(chosen) < k and algorithm == "also_bought":
            exclude = list(excludes[r]) if excludes is not None else ()
            result.append(model.recommend(histories[r], k, algorithm, exclude))
            continue
        if len(chosen) < k:
            chosen = model.fill(chosen, k, banned_sets[r])
        result.append([ids[c] for c in chosen])
    return result


def _blended(model: ItemKNN, scores: sp.csr_matrix) -> sp.csr_matrix:
    """``ItemKNN._blended`` for every row at once."""
    best = np.asarray(scores.max(axis=1).todense()).ravel()
    warm = np.flatnonzero(best > 0)  # cold rows keep the best sellers' fill, as alone
    scale = np.ones_like(best)
    scale[warm] = 1.0 / best[warm]
    normalised = sp.diags(scale) @ scores
    pool = model.blend_items
    popular = sp.csr_matrix(
        (
            np.tile(model.blend_scores, warm.size),
            (np.repeat(warm, pool.size), np.tile(pool, warm.size)),
        ),
        shape=scores.shape,
    )
    return (normalised + popular).tocsr()

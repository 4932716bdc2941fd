"""What sells: items ranked by their summed weight over a recent window, globally and
per category (a product counts in every category of its path, so a parent category's
list includes its subcategories' best sellers)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from nudge.recommender.similarity import top_k_rows


def window_totals(
    items: np.ndarray, weights: np.ndarray, ts: np.ndarray, n_items: int, window_s: float
) -> np.ndarray:
    """Per item, the summed weight of interactions in the last ``window_s`` of the data."""
    if not items.size:
        return np.zeros(n_items)
    recent = ts >= ts.max() - window_s
    return np.bincount(items[recent], weights=weights[recent], minlength=n_items)


def top_items(totals: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray]:
    """Items with a positive total, best first (ties: lower item code), at most ``count``."""
    order = np.lexsort((np.arange(totals.size), -totals))
    order = order[totals[order] > 0][:count]
    return order.astype(np.int32), totals[order].astype(np.float32)


def per_category(
    totals: np.ndarray,
    item_ids: Sequence[str],
    categories: Mapping[str, Sequence[str]],
    count: int,
) -> tuple[list[str], np.ndarray, np.ndarray]:
    """``(category ids, indptr, items)``: each category's top ``count`` items, best first.

    ``categories`` maps a product id to its category ids (the whole path). Products
    without a category, or without sales in the window, are in no list.
    """
    codes: dict[str, int] = {}
    pair_categories: list[int] = []
    pair_items: list[int] = []
    selling = np.flatnonzero(totals > 0).tolist() if categories else []
    for item in selling:
        for category in dict.fromkeys(categories.get(item_ids[item], ())):
            pair_categories.append(codes.setdefault(str(category), len(codes)))
            pair_items.append(item)
    rows = np.asarray(pair_categories, dtype=np.int64)
    cols = np.asarray(pair_items, dtype=np.int64)
    # items ascend, so each category's entries come in column order, as top_k_rows wants
    counts, kept, _ = top_k_rows(rows, cols, totals[cols], len(codes), count)
    indptr = np.zeros(len(codes) + 1, dtype=np.int64)
    np.cumsum(counts, out=indptr[1:])
    return list(codes), indptr, kept.astype(np.int32)

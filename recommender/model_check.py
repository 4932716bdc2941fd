"""Consistency checks of a model's arrays: a model that fails them never serves."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from nudge.recommender.errors import ModelError


def _csr_problems(
    name: str, indptr: np.ndarray, indices: np.ndarray, rows: int, columns: int
) -> list[str]:
    problems = []
    nnz = indices.shape[0]
    if indptr.shape != (rows + 1,):
        problems.append(f"{name}_indptr has shape {indptr.shape}, expected ({rows + 1},)")
    elif indptr[0] != 0 or indptr[-1] != nnz or np.any(np.diff(indptr) < 0):
        problems.append(f"{name}_indptr is not a valid CSR pointer array")
    if nnz and (indices.min() < 0 or indices.max() >= columns):
        problems.append(f"{name} entries point outside the catalogue")
    return problems


def check_arrays(arrays: Mapping[str, np.ndarray], item_count: int | None) -> None:
    """Raise :class:`ModelError` listing every inconsistency between the arrays (the
    model checks that item ids are unique as it indexes them)."""
    item_ids = arrays["item_ids"]
    n = item_ids.shape[0]
    problems = []
    if item_count is not None and item_count != n:
        problems.append(f"item_count {item_count} != {n} item ids")
    for name in ("neighbour", "bought"):
        problems += _csr_problems(name, arrays[f"{name}_indptr"], arrays[f"{name}_indices"], n, n)
        if arrays[f"{name}_scores"].shape != arrays[f"{name}_indices"].shape:
            problems.append(f"{name}_scores and {name}_indices differ in length")
    n_categories = arrays["category_ids"].shape[0]
    problems += _csr_problems(
        "category", arrays["category_indptr"], arrays["category_items"], n_categories, n
    )
    popular = arrays["popular_items"]
    if arrays["popular_scores"].shape != popular.shape:
        problems.append("popular_scores and popular_items differ in length")
    if popular.size and (popular.min() < 0 or popular.max() >= n):
        problems.append("popular_items point outside the catalogue")
    if len(set(arrays["category_ids"].tolist())) != n_categories:
        problems.append("category_ids are not unique")
    if problems:
        raise ModelError("inconsistent model: " + "; ".join(problems))

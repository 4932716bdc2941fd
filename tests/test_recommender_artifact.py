"""Saving and loading model directories; corrupt or incompatible ones are refused."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from nudge.recommender import synthetic
from nudge.recommender.artifact import FORMAT_VERSION, METADATA
from nudge.recommender.errors import ModelError
from nudge.recommender.model import ItemKNN
from nudge.recommender.training import TrainParams

SPEC = synthetic.SyntheticSpec(n_customers=400, n_groups=12, group_size=5, seed=5)


@pytest.fixture(scope="module")
def model() -> ItemKNN:
    return ItemKNN.fit(synthetic.interactions(SPEC), TrainParams(k=10, shrink=2.0))


@pytest.fixture
def saved(model: ItemKNN, tmp_path: Path) -> Path:
    return model.save(tmp_path / "model")


def metadata_of(directory: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((directory / METADATA).read_text())
    return loaded


def test_round_trip_keeps_arrays_metadata_and_answers(model: ItemKNN, saved: Path) -> None:
    loaded = ItemKNN.load(saved)
    for name, array in model.arrays().items():
        assert np.array_equal(loaded.arrays()[name], array), name
    assert loaded.model_version == model.model_version
    assert loaded.model_version.startswith("itemknn-")
    meta = metadata_of(saved)
    assert meta["format_version"] == FORMAT_VERSION
    assert meta["item_count"] == SPEC.n_items
    assert meta["params"]["k"] == 10 and meta["params"]["shrink"] == 2.0
    assert meta["metrics"]["interactions"] == SPEC.n_customers * SPEC.per_customer
    assert meta["data_range"]["first_event"].startswith("2023-11-14")
    assert set(meta["arrays"]) == set(model.arrays())
    assert all(len(entry["sha256"]) == 64 for entry in meta["arrays"].values())
    for history in (["p0"], ["p3", "p17", "p40"], []):
        assert loaded.recommend(history, 7) == model.recommend(history, 7)
        assert loaded.similar(history, 3) == model.similar(history, 3)


def test_save_refuses_a_non_empty_directory(model: ItemKNN, saved: Path) -> None:
    with pytest.raises(ModelError, match="already exists"):
        model.save(saved)
    empty = saved.parent / "empty"
    empty.mkdir()
    assert ItemKNN.load(model.save(empty)).model_version == model.model_version


def test_flipped_byte_is_refused(saved: Path) -> None:
    path = saved / "neighbour_scores.npy"
    raw = bytearray(path.read_bytes())
    raw[-3] ^= 0x01
    path.write_bytes(bytes(raw))
    with pytest.raises(ModelError, match="checksum mismatch"):
        ItemKNN.load(saved)


def test_missing_array_file_is_refused(saved: Path) -> None:
    (saved / "neighbour_indices.npy").unlink()
    with pytest.raises(ModelError, match="missing"):
        ItemKNN.load(saved)


def test_missing_metadata_is_refused(saved: Path) -> None:
    (saved / METADATA).unlink()
    with pytest.raises(ModelError, match="not a model directory"):
        ItemKNN.load(saved)


@pytest.mark.parametrize(
    "corrupt",
    [
        lambda meta: "{not json",
        lambda meta: json.dumps({**meta, "format_version": FORMAT_VERSION + 1}),
        lambda meta: json.dumps({**meta, "format": "something-else"}),
        lambda meta: json.dumps({k: v for k, v in meta.items() if k != "arrays"}),
        lambda meta: json.dumps([meta]),
    ],
    ids=["not-json", "newer-format", "wrong-format", "no-array-listing", "not-an-object"],
)
def test_bad_metadata_is_refused(saved: Path, corrupt: Any) -> None:
    path = saved / METADATA
    path.write_text(corrupt(json.loads(path.read_text())))
    with pytest.raises(ModelError):
        ItemKNN.load(saved)


def replace_array(
    directory: Path, name: str, array: np.ndarray, allow_pickle: bool = False
) -> None:
    """Swap an array and re-sign it, so only the shape/consistency checks can catch it."""
    import hashlib

    path = directory / f"{name}.npy"
    np.save(path, array, allow_pickle=allow_pickle)
    meta = metadata_of(directory)
    meta["arrays"][name]["sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
    meta["arrays"][name]["shape"] = list(array.shape)
    (directory / METADATA).write_text(json.dumps(meta))


def test_wrong_shape_against_metadata_is_refused(saved: Path) -> None:
    meta = metadata_of(saved)
    meta["arrays"]["neighbour_scores"]["shape"] = [1]
    (saved / METADATA).write_text(json.dumps(meta))
    with pytest.raises(ModelError, match="shape"):
        ItemKNN.load(saved)


@pytest.mark.parametrize(
    ("name", "make", "message"),
    [
        ("neighbour_indptr", lambda m: m.indptr[:-1], "neighbour_indptr"),
        ("neighbour_scores", lambda m: m.scores[:-1], "differ in length"),
        ("neighbour_indices", lambda m: m.indices + 10_000, "outside the catalogue"),
        ("popular_items", lambda m: m.popular_items[:-1], "popular"),
        ("item_ids", lambda m: m.item_ids_array[:-1], "item"),
        ("neighbour_scores", lambda m: m.scores.astype(np.float64), "dtype"),
    ],
)
def test_inconsistent_arrays_are_refused(
    model: ItemKNN, saved: Path, name: str, make: Any, message: str
) -> None:
    replace_array(saved, name, make(model))
    with pytest.raises(ModelError, match=message):
        ItemKNN.load(saved)


def test_pickled_object_arrays_are_never_loaded(saved: Path) -> None:
    replace_array(saved, "item_ids", np.array(["a", 1, None], dtype=object), allow_pickle=True)
    with pytest.raises(ModelError, match="unreadable array"):
        ItemKNN.load(saved)

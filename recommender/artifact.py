"""The on-disk model directory: ``.npy`` arrays plus a checksummed ``metadata.json``.

No pickle anywhere: arrays are read with ``np.load(allow_pickle=False)``. Loading checks
the format, every file's sha256, dtype and shape against the metadata, and refuses
anything else with :class:`~recommender.errors.ModelError`.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from nudge.recommender.errors import ModelError

FORMAT = "nudge-itemknn"
FORMAT_VERSION = 2
METADATA = "metadata.json"

# name -> numpy dtype kind and dimensionality the reader accepts
V1_ARRAY_SPECS: Mapping[str, tuple[str, int]] = {
    "item_ids": ("U", 1),
    "neighbour_indptr": ("int64", 1),
    "neighbour_indices": ("int32", 1),
    "neighbour_scores": ("float32", 1),
    "popular_items": ("int32", 1),
    "popular_scores": ("float32", 1),
}
ARRAY_SPECS: Mapping[str, tuple[str, int]] = {
    **V1_ARRAY_SPECS,
    "bought_indptr": ("int64", 1),
    "bought_indices": ("int32", 1),
    "bought_scores": ("float32", 1),
    "category_ids": ("U", 1),
    "category_indptr": ("int64", 1),
    "category_items": ("int32", 1),
}
#: Format versions this nudge reads, with the arrays each must list. A version 1 model
#: (no co-purchase, no categories) still serves; the model fills those in empty.
READABLE: Mapping[int, Mapping[str, tuple[str, int]]] = {1: V1_ARRAY_SPECS, 2: ARRAY_SPECS}


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _dtype_ok(array: np.ndarray, expected: str) -> bool:
    return array.dtype.kind == "U" if expected == "U" else array.dtype == np.dtype(expected)


def write_artifact(
    directory: Path, arrays: Mapping[str, np.ndarray], metadata: Mapping[str, Any]
) -> Path:
    """Write ``arrays`` and ``metadata`` atomically into ``directory`` (new or empty)."""
    directory = Path(directory)
    if set(arrays) != set(ARRAY_SPECS):
        raise ModelError(f"model arrays must be exactly {sorted(ARRAY_SPECS)}")
    if directory.exists() and (not directory.is_dir() or any(directory.iterdir())):
        raise ModelError(f"{directory} already exists and is not an empty directory")
    directory.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
    try:
        listing: dict[str, dict[str, Any]] = {}
        for name, array in arrays.items():
            kind, ndim = ARRAY_SPECS[name]
            if not _dtype_ok(array, kind) or array.ndim != ndim:
                raise ModelError(f"array {name} has dtype {array.dtype}, ndim {array.ndim}")
            path = staging / f"{name}.npy"
            np.save(path, array, allow_pickle=False)
            listing[name] = {
                "file": path.name,
                "sha256": _sha256(path),
                "dtype": array.dtype.str,
                "shape": list(array.shape),
            }
        document = {"format": FORMAT, "format_version": FORMAT_VERSION, **metadata}
        document["arrays"] = listing
        (staging / METADATA).write_text(json.dumps(document, indent=2, sort_keys=True) + "\n")
        if directory.exists():
            directory.rmdir()
        os.replace(staging, directory)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return directory


def read_artifact(directory: Path) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Read and verify a model directory; :class:`ModelError` says what is wrong."""
    directory = Path(directory)
    meta_path = directory / METADATA
    if not meta_path.is_file():
        raise ModelError(f"{directory} is not a model directory: {METADATA} is missing")
    try:
        metadata = json.loads(meta_path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelError(f"{meta_path} is not valid JSON: {exc}") from None
    if not isinstance(metadata, dict) or metadata.get("format") != FORMAT:
        raise ModelError(f"{meta_path} does not describe a {FORMAT} model")
    version = metadata.get("format_version")
    specs = READABLE.get(version) if isinstance(version, int) else None
    if specs is None:
        raise ModelError(
            f"{directory} has format version {version!r}; this nudge reads {sorted(READABLE)}"
        )
    listing = metadata.get("arrays")
    if not isinstance(listing, dict) or set(listing) != set(specs):
        raise ModelError(f"{meta_path} must list exactly the arrays {sorted(specs)}")
    arrays: dict[str, np.ndarray] = {}
    for name, (kind, ndim) in specs.items():
        entry = listing[name]
        if not isinstance(entry, dict) or not {"file", "sha256", "shape"} <= set(entry):
            raise ModelError(f"{meta_path}: bad entry for array {name}")
        path = directory / str(entry["file"])
        if path.parent != directory or not path.is_file():
            raise ModelError(f"{directory}: array file {entry['file']!r} is missing")
        if _sha256(path) != entry["sha256"]:
            raise ModelError(f"{path}: checksum mismatch, the file is corrupt")
        try:
            array = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise ModelError(f"{path}: unreadable array: {exc}") from None
        if not _dtype_ok(array, kind) or array.ndim != ndim:
            raise ModelError(f"{path}: dtype {array.dtype} / ndim {array.ndim}, expected {kind}")
        if list(array.shape) != entry["shape"]:
            raise ModelError(f"{path}: shape {list(array.shape)}, metadata says {entry['shape']}")
        arrays[name] = array
    return arrays, metadata

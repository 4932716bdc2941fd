"""Errors raised by the item-similarity recommender."""

from __future__ import annotations

from nudge.errors import NudgeError


class ModelError(NudgeError):
    """A model artifact that is missing, corrupt or incompatible, or a bad model request."""


class DataError(NudgeError):
    """Training interactions that cannot be read: a malformed row, a missing column."""

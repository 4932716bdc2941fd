"""Named errors of the importers; every one is a NudgeError so the CLI reports it cleanly."""

from __future__ import annotations

from nudge.errors import NudgeError


class ImportFailure(NudgeError):
    """Base of import failures that stop a whole import (not a single bad row)."""


class FeedError(ImportFailure):
    """A catalogue source that is unreachable, not XML, not a product feed, or unsafe."""


class InputFileError(ImportFailure):
    """A customer or order file that cannot be read as the format it claims to be."""


class DeliveryError(ImportFailure):
    """Records the broker did not acknowledge (the count is in ``failed``)."""

    def __init__(self, failed: int, detail: str = "") -> None:
        self.failed = failed
        super().__init__(f"{failed} record(s) were not delivered{': ' + detail if detail else ''}")


class RowError(ValueError):
    """One unusable row or offer: it goes to the reject file, the import goes on."""

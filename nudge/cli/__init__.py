"""The ``nudge`` command line."""

from nudge.cli.main import main

__all__ = ["main"]

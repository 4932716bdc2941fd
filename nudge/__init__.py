"""nudge: real-time personalisation for e-commerce.

The public surface, re-exported from one place.
"""

from nudge.clock import Clock, ManualClock, SystemClock
from nudge.errors import (
    ConfigError,
    InvalidMessage,
    InvalidToken,
    NudgeError,
    PermanentError,
    TransientError,
)
from nudge.settings import Settings

__version__ = "0.1.0"

__all__ = [
    "Clock",
    "ConfigError",
    "InvalidMessage",
    "InvalidToken",
    "ManualClock",
    "NudgeError",
    "PermanentError",
    "Settings",
    "SystemClock",
    "TransientError",
    "__version__",
]

"""The shop's brand as emails show it: name, logo and colours, from ``NUDGE_BRAND_*``.

Templates read it as ``brand`` (``{{ brand.name }}``, ``{{ brand.primary_color }}``).
Colours are checked to be hex colours when the settings load, so they are safe to
write into a ``<style>`` block, where HTML escaping would not protect anything.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.utils import parseaddr
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from nudge.settings import Settings

HEX_COLOUR = re.compile(r"#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6})")
DEFAULT_PRIMARY = "#1a56db"
DEFAULT_BACKGROUND = "#f4f4f5"
#: The logo's width in the email, px; its height follows the image's proportions.
LOGO_WIDTH = 160


@dataclass(frozen=True, slots=True)
class Brand:
    name: str
    logo_url: str | None = None
    primary_color: str = DEFAULT_PRIMARY
    background_color: str = DEFAULT_BACKGROUND
    logo_width: int = LOGO_WIDTH

    @classmethod
    def from_settings(cls, settings: Settings) -> Brand:
        return cls(
            name=settings.brand_name or sender_name(settings.mail_from),
            logo_url=settings.brand_logo_url or None,
            primary_color=settings.brand_color,
            background_color=settings.brand_background,
        )


def sender_name(mail_from: str) -> str:
    """The display name of ``Shop <shop@example.com>``; the address when it has none."""
    name, address = parseaddr(mail_from)
    return name or address or mail_from


def check_colour(value: str) -> str:
    """``value`` when it is a hex colour (``#1a56db``, ``#fff``), else ``ValueError``."""
    if not HEX_COLOUR.fullmatch(value):
        raise ValueError("expected a hex colour such as #1a56db")
    return value.lower()

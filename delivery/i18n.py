"""A message's language: its locale, its translated texts, and money and dates as it writes them.

Built-in texts are English in the templates themselves (the gettext ``msgid``) and
translated by the catalogues in ``locales/<lang>/LC_MESSAGES/nudge.po``, read with
Babel once, the first time a language is asked for. A locale nobody translated still
gets its own money and date formats (Babel knows them all) and English words; a
locale Babel does not know is the default one: a send never fails for a language.
"""

from __future__ import annotations

import gettext
import io
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from pathlib import Path
from typing import Any

from babel import Locale, UnknownLocaleError
from babel.dates import format_date
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_currency, format_decimal
from babel.support import Translations

#: The language of the templates' own texts, and the last resort.
FALLBACK = "en"
DOMAIN = "nudge"
LOCALES_DIR = Path(__file__).resolve().parent / "locales"


def parse_locale(value: Any) -> Locale | None:
    """``ru``, ``pt-BR``, ``en_GB`` as a Babel ``Locale``; ``None`` when it is not one."""
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        return Locale.parse(value.strip().replace("-", "_"))
    except (ValueError, TypeError, UnknownLocaleError):
        return None


@lru_cache(maxsize=256)
def resolve_locale(value: Any, default: str = FALLBACK) -> str:
    """The locale a message is written in: ``value`` if Babel knows it, else ``default``
    (itself checked), else English. Always a Babel identifier such as ``pt_BR``."""
    for candidate in (value, default):
        locale = parse_locale(candidate)
        if locale is not None:
            return str(locale)
    return FALLBACK


def shipped_languages() -> list[str]:
    """The languages with a catalogue in the package, English (the source) first."""
    found = sorted(p.parent.parent.name for p in LOCALES_DIR.glob(f"*/LC_MESSAGES/{DOMAIN}.po"))
    return [FALLBACK, *(lang for lang in found if lang != FALLBACK)]


def _read_catalogue(path: Path, locale: str) -> Translations:
    with path.open("rb") as po:
        catalogue = read_po(po, locale=locale, domain=DOMAIN)
    compiled = io.BytesIO()
    write_mo(compiled, catalogue)  # fuzzy entries stay out, as msgfmt leaves them
    compiled.seek(0)
    return Translations(compiled, domain=DOMAIN)


@lru_cache(maxsize=64)
def translations(locale: str) -> gettext.NullTranslations:
    """The texts of ``locale`` (``pt_BR``, then ``pt``); untranslated: the English."""
    parsed = parse_locale(locale)
    if parsed is None:
        return gettext.NullTranslations()
    for name in dict.fromkeys((str(parsed), parsed.language)):
        path = LOCALES_DIR / name / "LC_MESSAGES" / f"{DOMAIN}.po"
        if path.is_file():
            return _read_catalogue(path, name)
    return gettext.NullTranslations()


def format_money(value: Any, currency: str | None, locale: str) -> str:
    """An amount in ``currency`` as ``locale`` writes it: ``€1,234.50``, ``1 234,50 ₽``.

    Without a currency it is a plain number with two decimals; a value that is no
    number is shown as it is, so a feed's oddity never fails a send.
    """
    try:
        return _cached_money(value, currency, locale)
    except TypeError:  # unhashable: a list where a price should be
        return _money(value, currency, locale)


# Babel builds each amount from the locale's pattern (~50 us); catalogue prices repeat
# from one email to the next, so most are formatted once per worker. ``typed``: True
# (no price) and 1 are different amounts.
@lru_cache(maxsize=65_536, typed=True)
def _cached_money(value: Any, currency: str | None, locale: str) -> str:
    return _money(value, currency, locale)


def _money(value: Any, currency: str | None, locale: str) -> str:
    if value is None or value == "" or isinstance(value, bool):
        return ""
    try:
        amount = Decimal(str(value))  # str(): 12.1 stays 12.1, not 12.0999...
    except (InvalidOperation, ValueError, TypeError):
        return str(value)
    if not amount.is_finite():
        return str(value)
    code = (currency or "").strip().upper()
    try:
        if not code:
            return format_decimal(amount, format="#,##0.00", locale=locale)
        return format_currency(amount, code, locale=locale)
    except ArithmeticError:  # beyond Decimal's precision: no price, but no failed send
        return f"{value} {code}".strip()


def format_day(value: Any, format: str, locale: str) -> str:
    """A day as ``locale`` writes it. ``value`` is a date, or epoch milliseconds (as
    ``promo.expires_at``) read in UTC. ``format`` is Babel's (``short``, ``medium``,
    ``long``, ``full`` or a pattern such as ``d MMMM y``); one with ``%`` is strftime's,
    as the filter took before it was localised."""
    if value is None or value == "":
        return ""
    if isinstance(value, datetime | date):
        day = value
    else:
        try:
            day = datetime.fromtimestamp(float(value) / 1000, tz=UTC)
        except (TypeError, ValueError, OverflowError, OSError):
            return str(value)
    if "%" in format:
        return day.strftime(format)
    try:
        return format_date(day, format=format, locale=locale)
    except (AttributeError, KeyError, ValueError) as exc:  # a time field, an unknown letter
        raise ValueError(
            f"date format {format!r}: use short, medium, long, full or a day pattern"
            " such as 'd MMMM y'"
        ) from exc

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from nudge.delivery.policy import (
    Decision,
    QuietHours,
    decide,
    effective_consent,
    local_day,
    parse_quiet_hours,
    quiet_until,
)
from nudge.errors import ConfigError


def ms(dt: datetime) -> int:
    return int(dt.timestamp() * 1000)


BERLIN = ZoneInfo("Europe/Berlin")
NOON = ms(datetime(2024, 6, 1, 12, 0, tzinfo=BERLIN))


def run(**overrides: Any) -> Decision:
    facts: dict[str, Any] = {
        "marketing": True,
        "consent": "subscribed",
        "hard_bounced": False,
        "sent_today": 0,
        "frequency_cap": 0,
        "quiet": None,
        "tz_name": "Europe/Berlin",
        "now_ms": NOON,
    }
    facts.update(overrides)
    return decide(**facts)


def test_subscribed_sends() -> None:
    assert run().action == "send"


@pytest.mark.parametrize(
    ("consent", "reason"),
    [
        ("unsubscribed", "consent_unsubscribed"),
        ("pending", "consent_pending"),
        (None, "no_consent"),
    ],
)
def test_marketing_needs_exactly_subscribed(consent: str | None, reason: str) -> None:
    assert run(consent=consent) == Decision("suppress", reason)


@pytest.mark.parametrize(
    ("carried", "stored", "expected"),
    [
        # Redis lags behind the stream: what the command carried counts.
        ("subscribed", None, "subscribed"),
        ("pending", None, "pending"),
        # An older command, a newer Redis (or the reverse): the stricter value wins.
        ("subscribed", "unsubscribed", "unsubscribed"),
        ("unsubscribed", "subscribed", "unsubscribed"),
        ("subscribed", "pending", "pending"),
        ("pending", "subscribed", "pending"),
        ("pending", "unsubscribed", "unsubscribed"),
        (None, "subscribed", "subscribed"),
        ("", "subscribed", "subscribed"),
        ("subscribed", "subscribed", "subscribed"),
        # A value nudge does not know is not consent, but an unsubscribe still wins.
        ("subscribed", "opted_in_maybe", "opted_in_maybe"),
        ("unsubscribed", "opted_in_maybe", "unsubscribed"),
        (None, None, None),
    ],
)
def test_effective_consent_is_the_stricter_value(
    carried: str | None, stored: str | None, expected: str | None
) -> None:
    assert effective_consent(carried, stored) == expected


def test_effective_consent_feeds_the_rules() -> None:
    assert run(consent=effective_consent("subscribed", None)).action == "send"
    decision = run(consent=effective_consent("subscribed", "unsubscribed"))
    assert decision == Decision("suppress", "consent_unsubscribed")
    assert run(consent=effective_consent(None, None)) == Decision("suppress", "no_consent")


def test_transactional_ignores_consent_cap_and_quiet_but_not_bounce() -> None:
    quiet = parse_quiet_hours("0-23")
    decision = run(marketing=False, consent=None, sent_today=9, frequency_cap=1, quiet=quiet)
    assert decision.action == "send"
    assert run(marketing=False, hard_bounced=True) == Decision("suppress", "hard_bounce")


def test_frequency_cap() -> None:
    assert run(frequency_cap=2, sent_today=1).action == "send"
    assert run(frequency_cap=2, sent_today=2) == Decision("suppress", "frequency_cap")
    assert run(frequency_cap=0, sent_today=99).action == "send"


def test_quiet_hours_defer_to_end_in_customer_timezone() -> None:
    quiet = parse_quiet_hours("22-8")
    late = ms(datetime(2024, 6, 1, 23, 30, tzinfo=BERLIN))
    decision = run(quiet=quiet, now_ms=late)
    assert decision.action == "defer" and decision.reason == "quiet_hours"
    assert decision.until_ms == ms(datetime(2024, 6, 2, 8, 0, tzinfo=BERLIN))
    early = ms(datetime(2024, 6, 2, 3, 0, tzinfo=BERLIN))
    assert run(quiet=quiet, now_ms=early).until_ms == ms(datetime(2024, 6, 2, 8, 0, tzinfo=BERLIN))
    assert run(quiet=quiet).action == "send"
    # 23:30 in Berlin is 14:30 in Los Angeles: not quiet there.
    assert run(quiet=quiet, now_ms=late, tz_name="America/Los_Angeles").action == "send"


def test_quiet_hours_do_not_count_against_the_cap() -> None:
    late = ms(datetime(2024, 6, 1, 23, 0, tzinfo=BERLIN))
    decision = run(quiet=parse_quiet_hours("22-8"), now_ms=late, frequency_cap=1, sent_today=1)
    assert decision.action == "defer"


def test_quiet_hours_not_wrapping_and_dst() -> None:
    quiet = QuietHours(1 * 60, 3 * 60)
    # 2024-03-31 Berlin: 02:00 jumps to 03:00; the window ends at 03:00 local = 01:00 UTC.
    at = ms(datetime(2024, 3, 31, 0, 30, tzinfo=UTC))  # 01:30 local
    assert quiet_until(quiet, "Europe/Berlin", at) == ms(datetime(2024, 3, 31, 1, 0, tzinfo=UTC))
    assert quiet_until(quiet, "Europe/Berlin", ms(datetime(2024, 3, 31, 5, tzinfo=UTC))) is None


def test_unknown_timezone_falls_back_to_utc() -> None:
    at = ms(datetime(2024, 6, 1, 23, 0, tzinfo=UTC))
    until = quiet_until(parse_quiet_hours("22-8"), "Mars/Olympus", at)
    assert until == ms(datetime(2024, 6, 2, 8, 0, tzinfo=UTC))
    assert local_day("Mars/Olympus", at) == "2024-06-01"
    assert local_day("Asia/Tokyo", at) == "2024-06-02"


@pytest.mark.parametrize("spec", ["22", "25-3", "a-b", "22:61-8"])
def test_bad_quiet_hours_spec(spec: str) -> None:
    with pytest.raises(ConfigError):
        parse_quiet_hours(spec)


def test_quiet_hours_parse() -> None:
    assert parse_quiet_hours("") is None
    assert parse_quiet_hours("8-8") is None
    assert parse_quiet_hours("22:30-07:15") == QuietHours(22 * 60 + 30, 7 * 60 + 15)

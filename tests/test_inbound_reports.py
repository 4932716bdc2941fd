"""Reading what comes back by email: DSNs, ARF complaints, mailto unsubscribes, junk.

The samples under tests/fixtures/inbound/ follow what Gmail and Postfix send and
RFC 5965's example; each names the message with the ref below.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from nudge.delivery.return_path import (
    bounce_domain,
    parse_verp,
    return_path,
    unsubscribe_address,
)
from nudge.errors import InvalidMessage
from nudge.inbound.reports import Bounce, Complaint, Ignored, Unsubscribe, read_report
from nudge.settings import Settings

FIXTURES = Path(__file__).parent / "fixtures" / "inbound"
REF = "k5nvq3xr7d2mhw4tj6pylc2zea"
BOUNCE_TO = return_path(REF, "shop.example.com")


def sample(name: str, **replace: str) -> bytes:
    raw = (FIXTURES / name).read_bytes()
    for old, new in replace.items():
        raw = raw.replace(old.encode(), new.encode())
    return raw


def test_verp_addresses_round_trip() -> None:
    assert parse_verp(BOUNCE_TO) == ("bounce", REF)
    assert parse_verp(unsubscribe_address(REF, "b.example")) == ("unsubscribe", REF)
    assert parse_verp(f"<BOUNCE+{REF.upper()}@Shop.Example.com>") == ("bounce", REF)
    assert parse_verp("fbl@shop.example.com") is None
    assert parse_verp("bounce+@shop.example.com") is None
    assert parse_verp("bounce+a.b@shop.example.com") is None


def test_a_gmail_dsn_is_a_hard_bounce() -> None:
    report = read_report(BOUNCE_TO, sample("gmail_dsn.eml"))
    assert isinstance(report, Bounce)
    assert (report.ref, report.hard, report.address, report.status) == (
        REF,
        True,
        "ann@example.net",
        "5.1.1",
    )
    assert "does not exist" in report.detail and "\n" not in report.detail


def test_a_postfix_dsn_is_a_hard_bounce() -> None:
    report = read_report(BOUNCE_TO, sample("postfix_dsn.eml"))
    assert isinstance(report, Bounce)
    assert (report.ref, report.hard, report.status) == (REF, True, "5.1.1")
    assert "User unknown" in report.detail


def test_a_full_mailbox_is_a_soft_bounce() -> None:
    report = read_report(BOUNCE_TO, sample("soft_mailbox_full.eml"))
    assert isinstance(report, Bounce)
    assert (report.hard, report.status) == (False, "4.2.2")
    assert "Mailbox full" in report.detail


def test_a_failure_after_a_temporary_status_is_still_soft() -> None:
    # Postfix gives up after its queue lifetime: "failed", but the mailbox was full.
    raw = sample("soft_mailbox_full.eml", **{"Action: delayed": "Action: failed"})
    report = read_report(BOUNCE_TO, raw)
    assert isinstance(report, Bounce) and not report.hard


def test_a_bounce_sent_elsewhere_is_named_by_the_returned_headers() -> None:
    report = read_report("postmaster@shop.example.com", sample("postfix_dsn.eml"))
    assert isinstance(report, Bounce) and report.ref == REF
    # Without X-Nudge-Ref, the original's Return-Path (the VERP address) names it.
    other = "ab2cd3ef4gh5ij6kl7mn2op3qr"
    raw = sample(
        "postfix_dsn.eml",
        **{f"X-Nudge-Ref: {REF}": "X-Other: 1", f"<bounce+{REF}@": f"<bounce+{other}@"},
    )
    report = read_report("postmaster@shop.example.com", raw)
    assert isinstance(report, Bounce) and report.ref == other


def test_an_arf_abuse_report_is_a_complaint() -> None:
    report = read_report("fbl@shop.example.com", sample("arf_abuse.eml"))
    assert report == Complaint(REF, "abuse", "SomeGenerator/1.0", "feedback-type abuse")


def test_a_complaint_without_the_original_is_named_by_original_mail_from() -> None:
    raw = sample("arf_abuse.eml")
    head, _, _ = raw.partition(b"--part1_13d.2e68ed54_boundary\nContent-Type: message/rfc822")
    report = read_report("fbl@shop.example.com", head + b"--part1_13d.2e68ed54_boundary--\n")
    assert isinstance(report, Complaint) and report.ref == REF


def test_a_not_spam_report_is_ignored() -> None:
    raw = sample("arf_abuse.eml", **{"Feedback-Type: abuse": "Feedback-Type: not-spam"})
    assert read_report("fbl@shop.example.com", raw) == Ignored("feedback_not-spam")


def test_mail_to_the_unsubscribe_address_unsubscribes_whatever_it_says() -> None:
    assert read_report(unsubscribe_address(REF, "x.example"), b"junk") == Unsubscribe(REF)


def test_an_auto_reply_to_the_return_path_is_ignored() -> None:
    raw = (
        b"From: ann@example.net\r\nAuto-Submitted: auto-replied\r\n"
        b"Subject: Out of office\r\n\r\nAway.\r\n"
    )
    assert read_report(BOUNCE_TO, raw) == Ignored("auto_reply")


@pytest.mark.parametrize(
    ("recipient", "reason"),
    [(BOUNCE_TO, "unparseable_dsn"), ("fbl@shop.example.com", "unrecognised_mail")],
)
def test_garbage_is_invalid_with_a_reason(recipient: str, reason: str) -> None:
    with pytest.raises(InvalidMessage) as caught:
        read_report(recipient, sample("garbage.eml"))
    assert caught.value.reason == reason


def test_a_report_that_names_no_message_is_invalid() -> None:
    raw = sample("arf_abuse.eml", **{REF: "x"})  # "bounce+x@" and "X-Nudge-Ref: x": no ref
    raw = raw.replace(b"X-Nudge-Ref: x", b"X-Other: x").replace(b"bounce+x@", b"shop@")
    with pytest.raises(InvalidMessage) as caught:
        read_report("fbl@shop.example.com", raw)
    assert caught.value.reason == "unattributable_report"


def test_the_bounce_domain_defaults_to_the_senders_and_must_be_a_domain() -> None:
    assert bounce_domain(Settings(mail_from="Shop <news@Shop.Example>")) == "shop.example"
    assert bounce_domain(Settings(bounce_domain="Bounces.Shop.Example")) == "bounces.shop.example"
    for bad in ("bounces@shop.example", "a b.example", "x.example\r\nBcc: y", "-x.example", "a..b"):
        with pytest.raises(ValidationError, match="bounce_domain"):
            Settings(bounce_domain=bad)

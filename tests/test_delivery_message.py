"""The hand-built RFC 5322 bytes, parsed back by the standard library."""

from __future__ import annotations

import re
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

import pytest

from nudge.delivery.message import BadAddress, HeaderInjection, build_message, message_id
from nudge.delivery.render import Rendered
from nudge.delivery.sent_messages import message_ref

UNSUB = "https://nudge.example.com/unsubscribe/" + "t" * 140 + ".sig"
NOW_MS = 1_700_000_000_000
REF = message_ref("cart:c1:1699996400000:0", "test-secret")
MAILTO = f"mailto:unsubscribe+{REF}@bounces.example.com?subject=unsubscribe"


def build(rendered: Rendered, **overrides: Any) -> Any:
    values: dict[str, Any] = {
        "command_id": "cart:c1:1699996400000:0",
        "mail_from": "Demo Shop <shop@example.com>",
        "recipient": "ann@example.com",
        "unsubscribe_url": UNSUB,
        "now_ms": NOW_MS,
        "ref": REF,
        "bounce_domain": "bounces.example.com",
    }
    values.update(overrides)
    return build_message(rendered, **values)


def parse(data: bytes) -> EmailMessage:
    msg = message_from_bytes(data, policy=policy.default)
    assert isinstance(msg, EmailMessage)
    return msg


def body(msg: EmailMessage, kind: str) -> str:
    part = msg.get_body((kind,))
    assert part is not None
    content = part.get_content()
    assert isinstance(content, str)
    # Parsed from wire bytes, decoded text keeps the CRLF line endings of the wire.
    return content.replace("\r\n", "\n")


def test_ascii_message_parses_back() -> None:
    out = build(Rendered(subject="Your cart", html="<p>hi &amp; bye</p>", text="hi\nbye"))
    msg = parse(out.data)
    # The envelope sender is the VERP return path; From stays as configured.
    assert out.sender == f"bounce+{REF}@bounces.example.com"
    assert out.recipients == ("ann@example.com",)
    assert msg["From"] == "Demo Shop <shop@example.com>"
    assert msg["To"] == "ann@example.com"
    assert msg["Subject"] == "Your cart"
    assert msg["Date"] == "Tue, 14 Nov 2023 22:13:20 +0000"
    assert msg["Date"].datetime.timestamp() == NOW_MS / 1000
    assert msg["Message-ID"] == out.message_id == message_id(out_id(), "shop@example.com")
    assert msg["MIME-Version"] == "1.0"
    # The message is named by its opaque ref; no internal id goes out.
    assert msg["X-Nudge-Ref"] == REF and len(REF) == 26
    assert b"cart:c1" not in out.data and b"X-Nudge-Command-Id" not in out.data
    # Long URLs stay one literal <URL>: an encoded word there breaks one-click unsubscribe.
    # The mailto: alternative follows on a folded line of its own.
    assert msg["List-Unsubscribe"] == f"<{UNSUB}>, <{MAILTO}>"
    assert f"List-Unsubscribe: <{UNSUB}>,\r\n <{MAILTO}>\r\n".encode() in out.data
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert msg.get_content_type() == "multipart/alternative"
    parts = list(msg.iter_parts())
    assert [p.get_content_type() for p in parts] == ["text/plain", "text/html"]
    assert all(p.get_content_charset() == "utf-8" for p in parts)
    assert body(msg, "plain") == "hi\nbye\n"
    assert body(msg, "html") == "<p>hi &amp; bye</p>\n"
    assert not msg.defects and not any(p.defects for p in parts)


def out_id() -> str:
    return "cart:c1:1699996400000:0"


def test_wire_format_is_crlf_7bit_and_short_lines() -> None:
    text = "Grüße, Jörg! " * 40 + "\n\ttabbed line  \n.leading dot\nFrom here\r\nold mac\rend"
    html = "<p>" + "é" * 300 + '</p><a href="https://shop.example.com/?a=1&amp;b=2">x</a>'
    data = build(Rendered(subject="Déjà vu", html=html, text=text)).data
    assert data.isascii()
    assert b"\n" not in data.replace(b"\r\n", b"")
    assert b"\r" not in data.replace(b"\r\n", b"")
    lines = data.split(b"\r\n")
    # List-Unsubscribe's URIs cannot be folded: the header's two lines may be longer.
    unfoldable = (b"List-Unsub", b" <mailto:")
    assert max(len(line) for line in lines if not line.startswith(unfoldable)) <= 78
    msg = parse(data)
    expected = text.replace("\r\n", "\n").replace("\r", "\n") + "\n"
    assert body(msg, "plain") == expected
    assert body(msg, "html") == html + "\n"
    for part in msg.iter_parts():
        assert part["Content-Transfer-Encoding"] == "quoted-printable"


def test_non_ascii_subject_and_display_names_are_encoded_words() -> None:
    subject = "Dein Warenkorb wartet — jetzt zurück zum Einkauf, 10 % Rabatt auf alles 🛒"
    out = build(
        Rendered(subject=subject, html="<p>ü</p>", text="ü"),
        mail_from="Démo Shop <shop@example.com>",
        recipient="Zoë Ünal <zoe@example.com>",
    )
    assert out.data.isascii()
    assert b"=?utf-8?" in out.data
    msg = parse(out.data)
    assert msg["Subject"] == subject
    assert msg["From"].addresses[0].display_name == "Démo Shop"
    assert msg["From"].addresses[0].addr_spec == "shop@example.com"
    assert msg["To"].addresses[0].display_name == "Zoë Ünal"
    assert out.recipients == ("zoe@example.com",)
    assert body(msg, "plain") == "ü\n"


@pytest.mark.parametrize(
    "subject",
    [
        "An ASCII subject long enough that it has to be folded over more than one line ok",
        "x" * 1200,  # one word that cannot fold at whitespace within 998 characters
        "Looks like =?utf-8?q?an_encoded_word?= but is not",
    ],
)
def test_awkward_subjects_round_trip(subject: str) -> None:
    data = build(Rendered(subject=subject, html="", text="")).data
    assert max(len(line) for line in data.split(b"\r\n")) <= 998
    assert parse(data)["Subject"] == subject


def test_display_name_with_specials_is_quoted() -> None:
    sender = '"Shop, \\"Inc.\\"" <s@example.com>'
    out = build(Rendered(subject="s", html="", text=""), mail_from=sender)
    msg = parse(out.data)
    assert msg["From"].addresses[0].display_name == 'Shop, "Inc."'
    assert msg["From"].addresses[0].addr_spec == "s@example.com"


def test_boundary_cannot_occur_in_bodies() -> None:
    # The boundary starts with "=_", which quoted-printable output never contains.
    text = "--=_nudge_ and =_ and --" + "=" * 10
    data = build(Rendered(subject="s", html=text, text=text)).data
    boundary = re.search(rb'boundary="([^"]+)"', data)
    assert boundary is not None and boundary.group(1).startswith(b"=_")
    assert data.count(b"--" + boundary.group(1)) == 3
    msg = parse(data)
    assert body(msg, "plain") == text + "\n"
    assert body(msg, "html") == text + "\n"


def test_transactional_message_has_no_list_unsubscribe() -> None:
    msg = parse(build(Rendered(subject="s", html="", text=""), unsubscribe_url=None).data)
    assert msg["List-Unsubscribe"] is None and msg["List-Unsubscribe-Post"] is None


@pytest.mark.parametrize(
    "overrides",
    [
        {"ref": "r\r\nBcc: evil@example.com"},
        {"bounce_domain": "example.com\r\nBcc: evil@example.com"},
        {"unsubscribe_url": "https://x.example.com/u\nBcc: evil@example.com"},
        {"mail_from": "Shop\n <shop@example.com>"},
        {"recipient": "ann@example.com\r\n"},
        {"recipient": ""},
    ],
)
def test_header_injection_on_every_header(overrides: dict[str, Any]) -> None:
    with pytest.raises(HeaderInjection):
        build(Rendered(subject="s", html="", text=""), **overrides)


def test_non_ascii_address_is_a_permanent_failure() -> None:
    with pytest.raises(BadAddress) as err:
        build(Rendered(subject="s", html="", text=""), recipient="jörg@example.com")
    assert err.value.reason == "bad_address"


INJECTED_NAME = "Ann\r\nBcc: evil@example.com"


def header_names(data: bytes) -> list[bytes]:
    head = data.split(b"\r\n\r\n", 1)[0]
    return [line.split(b":", 1)[0] for line in head.split(b"\r\n") if line[:1] not in b" \t"]


@pytest.mark.parametrize(
    ("subject", "cleaned"),
    [
        (f"Hi {INJECTED_NAME}", "Hi Ann Bcc: evil@example.com"),
        ("Hi\nthere", "Hi there"),
        ("  tab\there\x00 nul\x7f del\u2028line\x85nel  ", "tab here nul del line nel"),
        ("Grüße\r\n Jörg", "Grüße Jörg"),
        ("10\u00a0% off", "10\u00a0% off"),  # a no-break space is the author's choice
    ],
)
def test_subject_is_cleaned_to_one_line(subject: str, cleaned: str) -> None:
    out = build(Rendered(subject=subject, html="", text=""))
    msg = parse(out.data)
    assert msg["Subject"] == cleaned
    assert msg["Bcc"] is None and b"Bcc" not in header_names(out.data)
    assert out.recipients == ("ann@example.com",)


@pytest.mark.parametrize(
    ("name", "display"),
    [
        (INJECTED_NAME, "Ann Bcc: evil@example.com"),
        ("Zoë\nÜnal", "Zoë Ünal"),
        ("\r\n", ""),
    ],
)
def test_recipient_display_name_is_cleaned_and_cannot_add_a_header(name: str, display: str) -> None:
    out = build(Rendered(subject="s", html="", text=""), recipient_name=name)
    msg = parse(out.data)
    (to,) = msg["To"].addresses
    assert (to.display_name, to.addr_spec) == (display, "ann@example.com")
    assert msg["Bcc"] is None and b"Bcc" not in header_names(out.data)
    assert header_names(out.data).count(b"To") == 1
    assert out.recipients == ("ann@example.com",)  # the envelope: one recipient


def test_addresses_are_refused_not_cleaned() -> None:
    # A cleaned address would be someone else's: this stays the last line of defence.
    with pytest.raises(HeaderInjection):
        build(Rendered(subject="s", html="", text=""), recipient=f"{INJECTED_NAME} <a@x.com>")
    with pytest.raises(HeaderInjection):
        build(
            Rendered(subject="s", html="", text=""),
            recipient="ann@example.com\r\nBcc: evil@example.com",
            recipient_name="Ann",
        )


@pytest.mark.parametrize("prefix", ["", "İ "])  # "İ" lowercases to two characters
def test_fast_href_scan_matches_the_regex(prefix: str) -> None:
    from nudge.delivery.links import _HREF, add_params, tag_html_links

    params = {"utm_source": "nudge", "utm_campaign": "c"}
    markup = prefix + (
        '<a HREF="https://s.example.com/a?x=1&amp;y=2">a</a> <a xhref="https://s.example.com/b">'
        "<a data-href='https://s.example.com/c'>c</a> <a href = 'http://s.example.com/d'>"
        '<a href="mailto:x@example.com">m</a> <a href="https://u.example.com/unsub/t">u</a>'
        " href href="
    )
    skip = ("https://u.example.com/unsub/",)

    def slow(match: Any) -> str:
        url = add_params(match.group(3).replace("&amp;", "&"), params, skip_prefixes=skip)
        return f"{match.group(1)}{match.group(2)}{url.replace('&', '&amp;')}{match.group(2)}"

    assert tag_html_links(markup, params, skip_prefixes=skip) == _HREF.sub(slow, markup)
    assert 'xhref="https://s.example.com/b"' in tag_html_links(markup, params)

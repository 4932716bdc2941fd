"""Customer and order imports: mapping, normalisation, rejects, the historical flag."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner, Result

from nudge.cli.main import main
from nudge.codec import decode_customer, decode_order
from nudge.imports.customers import customer_event
from nudge.imports.emails import normalise_email
from nudge.imports.errors import RowError
from nudge.imports.orders import parse_date
from nudge.settings import Settings
from tests.pipeline_support import read_topic, settings_env

FIXTURES = Path(__file__).parent / "fixtures"
MAPS = ["--map", "customer_id=ID", "--map", "email=E-mail", "--map", "first_name=Name"]
MAPS += ["--map", "last_name=Surname", "--map", "phone=Phone", "--map", "timezone=tz"]


def invoke(settings: Settings, *args: str) -> Result:
    return CliRunner().invoke(main, ["import", *args, "--no-progress"], env=settings_env(settings))


def rejects_of(path: Path) -> list[tuple[int, str]]:
    return [(r["line"], r["reason"]) for r in map(orjson.loads, path.read_text().splitlines())]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("  Alice@Example.COM ", "Alice@example.com"),
        ("a.b+tag@sub.EXAMPLE.org", "a.b+tag@sub.example.org"),
        ("josé@bücher.de", None),  # non-ASCII local part: refused
        ("x@bücher.de", "x@xn--bcher-kva.de"),
        ("no-at.example.com", None),
        ("a..b@example.com", None),
        ("a@localhost", None),
        ("a@-bad-.com", None),
        ("ann\n@example.com", None),  # a line break inside is never trimmed away
        ("ann@ex\n.com", None),
    ],
)
def test_email_normalisation(raw: str, expected: str | None) -> None:
    if expected is None:
        with pytest.raises(RowError):
            normalise_email(raw)
    else:
        assert normalise_email(raw) == expected


def test_customer_event_is_deterministic() -> None:
    row = {"customer_id": "c", "email": "c@example.com", "consent_email": "yes"}
    one, two = customer_event(row, {}, ("crm",), 1), customer_event(row, {}, ("crm",), 2)
    assert one["event_id"] == two["event_id"]
    assert one["attributes"]["tags"] == "Subscriber,crm"


def test_dates() -> None:
    assert parse_date("2024-01-01T00:00:00Z") == 1704067200000
    assert parse_date("2024-01-01") == 1704067200000  # no offset: UTC
    assert parse_date("1704067200000") == 1704067200000
    assert parse_date(1704067200) == 1704067200000  # seconds
    with pytest.raises(RowError):
        parse_date("yesterday")


@pytest.mark.e2e
def test_customers_csv_and_jsonl(make_settings: Callable[..., Settings], tmp_path: Path) -> None:
    settings = make_settings()
    rejects = tmp_path / "c.rejects.jsonl"
    csv_file = str(FIXTURES / "customers.csv")
    result = invoke(
        settings, "customers", csv_file, *MAPS, "--tag", "crm", "--rejects", str(rejects)
    )
    assert result.exit_code == 0, result.output
    assert "read 6, produced 3, rejected 3" in result.output
    assert rejects_of(rejects) == [
        (4, "invalid email 'not-an-email'"),
        (5, "unknown timezone 'Mars/Olympus'"),
        (7, "bad consent_email 'maybe'"),
    ]
    jsonl_rejects = tmp_path / "j.rejects.jsonl"
    jsonl = str(FIXTURES / "customers.jsonl")
    result = invoke(settings, "customers", jsonl, "--rejects", str(jsonl_rejects))
    assert result.exit_code == 0, result.output
    assert [line for line, _ in rejects_of(jsonl_rejects)] == [2, 3, 4]

    messages = read_topic(settings, "customers")
    events = {m.key().decode(): decode_customer(m.value()) for m in messages}
    alice = events["c-1"]
    assert alice.email == "Alice@example.com"
    assert (alice.first_name, alice.last_name) == ("Alice", "Smith")
    assert alice.phone == "+442079460958"
    assert alice.timezone == "Europe/London"
    assert alice.consent == {"email": "subscribed", "sms": "unsubscribed"}
    assert alice.attributes == {"city": "London", "tags": "Buyer,Newsletter,Subscriber,VIP,crm"}
    assert events["c-2"].attributes["tags"] == "Contact,crm"  # type: ignore[index]
    erin = events["erin@example.net"]  # no id: the normalised email is the id
    assert erin.consent == {"email": "pending"}
    zoe = events["j-1"]
    assert zoe.email == "Zoe@mail.example.com"
    assert zoe.consent == {"email": "subscribed", "sms": "pending"}
    assert zoe.attributes == {"loyalty": 2, "tags": "Buyer,Subscriber"}
    assert events["j-6"].phone == "+442079460000"

    # A re-run repeats every event id: idempotent downstream.
    invoke(settings, "customers", csv_file, *MAPS, "--tag", "crm", "--rejects", str(rejects))
    again = read_topic(settings, "customers")
    ids = [orjson.loads(m.value())["event_id"] for m in again]
    assert len(ids) == 2 * len(events) - 2 and len(set(ids)) == len(events)


@pytest.mark.e2e
def test_orders_are_historical(make_settings: Callable[..., Settings], tmp_path: Path) -> None:
    settings = make_settings()
    rejects = tmp_path / "o.rejects.jsonl"
    result = invoke(settings, "orders", str(FIXTURES / "orders.csv"), "--rejects", str(rejects))
    assert result.exit_code == 0, result.output
    assert "read 5, produced 2, rejected 3" in result.output
    assert rejects_of(rejects) == [
        (4, "bad date 'yesterday'"),
        (5, "missing customer_id"),
        (6, "items: not a JSON array"),
    ]
    result = invoke(settings, "orders", str(FIXTURES / "orders.jsonl"), "--rejects", str(rejects))
    assert "produced 1, rejected 1" in result.output
    orders = {
        m.key().decode() + "/" + decode_order(m.value()).order_id: decode_order(m.value())
        for m in read_topic(settings, "orders")
    }
    assert set(orders) == {"c-1/o-1", "c-2/o-2", "c-9/j-o1"}
    assert all(o.historical and o.type == "order_placed" for o in orders.values())
    first = orders["c-1/o-1"]
    assert (first.ts, first.total, first.currency, first.status) == (
        1709288100000,
        21.0,
        "EUR",
        "delivered",
    )
    assert [(i.product_id, i.quantity, i.price) for i in first.items] == [("p-1", 2, 10.5)]
    second = orders["c-2/o-2"]
    assert (second.total, second.currency, second.items[0].product_id) == (5.0, "USD", "p-2")
    assert orders["c-9/j-o1"].ts == 1704161045000


def test_existing_customers_are_marked_historical() -> None:
    row = {"email": "Ann@Example.com"}
    assert "historical" not in customer_event(row, {}, (), 1)
    assert customer_event(row, {}, (), 1, historical=True)["historical"] is True

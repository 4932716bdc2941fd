"""Catalogue imports against the real broker and Redis: change detection, change events,
rejects, and sources that must change nothing."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import orjson
import psutil
import pytest
from click.testing import CliRunner, Result

from nudge.cli.main import main
from nudge.embedded import free_port
from nudge.imports import reader_process
from nudge.imports.catalog import CatalogSummary, import_catalog
from nudge.imports.errors import FeedError
from nudge.settings import Settings
from tests.pipeline_support import read_topic, settings_env

pytestmark = pytest.mark.e2e
FIXTURES = Path(__file__).parent / "fixtures"


def offer(pid: str, price: str, available: bool = True) -> str:
    return (
        f'<offer id="{pid}" available="{str(available).lower()}"><url>https://s.example/{pid}</url>'
        f"<price>{price}</price><currencyId>EUR</currencyId><name>Item {pid}</name></offer>"
    )


def yml(*offers: str) -> str:
    return (
        '<?xml version="1.0"?>\n<yml_catalog><shop><categories>'
        '<category id="1">All</category></categories><offers>\n'
        + "\n".join(offers)
        + "\n</offers></shop></yml_catalog>\n"
    )


def values(settings: Settings, topic: str) -> list[dict]:
    return [orjson.loads(m.value()) for m in read_topic(settings, topic)]


def run_cli(settings: Settings, *args: str) -> Result:
    return CliRunner().invoke(
        main, ["import", "catalog", *args, "--no-progress"], env=settings_env(settings)
    )


def test_change_detection_price_drop_and_back_in_stock(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    settings = make_settings()
    feed = tmp_path / "feed.xml"
    rejects = tmp_path / "rejects.jsonl"

    def run() -> CatalogSummary:
        return import_catalog(settings, str(feed), rejects=rejects, progress=False)

    feed.write_text(yml(offer("a", "10"), offer("b", "20", available=False), offer("c", "5")))
    first = run()
    assert (first.read, first.changed, first.unchanged) == (3, 3, 0)

    second = run()  # the same feed again: nothing to say
    assert (second.changed, second.unchanged) == (0, 3)
    assert len(values(settings, "catalog")) == 3

    feed.write_text(yml(offer("a", "8.5"), offer("b", "20"), offer("c", "6")))
    third = run()
    assert (third.changed, third.price_drops, third.back_in_stock) == (3, 1, 1)
    catalog = values(settings, "catalog")
    assert len(catalog) == 6
    assert any(r["product_id"] == "a" and r["price"] == 8.5 for r in catalog)
    changes = {(c["type"], c["product_id"]): c for c in values(settings, "catalog-changes")}
    assert set(changes) == {("price_drop", "a"), ("back_in_stock", "b")}
    drop = changes[("price_drop", "a")]
    assert (drop["old_price"], drop["new_price"], drop["currency"]) == (10.0, 8.5, "EUR")
    assert drop["event_id"] and drop["ts"] > 0
    assert not rejects.exists()


def test_rejects_file_and_summary(make_settings: Callable[..., Settings], tmp_path: Path) -> None:
    settings = make_settings()
    rejects = tmp_path / "r.jsonl"
    result = run_cli(settings, str(FIXTURES / "shop.yml.xml"), "--rejects", str(rejects))
    assert result.exit_code == 0, result.output
    assert "read 6, changed 3, unchanged 0, rejected 3" in result.output
    lines = [orjson.loads(x) for x in rejects.read_text().splitlines()]
    assert [(r["line"], r["reason"]) for r in lines] == [
        (38, "bad price 'abc'"),
        (43, "missing id"),
        (48, "missing url"),
    ]
    keys = {m.key() for m in read_topic(settings, "catalog")}
    assert keys == {b"p-1", b"p-2", b"p-6"}


def test_xxe_is_refused_and_nothing_leaks(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    settings = make_settings()
    secret = tmp_path / "secret.txt"
    secret.write_text("TOPSECRET-4242")
    feed = tmp_path / "evil.xml"
    feed.write_text(
        f'<?xml version="1.0"?>\n<!DOCTYPE yml_catalog [<!ENTITY xxe SYSTEM "file://{secret}">]>\n'
        + yml(offer("x", "1").replace("Item x", "&xxe;")).split("\n", 1)[1]
    )
    rejects = tmp_path / "r.jsonl"
    result = run_cli(settings, str(feed), "--rejects", str(rejects))
    assert result.exit_code != 0
    assert "entities" in result.output
    assert "TOPSECRET" not in result.output
    assert not rejects.exists()
    for topic in ("catalog", "catalog-changes"):
        assert all(b"TOPSECRET" not in (m.value() or b"") for m in read_topic(settings, topic))


@pytest.fixture
def http_feed(tmp_path: Path) -> Iterator[str]:
    """A local web server serving tmp_path."""
    (tmp_path / "feed.xml").write_text(yml(offer("u1", "3")))
    (tmp_path / "page.html").write_text("<html><body>Shop</body></html>")

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__(*args, directory=str(tmp_path), **kwargs)  # type: ignore[arg-type]

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_url_sources(
    make_settings: Callable[..., Settings], http_feed: str, tmp_path: Path
) -> None:
    settings = make_settings()
    rejects = str(tmp_path / "r.jsonl")
    closed = f"http://127.0.0.1:{free_port()}/feed.xml"
    for url, message in [
        (closed, "cannot fetch"),
        (f"{http_feed}/page.html", "not a product feed: root element <html>"),
        (f"{http_feed}/missing.xml", "HTTP 404"),
    ]:
        result = run_cli(settings, url, "--rejects", rejects)
        assert result.exit_code == 1, result.output
        assert message in result.output
        assert result.output.count("Error:") == 1
    assert read_topic(settings, "catalog") == []

    result = run_cli(settings, f"{http_feed}/feed.xml", "--rejects", rejects)
    assert result.exit_code == 0, result.output
    assert [m.key() for m in read_topic(settings, "catalog")] == [b"u1"]


def test_feed_broken_half_way(make_settings: Callable[..., Settings], tmp_path: Path) -> None:
    """What came before the break is imported (and remembered), then the import fails."""
    settings = make_settings()
    feed = tmp_path / "feed.xml"
    rejects = str(tmp_path / "r.jsonl")
    good = yml(offer("a", "1"), offer("b", "2"), "<offer><price>abc</price></offer>")
    feed.write_text(good.replace("</offers></shop></yml_catalog>", "<offer id='c'><url>"))
    result = run_cli(settings, str(feed), "--rejects", rejects)
    assert result.exit_code == 1, result.output
    assert result.output.count("Error:") == 1 and "broken XML" in result.output
    assert sorted(m.key() for m in read_topic(settings, "catalog")) == [b"a", b"b"]
    assert [orjson.loads(x)["line"] for x in Path(rejects).read_text().splitlines()] == [5]

    feed.write_text(good)
    result = run_cli(settings, str(feed), "--rejects", rejects)
    assert result.exit_code == 0, result.output
    assert "read 3, changed 0, unchanged 2, rejected 1" in result.output


def test_feed_of_rejects_only(make_settings: Callable[..., Settings], tmp_path: Path) -> None:
    settings = make_settings()
    feed = tmp_path / "feed.xml"
    feed.write_text(yml(*(f"<offer id='x{i}'><price>{i}</price></offer>" for i in range(3))))
    result = run_cli(settings, str(feed), "--rejects", str(tmp_path / "r.jsonl"))
    assert result.exit_code == 0, result.output
    assert "read 3, changed 0, unchanged 0, rejected 3" in result.output
    assert read_topic(settings, "catalog") == []


def test_reader_process_failure_changes_nothing(
    make_settings: Callable[..., Settings], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(reader_process, "READER_MODULE", "nudge.imports.no_such_reader")
    settings = make_settings()
    feed = tmp_path / "feed.xml"
    feed.write_text(yml(offer("a", "1")))
    result = run_cli(settings, str(feed), "--rejects", str(tmp_path / "r.jsonl"))
    assert result.exit_code == 1, result.output
    assert result.output.count("Error:") == 1
    assert "feed reader process exited with code 1" in result.output
    assert read_topic(settings, "catalog") == []


def test_unreachable_redis_changes_nothing_and_stops_the_reader(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    settings = make_settings(redis_url=f"redis://127.0.0.1:{free_port()}/0")
    feed = tmp_path / "feed.xml"
    feed.write_text(yml(offer("a", "1")))
    with pytest.raises(FeedError, match="cannot reach Redis"):
        import_catalog(settings, str(feed), rejects=tmp_path / "r.jsonl", progress=False)
    readers = [p for p in psutil.Process().children() if "nudge.imports.feed_reader" in p.cmdline()]
    assert readers == []
    assert read_topic(settings, "catalog") == []

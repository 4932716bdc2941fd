"""``nudge train --from-topics``: decoding events into interactions, deciding where the
topics end, and a model learnt end to end from what a storefront produced."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import CliRunner, Result
from confluent_kafka import Consumer, Producer, TopicPartition
from pipeline_support import Storefront

from nudge.cli.main import main
from nudge.codec import AVRO_HEADERS, decode_click, decode_order, encode_avro
from nudge.embedded import EmbeddedBroker, free_port
from nudge.kafka import producer_config
from nudge.recommender.errors import DataError
from nudge.recommender.model import ItemKNN
from nudge.recommender.topic_source import (
    BEFORE_SINCE,
    EndOfTopics,
    InteractionCollector,
    Row,
    event_rows,
    read_topics,
)
from nudge.recommender.training import DEFAULT_EVENT_WEIGHTS
from nudge.settings import Settings

DAY_MS = 86_400_000
TS = 1_700_000_000_000


def click(type_: str, **fields: Any) -> bytes:
    return orjson.dumps({"event_id": "e", "type": type_, "customer_id": "c1", "ts": TS, **fields})


def order(type_: str = "order_placed", products: Iterable[str] = ("p1",), **fields: Any) -> bytes:
    items = [{"product_id": p, "quantity": 2, "price": 9.5} for p in products]
    body = {
        "event_id": "e",
        "type": type_,
        "order_id": "o1",
        "customer_id": "c1",
        "ts": TS,
        "items": items,
        "total": 19.0,
        "currency": "EUR",
        **fields,
    }
    return orjson.dumps(body)


# ------------------------------------------------------------------------ pure decoding


def test_clicks_become_views_and_cart_adds() -> None:
    view = event_rows(decode_click(click("product_view", product_id="p1")))
    cart = event_rows(decode_click(click("cart_add", product_id="p2", quantity=1)))
    assert view == [Row("c1", "p1", "view", TS / 1000)]
    assert cart == [Row("c1", "p2", "cart_add", TS / 1000)]
    for kind in ("view", "cart_add", "purchase"):
        assert kind in DEFAULT_EVENT_WEIGHTS
    for other in (
        click("search", query="boots"),
        click("category_view", category_id="c-1"),
        click("cart_remove", product_id="p1"),
    ):
        assert event_rows(decode_click(other)) == []


def test_orders_become_one_purchase_per_product_historical_included() -> None:
    placed = decode_order(order(products=["p1", "p2", "p1"]))
    assert event_rows(placed) == [
        Row("c1", "p1", "purchase", TS / 1000),
        Row("c1", "p2", "purchase", TS / 1000),
    ]
    historical = decode_order(order(products=["p3"], historical=True))
    assert event_rows(historical) == [Row("c1", "p3", "purchase", TS / 1000)]
    assert event_rows(decode_order(order("order_status", status="shipped"))) == []


def test_collector_counts_skipped_undecodable_and_old_events() -> None:
    weights = {**DEFAULT_EVENT_WEIGHTS, "cart_add": 0.0}
    collector = InteractionCollector(weights, since_ms=TS - DAY_MS, max_bytes=64 * 1024)
    view = {"event_id": "e", "type": "product_view", "customer_id": "c2", "ts": TS}
    collector.add(
        "clickstream", encode_avro("clickstream", {**view, "product_id": "p9"}), AVRO_HEADERS
    )
    collector.add("clickstream", click("product_view", product_id="p1"), None)
    collector.add("clickstream", click("product_view", product_id="p1", ts=TS - 2 * DAY_MS), None)
    collector.add("clickstream", click("cart_add", product_id="p1"), None)
    collector.add("clickstream", click("search", query="q"), None)
    collector.add("clickstream", b"{not json", None)
    collector.add("clickstream", None, None)
    collector.add("orders", order(products=["p1", "p2"]), None)
    collector.add("orders", orjson.dumps({"type": "order_placed"}), None)
    stats = collector.stats
    assert (stats.rows, stats.used) == (9, 3)
    assert stats.by_topic == {"clickstream": 7, "orders": 2}
    assert stats.skipped_types == {BEFORE_SINCE: 1, "non-positive weight": 1, "search": 1}
    assert stats.undecodable == {
        "malformed_json": 1,
        "empty_payload": 1,
        "missing_customer_id": 1,
    }
    data = collector.builder.build()
    assert data.item_ids == ["p9", "p1", "p2"] and data.n_customers == 2
    assert data.weights.tolist() == [1.0, 1.0, 5.0, 5.0]


# ---------------------------------------------------------------------- end detection


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_end_takes_the_tail_of_the_last_batch_then_waits_for_quiet() -> None:
    clock = FakeClock()
    # Tansu: 8 records in batches [0-2] and [3-7] report a high watermark of 4.
    end = EndOfTopics({("t", 0): 4, ("t", 1): 0}, started_ms=TS, quiet_s=1.0, clock=clock)
    assert not end.finished()
    assert all(end.take(("t", 0), offset, TS - 5) for offset in range(4))
    clock.now += 0.5
    assert not end.finished()
    assert all(end.take(("t", 0), offset, TS - 5) for offset in range(4, 8))
    clock.now += 0.9
    assert not end.finished()
    clock.now += 0.2
    assert end.finished()


def test_end_stops_at_a_record_produced_after_the_start() -> None:
    clock = FakeClock()
    end = EndOfTopics({("t", 0): 2, ("t", 1): 1}, started_ms=TS, quiet_s=60.0, clock=clock)
    assert end.take(("t", 0), 0, TS + 10)  # below the end: always ours, whatever its time
    assert end.take(("t", 0), 1, TS)
    assert end.take(("t", 0), 2, None)  # no timestamp: taken, as Tansu's tail would be
    assert not end.take(("t", 0), 3, TS + 1)
    assert not end.take(("t", 0), 4, TS - 1)  # the partition is closed
    assert not end.finished()
    assert end.take(("t", 1), 0, TS)
    assert not end.take(("t", 1), 1, TS + 1)
    assert end.finished()  # every partition closed: no need to wait for quiet


def test_end_stalls_without_reaching_the_watermark() -> None:
    clock = FakeClock()
    end = EndOfTopics({("t", 0): 5}, started_ms=TS, quiet_s=1.0, stall_s=30.0, clock=clock)
    end.take(("t", 0), 0, TS)
    clock.now += 29.0
    assert not end.finished() and not end.stalled()
    end.advance(("t", 0), 3)  # the consumer position moves past undelivered records
    clock.now += 1.5
    assert end.stalled() and end.behind() == ["t[0] at 3 of 5"]
    end.advance(("t", 0), 5)
    assert end.finished() and not end.stalled() and end.behind() == []


# -------------------------------------------------------------------------- end to end

MakeSettings = Callable[..., Settings]
CreateTopics = Callable[[Settings, Iterable[str]], None]


def produce_shop(settings: Settings) -> None:
    """Three groups of products that go together, plus what training must skip:
    shoe+sock viewed together, tent+stove bought together, mug+cup added to carts."""
    shop = Storefront(settings)
    for customer in ("c1", "c2", "c3"):
        shop.click(customer, "product_view", product_id="p-shoe")
        if customer == "c3":  # as an Avro storefront sends it
            body = {
                "event_id": "avro-1",
                "type": "product_view",
                "customer_id": customer,
                "ts": int(time.time() * 1000),
                "product_id": "p-sock",
            }
            shop.send("clickstream", customer, encode_avro("clickstream", body), AVRO_HEADERS)
        else:
            shop.click(customer, "product_view", product_id="p-sock")
    shop.click("c1", "search", query="socks")
    shop.click("c2", "category_view", category_id="c-1")
    shop.click("c3", "cart_remove", product_id="p-sock", quantity=1)
    shop.click("c6", "cart_add", product_id="p-mug", quantity=1)
    shop.click("c6", "product_view", product_id="p-cup")
    shop.click("c7", "cart_add", product_id="p-cup", quantity=1)
    shop.click("c7", "cart_add", product_id="p-mug", quantity=1)
    shop.send("clickstream", "c7", b"{not json")

    def placed(order_id: str, products: list[str], **fields: Any) -> dict[str, Any]:
        items = [{"product_id": p, "quantity": 1, "price": 10.0} for p in products]
        return {
            "type": "order_placed",
            "order_id": order_id,
            "items": items,
            "total": 10.0 * len(items),
            "currency": "EUR",
            **fields,
        }

    shop.event("orders", "c4", **placed("o1", ["p-tent", "p-stove", "p-tent"]))
    shop.event("orders", "c4", **{**placed("o1", []), "type": "order_status", "status": "sent"})
    shop.event("orders", "c5", **placed("o2", ["p-tent", "p-stove"], historical=True))
    old = int(time.time() * 1000) - 200 * DAY_MS
    shop.event("orders", "c8", **placed("o3", ["p-tent", "p-lantern"], historical=True, ts=old))
    shop.send("orders", "c8", orjson.dumps({"type": "order_placed", "order_id": "o4"}))

    # Last, one batch of several records: Tansu's high watermark stops at its first one.
    batcher = Producer(producer_config(settings.kafka_bootstrap, **{"linger.ms": 500}))
    tail = [("product_view", "p-shoe"), ("product_view", "p-sock"), ("cart_add", "p-sock")]
    for type_, product in tail:
        body = {"event_id": f"b-{product}-{type_}", "type": type_, "customer_id": "c9"}
        body |= {"ts": int(time.time() * 1000), "product_id": product}
        batcher.produce(settings.topic("clickstream"), key=b"c9", value=orjson.dumps(body))
    assert batcher.flush(15) == 0


def watermark_total(settings: Settings) -> int:
    consumer = Consumer({"bootstrap.servers": settings.kafka_bootstrap, "group.id": "marks"})
    try:
        total = 0
        for name in (settings.topic("clickstream"), settings.topic("orders")):
            for p in consumer.list_topics(name, timeout=10).topics[name].partitions:
                total += consumer.get_watermark_offsets(TopicPartition(name, p), timeout=10)[1]
        return total
    finally:
        consumer.close()


def train(settings: Settings, *args: str) -> Result:
    return CliRunner().invoke(main, ["train", *args], env=settings.as_env())


def neighbours(model: ItemKNN, product: str) -> set[str]:
    row = model.item_ids.index(product)
    return {model.item_ids[i] for i in model.indices[model.indptr[row] : model.indptr[row + 1]]}


@pytest.mark.e2e
def test_train_from_topics_end_to_end(
    broker: Any, make_settings: MakeSettings, create_topics: CreateTopics, tmp_path: Path
) -> None:
    settings = make_settings()
    create_topics(settings, ["clickstream", "orders", "catalog"])
    produce_shop(settings)
    if isinstance(broker, EmbeddedBroker):  # the case this reader exists for
        assert watermark_total(settings) < 22
    shop = Storefront(settings)
    shop.product("p-tent", "Tent", 99.0, category_ids=["c-outdoor", "c-camping"])
    shop.product("p-stove", "Stove", 30.0, category_ids=["c-outdoor", "c-camping"])
    shop.product("p-stove", "Stove", 25.0, category_ids=["c-outdoor", "c-cooking"])

    out = tmp_path / "model"
    args = ["--from-topics", "--half-life", "none", "--shrink", "0", "--k", "5"]
    result = train(settings, *args, "--out", str(out))
    assert result.exit_code == 0, result.output
    assert (
        "read 25 records (3 catalog, 17 clickstream, 5 orders), used 16 -> 19 interactions"
        " (skipped 1 cart_remove, 1 category_view, 1 order_status, 1 search);"
        " 2 undecodable (1 malformed_json, 1 missing_customer_id)"
    ) in result.stderr
    assert f"written to {out}" in result.stdout
    assert "categories of 2 products" in result.stderr

    model = ItemKNN.load(out)
    assert model.metadata["metrics"]["interactions"] == 19
    # the stove's later catalogue record moved it out of camping
    assert model.popular(1, category="c-camping") == ["p-tent"]
    assert model.popular(1, category="c-cooking") == ["p-stove"]
    assert set(model.popular(2, category="c-outdoor")) == {"p-tent", "p-stove"}
    assert model.metadata["metrics"]["customers"] == 9
    assert sorted(model.item_ids) == sorted(
        ["p-shoe", "p-sock", "p-mug", "p-cup", "p-tent", "p-stove", "p-lantern"]
    )
    assert neighbours(model, "p-shoe") == {"p-sock"}
    assert neighbours(model, "p-mug") == {"p-cup"}
    assert neighbours(model, "p-stove") == {"p-tent"}
    assert neighbours(model, "p-tent") == {"p-stove", "p-lantern"}
    assert model.similar(["p-tent"], 1) == ["p-stove"]
    assert model.similar(["p-sock"], 1) == ["p-shoe"]

    recent = tmp_path / "recent"
    result = train(settings, *args, "--since", "P90D", "--out", str(recent))
    assert result.exit_code == 0, result.output
    assert "used 15 -> 17 interactions" in result.stderr
    assert f"1 {BEFORE_SINCE}" in result.stderr
    model = ItemKNN.load(recent)
    assert "p-lantern" not in model.item_ids and len(model.item_ids) == 6
    assert neighbours(model, "p-tent") == {"p-stove"}


@pytest.mark.e2e
def test_empty_or_missing_topics_are_clear_errors(
    make_settings: MakeSettings, create_topics: CreateTopics, tmp_path: Path
) -> None:
    settings = make_settings()
    out = tmp_path / "model"
    result = train(settings, "--from-topics", "--out", str(out))
    assert result.exit_code == 1
    assert f"topic '{settings.topic('clickstream')}'" in result.output
    assert "nudge topics create" in result.output

    create_topics(settings, ["clickstream", "orders"])
    result = train(settings, "--from-topics", "--out", str(out))
    assert result.exit_code == 1 and "are empty: nothing to train on" in result.output

    # Records, but none that says anything about a product.
    Storefront(settings).click("c1", "search", query="boots")
    result = train(settings, "--from-topics", "--out", str(out))
    assert result.exit_code == 1 and "no usable interactions" in result.output
    assert "(skipped 1 search)" in result.output
    assert not out.exists()


def test_unreachable_broker_is_a_data_error() -> None:
    settings = Settings(kafka_bootstrap=f"127.0.0.1:{free_port()}")
    started = time.monotonic()
    with pytest.raises(DataError, match="cannot read"):
        read_topics(settings, DEFAULT_EVENT_WEIGHTS, timeout_s=1.0)
    assert time.monotonic() - started < 10


def test_source_options_are_checked(tmp_path: Path) -> None:
    data = tmp_path / "events.csv"
    data.write_text("customer_id,product_id,type,ts\nc1,p1,view,1\n")
    runner = CliRunner()
    for args in ([], ["--interactions", str(data), "--from-topics"]):
        result = runner.invoke(main, ["train", *args])
        assert result.exit_code == 2, result.output
        assert "exactly one of --interactions PATH and --from-topics" in result.output
    result = runner.invoke(main, ["train", "--interactions", str(data), "--since", "P1D"])
    assert result.exit_code == 2 and "--from-topics only" in result.output
    for bad in ("90 days", "P0D"):
        result = runner.invoke(main, ["train", "--from-topics", "--since", bad])
        assert result.exit_code == 2 and "--since" in result.output

"""``nudge train`` and ``nudge recommend`` on small synthetic data."""

from __future__ import annotations

import json
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from nudge.cli.main import main
from nudge.recommender import synthetic
from nudge.recommender.cli import parse_duration
from nudge.recommender.data import parse_ts, read_interactions
from nudge.recommender.errors import DataError
from nudge.recommender.model import ItemKNN
from nudge.recommender.training import DEFAULT_EVENT_WEIGHTS

SPEC = synthetic.SyntheticSpec(n_customers=300, n_groups=10, group_size=5, seed=2)


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_train_then_recommend(tmp_path: Path, suffix: str) -> None:
    data = synthetic.write(SPEC, tmp_path / f"events{suffix}")
    out = tmp_path / "model"
    runner = CliRunner()
    result = runner.invoke(
        main,
        [
            "train",
            "--interactions",
            str(data),
            "--out",
            str(out),
            "--k",
            "8",
            "--shrink",
            "2",
            "--half-life",
            "P14D",
        ],
    )
    assert result.exit_code == 0, result.output
    assert f"written to {out}" in result.stdout
    assert "MiB of arrays" in result.stdout  # the model's memory is reported
    model = ItemKNN.load(out)
    assert model.metadata["params"]["k"] == 8
    assert model.metadata["params"]["half_life_s"] == 14 * 86_400
    assert model.metadata["metrics"]["interactions"] == SPEC.n_customers * SPEC.per_customer

    histories = tmp_path / "histories.jsonl"
    histories.write_text(
        json.dumps({"customer_id": "a", "history": ["p0", "p1"]})
        + "\n\n"
        + json.dumps({"customer_id": "b", "history": []})
        + "\n"
        + json.dumps({"customer_id": 7, "history": ["p12", "unknown"]})
        + "\n"
    )
    result = runner.invoke(
        main, ["recommend", "--model", str(out), "--input", str(histories), "--k", "4"]
    )
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["customer_id"] for line in lines] == ["a", "b", 7]
    assert lines[0]["items"] == model.recommend(["p0", "p1"], 4)
    assert lines[1]["items"] == model.popular(4)
    assert all(len(line["items"]) == 4 for line in lines)

    target = tmp_path / "recs.jsonl"
    result = runner.invoke(
        main,
        [
            "recommend",
            "--model",
            str(out),
            "--input",
            str(histories),
            "--k",
            "2",
            "--output",
            str(target),
            "--batch-size",
            "2",
        ],
    )
    assert result.exit_code == 0, result.output
    assert [json.loads(line)["items"] for line in target.read_text().splitlines()] == [
        line["items"][:2] for line in lines
    ]


def test_train_default_out_and_weight_override(tmp_path: Path) -> None:
    data = synthetic.write(SPEC, tmp_path / "events.csv")
    runner = CliRunner()
    with runner.isolated_filesystem(temp_dir=tmp_path):
        result = runner.invoke(
            main,
            ["train", "--interactions", str(data), "--weight", "purchase=9", "--half-life", "none"],
        )
        assert result.exit_code == 0, result.output
        written = Path(result.stdout.strip().splitlines()[-1].removeprefix("written to "))
        assert written.parent == Path(".nudge/models")
        model = ItemKNN.load(written)
        assert model.metadata["params"]["event_weights"]["purchase"] == 9
        assert model.metadata["params"]["half_life_s"] is None


def test_cli_errors_are_clear(tmp_path: Path) -> None:
    runner = CliRunner()
    bad = tmp_path / "bad.csv"
    bad.write_text("customer_id,product_id,type,ts\nc1,p1,view,yesterday\n")
    result = runner.invoke(main, ["train", "--interactions", str(bad)])
    assert result.exit_code == 1 and "bad.csv:2" in result.output
    result = runner.invoke(main, ["train", "--interactions", str(bad), "--half-life", "30 days"])
    assert result.exit_code == 2 and "ISO 8601" in result.output
    result = runner.invoke(main, ["recommend", "--model", str(tmp_path), "--input", str(bad)])
    assert result.exit_code == 1 and "not a model directory" in result.output


def test_reader_skips_unweighted_types_and_parses_timestamps(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_text(
        "\n".join(
            json.dumps(r)
            for r in [
                {"customer_id": "c", "product_id": "p", "type": "view", "ts": 1_700_000_000_000},
                {
                    "customer_id": "c",
                    "product_id": "q",
                    "weight": 2.5,
                    "ts": "2023-11-14T22:13:20Z",
                },
                {"customer_id": "c", "type": "search", "ts": 0, "product_id": "x"},
                {"customer_id": "d", "product_id": "p", "type": "cart_add", "ts": "1700000000000"},
            ]
        )
    )
    data, stats = read_interactions(path, DEFAULT_EVENT_WEIGHTS)
    assert (stats.rows, stats.used, stats.skipped_types) == (4, 3, {"search": 1})
    assert data.item_ids == ["p", "q"] and data.n_customers == 2
    assert data.weights.tolist() == [1.0, 2.5, 3.0]
    assert data.ts.tolist() == [1_700_000_000.0] * 3
    assert parse_ts("2023-11-14T22:13:20") == 1_700_000_000.0
    path.write_text('{"customer_id": "c", "ts": 1}\n')
    with pytest.raises(DataError, match="missing column"):
        read_interactions(path, DEFAULT_EVENT_WEIGHTS)
    with pytest.raises(DataError, match="unknown format"):
        read_interactions(path.rename(tmp_path / "events.txt"), DEFAULT_EVENT_WEIGHTS)


def test_parse_duration() -> None:
    assert parse_duration("P30D") == 30 * 86_400
    assert parse_duration("PT12H") == 12 * 3_600
    assert parse_duration("P1W2DT30M") == 9 * 86_400 + 1_800
    assert parse_duration("none") is None
    for bad in ("P", "PT", "30D", "P1DT", "P0D"):
        with pytest.raises(click.BadParameter):
            parse_duration(bad)


def test_train_takes_categories_from_a_feed(tmp_path: Path) -> None:
    events = tmp_path / "events.csv"
    rows = ["customer_id,product_id,type,ts"]
    bought = {"p-1": 2, "p-2": 1, "p-9": 5}  # p-9 is in no feed
    for product, times in bought.items():
        rows += [f"c{n}-{product},{product},purchase,1700000000000" for n in range(times)]
    events.write_text("\n".join(rows) + "\n")
    feed = Path(__file__).parent / "fixtures" / "shop.yml.xml"
    out = tmp_path / "model"
    result = CliRunner().invoke(
        main,
        ["train", "--interactions", str(events), "--catalog", str(feed), "--out", str(out)],
    )
    assert result.exit_code == 0, result.output
    assert "categories of" in result.stderr
    model = ItemKNN.load(out)
    assert model.popular(1) == ["p-9"]
    assert model.popular(1, category="1") == ["p-1"]  # Home > Kitchen > Knives
    assert model.popular(1, category="101") == ["p-1"]
    assert model.popular(1, category="2") == ["p-2"]  # Garden
    missing = CliRunner().invoke(
        main, ["train", "--interactions", str(events), "--catalog", str(tmp_path / "no.xml")]
    )
    assert missing.exit_code == 1 and "no such feed file" in missing.output

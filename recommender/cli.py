"""``nudge train`` and ``nudge recommend``: learn a model, and recommend in batch."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import click
from click.core import ParameterSource

from nudge.durations import parse_duration_ms
from nudge.errors import ConfigError, NudgeError

if TYPE_CHECKING:
    from nudge.recommender.training import TrainParams


def parse_duration(text: str) -> float | None:
    """Seconds in an ISO 8601 duration (``P30D``, ``PT12H``, ``P1W``); ``none`` = no decay."""
    if text.strip().lower() in ("none", "off", "0"):
        return None
    try:
        seconds = parse_duration_ms(text.strip()) / 1000
    except ConfigError as exc:
        raise click.BadParameter(
            f"{text!r} is not an ISO 8601 duration like P30D or PT12H"
        ) from exc
    if seconds <= 0:
        raise click.BadParameter(f"{text!r}: the half-life must be positive")
    return seconds


def _weights(pairs: tuple[str, ...]) -> dict[str, float]:
    from nudge.recommender.training import DEFAULT_EVENT_WEIGHTS

    weights = dict(DEFAULT_EVENT_WEIGHTS)
    for pair in pairs:
        name, sep, value = pair.partition("=")
        try:
            weights[name.strip()] = float(value)
        except ValueError:
            sep = ""
        if not sep or not name.strip():
            raise click.BadParameter(f"{pair!r}: expected TYPE=WEIGHT", param_hint="--weight")
    return weights


@click.command("train")
@click.option(
    "--interactions",
    "interactions_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="CSV or JSONL: customer_id, product_id, type or weight, ts (epoch ms or ISO 8601).",
)
@click.option(
    "--from-topics",
    is_flag=True,
    help="Replay the clickstream and orders topics from the beginning instead.",
)
@click.option(
    "--since",
    default=None,
    metavar="DURATION",
    help="With --from-topics: only events of the last DURATION (ISO 8601, e.g. P90D).",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Model directory to create (default: .nudge/models/<model version>).",
)
@click.option("--half-life", default="P30D", show_default=True, help="Time decay; 'none' = off.")
@click.option("--k", "k", type=click.IntRange(min=1), default=50, show_default=True)
@click.option("--shrink", type=click.FloatRange(min=0), default=10.0, show_default=True)
@click.option("--weight", "weights", multiple=True, help="Event weight override, TYPE=WEIGHT.")
@click.option(
    "--weighting",
    type=click.Choice(["bm25", "tfidf", "none"]),
    default="bm25",
    show_default=True,
    help="Weighting of the customer x product matrix before the cosine.",
)
@click.option(
    "--popularity-blend",
    type=click.FloatRange(min=0),
    default=0.0,
    show_default=True,
    help="Share of best-seller popularity added to personal scores.",
)
@click.option(
    "--tune-budget",
    default="60s",
    show_default=True,
    help="Time to choose weighting, K, shrink and half-life on the latest interactions "
    "(settings given explicitly are kept).",
)
@click.option("--no-tune", is_flag=True, help="Train with the given settings as they are.")
@click.option(
    "--holdout-days",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="Tune on the last N days (default: each customer's last moment).",
)
@click.option(
    "--catalog",
    default=None,
    metavar="PATH_OR_URL",
    help="A YML or Google Merchant feed giving product categories, for `popular` per "
    "category (--from-topics reads the catalog topic without it).",
)
def train_command(
    interactions_path: Path | None,
    from_topics: bool,
    since: str | None,
    out: Path | None,
    half_life: str,
    k: int,
    shrink: float,
    weights: tuple[str, ...],
    weighting: str,
    popularity_blend: float,
    tune_budget: str,
    no_tune: bool,
    holdout_days: float | None,
    catalog: str | None,
) -> None:
    """Learn an item-similarity model from interactions.

    Exactly one source: --interactions reads a file; --from-topics replays the
    clickstream and orders topics (NUDGE_KAFKA_BOOTSTRAP, NUDGE_TOPIC_PREFIX) from
    the beginning to their end at start, without a consumer group. Product views
    count as `view`, cart adds as `cart_add` and each product of a placed order,
    historical imports included, as `purchase`; other events and undecodable
    records are skipped and counted.
    """
    from tqdm import tqdm

    from nudge.recommender.data import ReadStats, read_interactions
    from nudge.recommender.model import ItemKNN
    from nudge.recommender.training import Interactions, TrainParams
    from nudge.recommender.tuning_cli import parse_budget, tuned

    if (interactions_path is None) == (not from_topics):
        raise click.UsageError("give exactly one of --interactions PATH and --from-topics")
    since_s: float | None = None
    if since is not None:
        if not from_topics:
            raise click.UsageError("--since applies to --from-topics only")
        try:
            since_s = parse_duration_ms(since.strip()) / 1000
        except ConfigError:
            since_s = 0.0
        if since_s <= 0:
            raise click.BadParameter(
                f"{since!r} is not a positive ISO 8601 duration like P90D", param_hint="--since"
            )
    params = TrainParams(
        event_weights=_weights(weights),
        half_life_s=parse_duration(half_life),
        k=k,
        shrink=shrink,
        weighting=weighting,
        popularity_blend=popularity_blend,
    )
    budget_s = 0.0 if no_tune else parse_budget(tune_budget)
    fixed = _explicit(params)
    problems = ""
    categories: dict[str, list[str]] = {}
    try:
        data: Interactions
        stats: ReadStats
        if interactions_path is not None:
            with tqdm(desc="reading", unit=" rows", file=sys.stderr) as bar:
                data, stats = read_interactions(interactions_path, params.event_weights, bar.update)
            summary = f"read {stats.rows} rows, used {stats.used}"
        else:
            from nudge.cli.settings import checked_settings
            from nudge.recommender.topic_source import read_topics

            def set_total(total: int) -> None:
                bar.total = total
                bar.refresh()

            with tqdm(desc="reading", unit=" records", file=sys.stderr) as bar:
                data, topic_stats, categories = read_topics(
                    checked_settings(), params.event_weights, bar.update, set_total, since_s
                )
            stats = topic_stats
            per_topic = ", ".join(f"{n} {t}" for t, n in sorted(topic_stats.by_topic.items()))
            summary = (
                f"read {stats.rows} records ({per_topic}), used {stats.used}"
                f" -> {len(data)} interactions"
            )
            reasons = ", ".join(f"{n} {r}" for r, n in sorted(topic_stats.undecodable.items()))
            if reasons:
                problems = f"; {topic_stats.undecodable_total} undecodable ({reasons})"
        skipped = ", ".join(f"{n} {t}" for t, n in sorted(stats.skipped_types.items()))
        click.echo(summary + (f" (skipped {skipped})" if skipped else "") + problems, err=True)
        if catalog is not None:
            from nudge.recommender.catalog_categories import categories_from_feed

            categories = categories_from_feed(catalog)
        if categories:
            click.echo(f"categories of {len(categories)} products", err=True)
        tuning = None
        if budget_s > 0:
            params, tuning = tuned(data, params, budget_s, fixed, holdout_days)
        with tqdm(total=len(data.item_ids), desc="training", unit=" items", file=sys.stderr) as bar:
            model = ItemKNN.fit(data, params, bar.update, categories)
        if tuning is not None:
            model.metadata["tuning"] = tuning
        target = out if out is not None else Path(".nudge/models") / model.model_version
        model.save(target)
    except NudgeError as exc:
        raise click.ClickException(str(exc)) from None
    metrics = model.metadata["metrics"]
    click.echo(
        f"model {model.model_version}: {metrics['items']} items, "
        f"{metrics['neighbour_pairs']} neighbour pairs, {metrics['co_purchase_pairs']} "
        f"co-purchase pairs, {metrics['categories']} categories, fit {metrics['fit_seconds']} s, "
        f"{model.memory_bytes / 2**20:.1f} MiB of arrays"
    )
    click.echo(f"written to {target}")


#: ``nudge train``'s options that tuning would otherwise choose, by the setting they fix.
_TUNED_OPTIONS = {
    "k": "k",
    "shrink": "shrink",
    "weighting": "weighting",
    "half_life": "half_life_s",
    "popularity_blend": "popularity_blend",
}


def _explicit(params: TrainParams) -> dict[str, Any]:
    """The tuned settings the command line gave explicitly: tuning keeps them."""
    context = click.get_current_context()
    given = {
        setting
        for option, setting in _TUNED_OPTIONS.items()
        if context.get_parameter_source(option) is ParameterSource.COMMANDLINE
    }
    return {name: getattr(params, name) for name in given}


def _histories(handle: IO[str]) -> Iterator[tuple[int, dict[str, Any]]]:
    from nudge.recommender.data import json_objects

    try:
        for line_no, record in json_objects(handle, "input"):
            if not isinstance(record.get("history"), list) or "customer_id" not in record:
                raise click.ClickException(f"line {line_no}: need customer_id and a history list")
            yield line_no, record
    except NudgeError as exc:
        raise click.ClickException(str(exc)) from None


@click.command("recommend")
@click.option(
    "--model", "model_dir", required=True, type=click.Path(file_okay=False, path_type=Path)
)
@click.option("--input", "input_file", required=True, type=click.File("r"))
@click.option("--output", "output_file", type=click.File("w"), default="-", show_default=True)
@click.option("--k", "k", type=click.IntRange(min=1), default=10, show_default=True)
@click.option(
    "--algorithm",
    type=click.Choice(["personal", "similar", "also_bought", "popular"]),
    default="personal",
    show_default=True,
)
@click.option("--batch-size", type=click.IntRange(min=1), default=10_000, hidden=True)
def recommend_command(
    model_dir: Path,
    input_file: IO[str],
    output_file: IO[str],
    k: int,
    algorithm: str,
    batch_size: int,
) -> None:
    """Recommend for lines of {"customer_id", "history": [...]} (JSONL)."""
    from nudge.recommender.model import ItemKNN

    try:
        model = ItemKNN.load(model_dir)
    except NudgeError as exc:
        raise click.ClickException(str(exc)) from None

    def flush(batch: list[dict[str, Any]]) -> None:
        histories = [[str(p) for p in record["history"]] for record in batch]
        for record, items in zip(
            batch, model.recommend_batch(histories, k, algorithm), strict=True
        ):
            output_file.write(json.dumps({"customer_id": record["customer_id"], "items": items}))
            output_file.write("\n")

    batch: list[dict[str, Any]] = []
    for _, record in _histories(input_file):
        batch.append(record)
        if len(batch) == batch_size:
            flush(batch)
            batch = []
    if batch:
        flush(batch)


@click.group("model")
def model_group() -> None:
    """Manage recommendation models."""


@model_group.command("publish")
@click.argument("model_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
def publish_command(model_dir: Path) -> None:
    """Announce MODEL_DIR on `model-updates`: delivery workers load it and swap it in.

    The directory must be readable by the workers at the same path (a shared volume).
    It is checked here first, so a bad artifact is refused before anyone sees it.
    """
    import time

    from confluent_kafka import Producer

    from nudge.cli.settings import checked_settings
    from nudge.kafka import producer_config
    from nudge.recommender.hot_swap import ANNOUNCEMENT_KEY, announcement
    from nudge.recommender.model import ItemKNN

    try:
        model = ItemKNN.load(model_dir)
    except NudgeError as exc:
        raise click.ClickException(f"refused: {exc}") from None
    settings = checked_settings()
    producer = Producer(producer_config(settings.kafka_bootstrap))
    value = announcement(model_dir, model.model_version, int(time.time() * 1000))
    producer.produce(settings.topic("model-updates"), key=ANNOUNCEMENT_KEY, value=value)
    if producer.flush(30):
        raise click.ClickException("could not publish the announcement")
    click.echo(f"published {model.model_version} ({model_dir.resolve()})")

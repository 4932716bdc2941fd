"""Evaluation results as a Markdown table (methods next to a published anchor) and JSON."""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from typing import Any

from nudge.recommender.evaluation import METRICS, RATIOS, MethodRuns, Outcome

LABELS = {"recall": "Recall", "ndcg": "NDCG", "hit": "Hit", "mrr": "MRR"}

# Published results on the same protocol, by data set and cutoff (RecBole's own
# ML-100k results for its ItemKNN), so a run shows where it stands without rerunning them.
ANCHORS: Mapping[tuple[str, int], Mapping[str, Mapping[str, float]]] = {
    ("ml-100k", 10): {"RecBole ItemKNN (published)": {"recall": 0.2470, "ndcg": 0.2834}},
}


def anchors_for(dataset: str, k: int) -> Mapping[str, Mapping[str, float]]:
    """Anchors only where data set and cutoff match: elsewhere they compare nothing."""
    return ANCHORS.get((dataset, k), {})


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for a single seed)."""
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return statistics.mean(values), spread


def seed_line(seed: int, outcomes: Mapping[str, Outcome]) -> str:
    return f"seed {seed}: " + ", ".join(f"{name}: {o.chosen}" for name, o in outcomes.items())


def table(runs: Sequence[MethodRuns], k: int, anchors: Mapping[str, Mapping[str, float]]) -> str:
    heads = " | ".join(f"{LABELS[m]}@{k}" for m in METRICS)
    lines = [
        f"| method | {heads} | fit s (median) | chosen on valid |",
        "|---" * (len(METRICS) + 3) + "|",
    ]
    for run in runs:
        cells = ["{:.4f} ± {:.4f}".format(*mean_std(run.values(metric))) for metric in METRICS]
        fit_s = statistics.median(o.fit_seconds for o in run.outcomes)
        lines.append(
            f"| {run.name} | {' | '.join(cells)} | {fit_s:.3f} | {', '.join(run.chosen())} |"
        )
    for name, scores in anchors.items():
        cells = [f"{scores[m]:.4f}" if m in scores else "-" for m in METRICS]
        lines.append(f"| {name} | {' | '.join(cells)} | - | - |")
    return "\n".join(lines)


def to_json(
    dataset: Mapping[str, Any],
    runs: Sequence[MethodRuns],
    seeds: int,
    k: int,
    anchors: Mapping[str, Mapping[str, float]],
) -> dict[str, Any]:
    """Everything the table shows, plus each seed's scores and choices."""
    methods: dict[str, Any] = {}
    for run in runs:
        summary: dict[str, Any] = {}
        for metric in METRICS:
            mean, std = mean_std(run.values(metric))
            summary[metric] = {"mean": mean, "std": std, "per_seed": run.values(metric)}
        summary["chosen_per_seed"] = [o.chosen for o in run.outcomes]
        summary["fit_seconds_per_seed"] = [o.fit_seconds for o in run.outcomes]
        methods[run.name] = summary
    return {
        "dataset": dict(dataset),
        "protocol": {
            "split": "per-user random permutation, RecBole rounding",
            "ratios": list(RATIOS),
            "ranking": "full ranking over all items; train masked on valid, train+valid on test",
            "tuned_on": f"valid NDCG@{k}",
            "seeds": list(range(seeds)),
            "k": k,
        },
        "methods": methods,
        "anchors": {name: dict(scores) for name, scores in anchors.items()},
    }

"""The `--every` schedule: intervals, start-to-start timing, failures that do not stop it."""

from __future__ import annotations

import pytest

from nudge.errors import ConfigError
from nudge.imports.every import parse_every, run_every


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("1h", 3600), ("30m", 1800), ("90s", 90), ("2d", 172800), ("PT1H", 3600), ("45", 45)],
)
def test_intervals(text: str, seconds: float) -> None:
    assert parse_every(text) == seconds


@pytest.mark.parametrize("text", ["0s", "soon", "-1h", ""])
def test_bad_intervals(text: str) -> None:
    with pytest.raises(ConfigError):
        parse_every(text)


def test_runs_start_to_start_and_survives_a_failed_run() -> None:
    now = [0.0]
    slept: list[float] = []
    runs: list[float] = []
    errors: list[str] = []

    def job() -> None:
        runs.append(now[0])
        now[0] += 10  # an import that takes 10 s
        if len(runs) == 2:
            raise ConfigError("feed unreachable")

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    run_every(
        60, job, lambda exc: errors.append(str(exc)), runs=3, sleep=sleep, clock=lambda: now[0]
    )
    assert runs == [0, 60, 120], "every 60 s from start to start, the failed run included"
    assert slept == [50, 50]
    assert errors == ["feed unreachable"]


def test_progress_bar_shows_rate_eta_and_rows(capsys: pytest.CaptureFixture[str]) -> None:
    from nudge.imports.progress import Progress

    bar = Progress(total_bytes=4000, label="catalog")
    bar.update(1000, 250)
    bar.update(4000, 1000)
    bar.close()
    last = capsys.readouterr().err.replace("\r", "\n").strip().splitlines()[-1]
    assert "catalog" in last and "100%" in last
    assert "<" in last, "elapsed<remaining: the ETA"
    assert "/s" in last, "a rate"
    assert "1,000 rows" in last

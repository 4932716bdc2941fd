"""Events/s of one stream worker, then of two sharing the same topics' partitions.

Per repeat, each configuration gets a fresh topic prefix with the same events produced
up front (``stream_throughput.events``: a storefront's mix) and the standard flows;
one worker, then two of the same app, consume them; their ``nudge_events_total``
counters are summed and the rate is taken between the 10 % and 90 % crossings.

On a machine with fewer cores than workers plus the broker, the second worker mostly
takes CPU time from the first: the ratio says how much the partitions split cleanly,
not how a cluster of separate machines scales.

    python benchmarks/stream_scaleout.py [--events 100000] [--partitions 4] [--repeats 3]
"""

from __future__ import annotations

import os

from _harness import environment, machine, markdown_table, median, say
from stream_throughput import events, prepared, standard_flows, stream_arguments, worker


def main() -> None:
    args = stream_arguments(__doc__ or "", 240.0).parse_args()

    rates: dict[int, list[float]] = {1: [], 2: []}
    rows: list[list[object]] = []
    with environment() as env:
        say(f"scratch {env.scratch}; broker {env.bootstrap}; redis {env.redis_url}")
        for repeat in range(1, args.repeats + 1):
            records = events(args.events, args.customers, seed=repeat)
            row: list[object] = [repeat]
            for count in rates:
                flows = standard_flows()
                settings, produced = prepared(env, records, flows, args.partitions)
                rate, wall = worker(env, settings, produced, args.timeout, count=count)
                rates[count].append(rate)
                row.append(f"{rate:,.0f}")
                say(f"repeat {repeat}, {count} worker(s): {rate:,.0f} events/s ({wall:.1f}s)")
            rows.append(row)

    one, two = median(rates[1]), median(rates[2])
    say()
    say(
        f"{args.events:,} events over {args.customers:,} customers, {args.partitions} "
        f"partitions, the standard flows; {args.repeats} repeats; {machine()}"
    )
    say(markdown_table(["repeat", "1 worker events/s", "2 workers events/s"], rows))
    say()
    say(
        markdown_table(
            ["measure", "median events/s", "vs 1 worker"],
            [["1 worker", f"{one:,.0f}", "1.00"], ["2 workers", f"{two:,.0f}", f"{two / one:.2f}"]],
        )
    )
    say(f"cores on this machine: {os.cpu_count()} (the broker and both workers share them)")


if __name__ == "__main__":
    main()

"""A misbehaving producer's flood of huge records: the stream worker's peak memory.

Per repeat, the standard flows on a storefront's mix (``stream_throughput.events``),
twice, each on a fresh topic prefix:

* clean: the events alone;
* flood: the same events, and among them ``--huge`` records just under
  ``NUDGE_MAX_PAYLOAD_BYTES`` (valid events whose attributes carry the padding) and
  ``--huge`` over it (dead-lettered unread), produced in bursts onto every partition.

Printed: the worker's peak resident memory (VmHWM) in both, and the raw bytes of the
flood beside the bound on what a worker holds: it fetches at most
``NUDGE_FETCH_MAX_BYTES`` per partition at once (``--partitions`` of each of the three
input topics), so the flood, many times that size, passes through in bounded slices.

    python benchmarks/stream_oversized.py [--events 50000] [--huge 1000] [--repeats 3]
"""

from __future__ import annotations

import random

import orjson
from _harness import environment, machine, markdown_table, median, say
from stream_malformed import dead_letters
from stream_throughput import events, prepared, standard_flows, stream_arguments, worker

from nudge.settings import Settings

INPUT_TOPICS = 3  # clickstream, orders, customers


def flood(
    records: dict[str, list[tuple[bytes, bytes]]], huge: int, limit: int, seed: int
) -> tuple[dict[str, list[tuple[bytes, bytes]]], int]:
    """``records`` with ``huge`` views padded to just under ``limit`` bytes and ``huge``
    over it, in bursts of 50 on the clickstream; and their raw bytes."""
    rng = random.Random(seed)
    clicks = list(records["clickstream"])
    raw = 0
    for n in range(0, 2 * huge, 50):
        burst = []
        for i in range(n, min(n + 50, 2 * huge)):
            customer = f"c{rng.randrange(20_000):06d}"
            event: dict[str, object] = {
                "event_id": f"huge-{seed}-{i}",
                "customer_id": customer,
                "type": "product_view",
                "ts": 1_700_000_000_000 + i,
                "product_id": "p-00001",
            }
            size = limit - 200 if i % 2 == 0 else limit * 2
            event["attributes"] = {"padding": "x" * (size - len(orjson.dumps(event)) - 30)}
            value = orjson.dumps(event)
            raw += len(value)
            burst.append((customer.encode(), value))
        at = rng.randrange(len(clicks))
        clicks[at:at] = burst
    return {**records, "clickstream": clicks}, raw


def main() -> None:
    parser = stream_arguments(__doc__ or "", 300.0)
    parser.set_defaults(events=50_000)
    parser.add_argument("--huge", type=int, default=1000, help="records of each size")
    args = parser.parse_args()

    peaks: dict[str, list[float]] = {"clean": [], "flood": []}
    rows: list[list[object]] = []
    limits = Settings()
    bound_mb = args.partitions * INPUT_TOPICS * limits.fetch_max_bytes / 2**20
    flood_mb = 0.0
    with environment() as env:
        say(f"scratch {env.scratch}; broker {env.bootstrap}; redis {env.redis_url}")
        for repeat in range(1, args.repeats + 1):
            clean = events(args.events, args.customers, seed=repeat)
            flooded, raw = flood(clean, args.huge, limits.max_payload_bytes, seed=repeat)
            flood_mb = raw / 2**20
            row: list[object] = [repeat]
            for name, records in (("clean", clean), ("flood", flooded)):
                settings, produced = prepared(env, records, standard_flows(), args.partitions)
                measured: list[float] = []
                rate, _ = worker(env, settings, produced, args.timeout, peaks_mb=measured)
                peaks[name].append(measured[0])
                row += [f"{measured[0]:,.0f}", f"{rate:,.0f}"]
                if name == "flood":
                    lettered = dead_letters(settings)
                    row.append(f"{lettered:,}")
                    if lettered < args.huge:
                        raise SystemExit(f"only {lettered} of {args.huge} oversized dead-lettered")
                peak = measured[0]
                say(f"repeat {repeat}, {name}: peak RSS {peak:,.0f} MB, {rate:,.0f} events/s")
            rows.append(row)

    clean_mb, flood_peak = median(peaks["clean"]), median(peaks["flood"])
    say()
    say(
        f"{args.events:,} events with the standard flows; flood: {args.huge:,} records just "
        f"under {limits.max_payload_bytes:,} bytes and {args.huge:,} over it, "
        f"{flood_mb:,.0f} MB raw; {args.repeats} repeats; {machine()}"
    )
    say(
        markdown_table(
            ["repeat", "clean peak MB", "clean events/s", "flood peak MB", "flood events/s",
             "dead letters"],
            rows,
        )
    )  # fmt: skip
    say()
    say(
        markdown_table(
            ["measure", "median peak RSS (MB)", "over clean (MB)", "bound on fetched input (MB)"],
            [
                ["clean", f"{clean_mb:,.0f}", "", ""],
                [
                    "flood",
                    f"{flood_peak:,.0f}",
                    f"{flood_peak - clean_mb:,.0f}",
                    f"{bound_mb:,.0f}",
                ],
            ],
        )
    )


if __name__ == "__main__":
    main()

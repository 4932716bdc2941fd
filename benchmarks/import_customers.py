"""Customer import throughput: a generated CSV into an embedded broker, beside a bare
``csv.reader`` loop over the same file (the reading ceiling).

    python benchmarks/import_customers.py [--customers 1000000]

Target: 1M customers in <= 60 s.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from _harness import environment, machine, markdown_table, nudge_env, say
from import_catalog import run_child

BARE_LOOP = """
import csv, sys
with open(sys.argv[1], newline="", encoding="utf-8") as fh:
    print(sum(1 for _ in csv.reader(fh)))
"""


def generate(path: Path, customers: int) -> None:
    consents = ("yes", "no", "subscribed", "pending", "")
    with path.open("w", encoding="utf-8", buffering=1 << 20) as out:
        out.write("ID,E-mail,Name,Surname,Phone,consent_email,consent_sms,orders_count,city\n")
        for i in range(customers):
            out.write(
                f"c{i}, User{i}@Example.COM ,Name{i},Surname{i},+4420{i % 10_000_000:07d},"
                f"{consents[i % 5]},{consents[(i + 2) % 5]},{i % 4},City{i % 97}\n"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=1_000_000)
    args = parser.parse_args()
    with environment() as env:
        path = env.scratch / "customers.csv"
        generate(path, args.customers)
        size_mb = path.stat().st_size / 1e6
        settings = env.settings("import-customers", partitions=4)
        child_env = {**os.environ, **nudge_env(settings)}
        bare_s, bare_rss, _ = run_child([sys.executable, "-c", BARE_LOOP, str(path)], child_env)
        argv = [
            sys.executable,
            "-m",
            "nudge",
            "import",
            "customers",
            str(path),
            "--no-progress",
            "--map",
            "customer_id=ID",
            "--map",
            "email=E-mail",
            "--map",
            "first_name=Name",
            "--map",
            "last_name=Surname",
            "--map",
            "phone=Phone",
            "--tag",
            "bench",
            "--rejects",
            str(env.scratch / "rejects.jsonl"),
        ]
        started = time.monotonic()
        import_s, import_rss, output = run_child(argv, child_env)
        say(output.strip(), f"({time.monotonic() - started:.1f}s)")
    n = args.customers
    rows = [
        ("nudge import customers", f"{import_s:.1f}", f"{n / import_s:,.0f}", f"{import_rss:.0f}"),
        ("bare csv.reader loop (peer)", f"{bare_s:.1f}", f"{n / bare_s:,.0f}", f"{bare_rss:.0f}"),
    ]
    say(f"\n{n:,} customers, {size_mb:.0f} MB CSV; {machine()}")
    say(markdown_table(["run", "seconds", "rows/s", "peak RSS MB"], rows))
    say("target: 1M customers <= 60 s")


if __name__ == "__main__":
    main()

"""Catalogue import throughput: a generated YML feed into an embedded broker and Redis,
beside a bare lxml iterparse loop over the same file (the parsing ceiling).

    python benchmarks/import_catalog.py [--offers 1000000]

Both run as child processes so that each peak RSS (from wait4) is its own.
Targets: 1M offers in <= 30 s, peak RSS <= 300 MB.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

from _harness import REPO, environment, machine, markdown_table, nudge_env, say

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


def run_child(argv: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    """(seconds, peak RSS in MB, stdout) of one child process."""
    started = time.monotonic()
    proc = subprocess.Popen(argv, env=env, cwd=REPO, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    output = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.monotonic() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise RuntimeError(f"{argv[:4]} exited {proc.returncode}: {output[-2000:]}")
    return seconds, usage.ru_maxrss / 1024, output


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--offers", type=int, default=1_000_000)
    args = parser.parse_args()
    with environment() as env:
        feed = env.scratch / "feed.xml"
        started = time.monotonic()
        generate(feed, args.offers)
        size_mb = feed.stat().st_size / 1e6
        say(
            f"generated {args.offers:,} offers ({size_mb:.0f} MB) "
            f"in {time.monotonic() - started:.1f}s"
        )
        settings = env.settings("import-catalog", partitions=4)
        child_env = {**os.environ, **nudge_env(settings)}
        bare_s, bare_rss, _ = run_child([sys.executable, "-c", BARE_LOOP, str(feed)], child_env)
        argv = [
            sys.executable,
            "-m",
            "nudge",
            "import",
            "catalog",
            str(feed),
            "--no-progress",
            "--rejects",
            str(env.scratch / "rejects.jsonl"),
        ]
        import_s, import_rss, output = run_child(argv, child_env)
        say(output.strip())
        again_s, again_rss, output = run_child(argv, child_env)
        say(output.strip())
    rows = [
        (
            "nudge import catalog (first import)",
            f"{import_s:.1f}",
            f"{args.offers / import_s:,.0f}",
            f"{import_rss:.0f}",
        ),
        (
            "nudge import catalog (unchanged re-import)",
            f"{again_s:.1f}",
            f"{args.offers / again_s:,.0f}",
            f"{again_rss:.0f}",
        ),
        (
            "bare lxml iterparse loop (peer)",
            f"{bare_s:.1f}",
            f"{args.offers / bare_s:,.0f}",
            f"{bare_rss:.0f}",
        ),
    ]
    say(f"\n{args.offers:,} offers, {size_mb:.0f} MB feed; {machine()}")
    say(markdown_table(["run", "seconds", "offers/s", "peak RSS MB"], rows))
    say("targets: 1M offers <= 30 s, peak RSS <= 300 MB")


if __name__ == "__main__":
    main()

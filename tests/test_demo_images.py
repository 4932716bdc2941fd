"""The demo shop's product pictures: valid PNGs, served over HTTP, shown in demo mail."""

from __future__ import annotations

import os
import re
import signal
import struct
import subprocess
import sys
import threading
import urllib.error
import urllib.request
import zlib
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

import pytest

from nudge.demo import demo_catalog
from nudge.demo.image_server import ImageServer
from nudge.demo.images import IMAGE_SIZE, initials, png, product_image
from tests.pipeline_support import wait_for


def _decode(data: bytes) -> tuple[int, int, list[bytes]]:
    """Width, height and RGB rows of a PNG as ``png`` writes it (one IDAT, filter 0)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    chunks: dict[bytes, bytes] = {}
    at = 8
    while at < len(data):
        (length,) = struct.unpack(">I", data[at : at + 4])
        kind, body = data[at + 4 : at + 8], data[at + 8 : at + 8 + length]
        (crc,) = struct.unpack(">I", data[at + 8 + length : at + 12 + length])
        assert crc == zlib.crc32(kind + body), f"bad CRC in {kind!r}"
        chunks[kind] = body
        at += 12 + length
    width, height, depth, colour_type = struct.unpack(">IIBB", chunks[b"IHDR"][:10])
    assert (depth, colour_type) == (8, 2) and b"IEND" in chunks
    raw = zlib.decompress(chunks[b"IDAT"])
    stride = 1 + 3 * width
    rows = [raw[y * stride : (y + 1) * stride] for y in range(height)]
    assert all(row[0] == 0 for row in rows)
    return width, height, [row[1:] for row in rows]


def test_png_round_trips_its_pixels() -> None:
    rows = [bytes([10, 20, 30, 200, 100, 0]), bytes([1, 2, 3, 4, 5, 6])]
    assert _decode(png(2, 2, rows)) == (2, 2, rows)
    with pytest.raises(ValueError):
        png(2, 2, rows[:1])


def test_initials_say_what_the_product_is() -> None:
    assert initials("Classic Chelsea Boots, Navy") == "CB"
    assert initials("Nordic Sneakers, Rust") == "S"
    assert initials("Mug") == "M"
    assert initials("") == "?"


def test_a_product_picture_shows_its_category_and_its_colour() -> None:
    catalog = demo_catalog()
    navy = next(p for p in catalog if p["title"].endswith(", Navy"))
    width, height, rows = _decode(product_image(navy))
    assert (width, height) == (IMAGE_SIZE, IMAGE_SIZE)
    x = width // 2 - 60  # inside the disc, left of the letters
    corner, centre_left = rows[2][6:9], rows[height // 2][3 * x : 3 * x + 3]
    assert min(corner) > 180, "a pale background"
    assert bytes(centre_left) == bytes((36, 52, 94)), "a disc in the title's colour"
    other = next(p for p in catalog if p["category_ids"][0] != navy["category_ids"][0])
    assert _decode(product_image(other))[2][2][6:9] != corner, "categories differ in colour"


def test_the_server_answers_each_catalogue_picture_and_nothing_else() -> None:
    with ImageServer(demo_catalog()) as server:
        catalog = demo_catalog(image_base=server.base_url)
        for product in (catalog[0], catalog[-1]):
            with urllib.request.urlopen(product["image_url"], timeout=10) as response:
                assert response.status == 200
                assert response.headers["Content-Type"] == "image/png"
                assert response.read() == product_image(product)
        for path in ("/img/p-nope.png", "/img/p-1001.jpg", "/"):
            with pytest.raises(urllib.error.HTTPError) as caught:
                urllib.request.urlopen(f"http://127.0.0.1:{server.port}{path}", timeout=10)
            assert caught.value.code == 404


@pytest.mark.e2e
def test_nudge_dev_demo_mail_shows_pictures_its_server_answers(
    redis_url: str, tmp_path: Path
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NUDGE_")}
    env.update(NUDGE_DATA_DIR=str(tmp_path / "data"), NUDGE_REDIS_URL=redis_url,
               NUDGE_REDIS_NAMESPACE=f"demo-img-{os.getpid()}")  # fmt: skip
    outbox = tmp_path / "outbox"
    proc = subprocess.Popen(
        [sys.executable, "-m", "nudge", "dev", "--demo", "--speed", "3", "--outbox", str(outbox)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stdout or ()), daemon=True)
    reader.start()
    try:
        wait_for(lambda: any(line.startswith("images ") for line in lines), "dev up", 90)

        def pictured_mail() -> list[str]:
            for path in sorted(outbox.glob("*.eml")):
                msg: Any = message_from_bytes(path.read_bytes(), policy=policy.default)
                body = msg.get_body(("html",))
                found = re.findall(r'<img src="([^"]+)"', body.get_content() if body else "")
                # the open pixel is the stream worker's, not a picture of the demo's
                sources = [src for src in found if "/o/" not in src]
                if sources:
                    return sources
            return []

        sources = wait_for(pictured_mail, "a demo email with pictures", 150)
        served = next(line for line in lines if line.startswith("images ")).split()[1]
        for source in sources:
            assert source.startswith(served), source
            with urllib.request.urlopen(source, timeout=10) as response:
                assert response.status == 200
                assert response.headers["Content-Type"].startswith("image/")
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    reader.join(5)
    assert "image server" in "".join(lines)

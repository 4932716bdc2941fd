"""Product pictures for the demo shop, drawn in pure Python as PNG.

Email clients show no SVG, and the demo must not depend on an imaging library, so a
picture is a few flat shapes written straight into a PNG: a soft background in the
colour of the product's category, a disc in the product's own colour (the one its
title names) and the initials of what it is ("Chelsea Boots": CB) on the disc.
"""

from __future__ import annotations

import colorsys
import functools
import struct
import zlib
from collections.abc import Mapping
from typing import Any

from nudge.demo.vocabulary import COLOURS, DEMO_CATEGORIES

#: Pixels per side: twice the largest size the built-in templates show (120 px), so
#: the picture stays sharp on a phone's dense screen.
IMAGE_SIZE = 240
CONTENT_TYPE = "image/png"

RGB = tuple[int, int, int]

# The colours product titles name (``vocabulary.COLOURS``), as a shop would photograph them.
_NAMED: dict[str, RGB] = {
    "Black": (38, 38, 42),
    "Navy": (36, 52, 94),
    "Olive": (107, 112, 58),
    "Sand": (214, 190, 150),
    "Charcoal": (70, 74, 80),
    "Rust": (170, 82, 45),
    "Ivory": (246, 240, 224),
    "Forest Green": (40, 92, 62),
}
assert set(_NAMED) == set(COLOURS), "every colour a title can name has its paint"

# Category backgrounds: evenly spread hues, pale enough for dark and light discs alike.
_HUES = {category: i / len(DEMO_CATEGORIES) for i, category in enumerate(DEMO_CATEGORIES)}

# A 5 x 7 capital alphabet, one string of five "#"/"." per row.
_GLYPHS: dict[str, tuple[str, ...]] = {
    "A": (".###.", "#...#", "#...#", "#####", "#...#", "#...#", "#...#"),
    "B": ("####.", "#...#", "#...#", "####.", "#...#", "#...#", "####."),
    "C": (".###.", "#...#", "#....", "#....", "#....", "#...#", ".###."),
    "D": ("####.", "#...#", "#...#", "#...#", "#...#", "#...#", "####."),
    "E": ("#####", "#....", "#....", "####.", "#....", "#....", "#####"),
    "F": ("#####", "#....", "#....", "####.", "#....", "#....", "#...."),
    "G": (".###.", "#...#", "#....", "#.###", "#...#", "#...#", ".###."),
    "H": ("#...#", "#...#", "#...#", "#####", "#...#", "#...#", "#...#"),
    "I": ("#####", "..#..", "..#..", "..#..", "..#..", "..#..", "#####"),
    "J": ("..###", "...#.", "...#.", "...#.", "...#.", "#..#.", ".##.."),
    "K": ("#...#", "#..#.", "#.#..", "##...", "#.#..", "#..#.", "#...#"),
    "L": ("#....", "#....", "#....", "#....", "#....", "#....", "#####"),
    "M": ("#...#", "##.##", "#.#.#", "#.#.#", "#...#", "#...#", "#...#"),
    "N": ("#...#", "##..#", "#.#.#", "#..##", "#...#", "#...#", "#...#"),
    "O": (".###.", "#...#", "#...#", "#...#", "#...#", "#...#", ".###."),
    "P": ("####.", "#...#", "#...#", "####.", "#....", "#....", "#...."),
    "Q": (".###.", "#...#", "#...#", "#...#", "#.#.#", "#..#.", ".##.#"),
    "R": ("####.", "#...#", "#...#", "####.", "#.#..", "#..#.", "#...#"),
    "S": (".###.", "#...#", "#....", ".###.", "....#", "#...#", ".###."),
    "T": ("#####", "..#..", "..#..", "..#..", "..#..", "..#..", "..#.."),
    "U": ("#...#", "#...#", "#...#", "#...#", "#...#", "#...#", ".###."),
    "V": ("#...#", "#...#", "#...#", "#...#", "#...#", ".#.#.", "..#.."),
    "W": ("#...#", "#...#", "#...#", "#.#.#", "#.#.#", "##.##", "#...#"),
    "X": ("#...#", "#...#", ".#.#.", "..#..", ".#.#.", "#...#", "#...#"),
    "Y": ("#...#", "#...#", ".#.#.", "..#..", "..#..", "..#..", "..#.."),
    "Z": ("#####", "....#", "...#.", "..#..", ".#...", "#....", "#####"),
}


def png(width: int, height: int, rows: list[bytes]) -> bytes:
    """An 8-bit RGB PNG from ``height`` rows of ``3 * width`` bytes each."""
    if len(rows) != height or any(len(row) != 3 * width for row in rows):
        raise ValueError("rows must be height rows of 3 * width bytes")

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data)
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8 bit, RGB, no interlace
    raw = b"".join(b"\x00" + row for row in rows)  # filter type 0 (none) on every row
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw, 9))
        + chunk(b"IEND", b"")
    )


def initials(title: str) -> str:
    """What a product is, in at most two letters: "Classic Chelsea Boots, Navy" -> "CB".

    The first word of a demo title is an adjective ("Classic"), the part after the comma
    its colour; both are left out when there is anything else to go by.
    """
    words = [w for w in title.split(",")[0].split() if w[:1].isalpha()]
    if len(words) > 1:
        words = words[1:]
    letters = "".join(w[0].upper() for w in words if w[0].upper() in _GLYPHS)
    return letters[:2] or "?"


def _colour_named_in(title: str) -> RGB | None:
    tail = title.rsplit(",", 1)[-1].strip() if "," in title else ""
    return _NAMED.get(tail)


def _hls(hue: float, lightness: float, saturation: float) -> RGB:
    r, g, b = colorsys.hls_to_rgb(hue, lightness, saturation)
    return round(r * 255), round(g * 255), round(b * 255)


def _luminance(colour: RGB) -> float:
    r, g, b = (c / 255 for c in colour)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def product_image(product: Mapping[str, Any]) -> bytes:
    """The PNG picture of a catalogue record (``title``, ``category_ids``)."""
    categories = [str(c) for c in product.get("category_ids") or ()]
    hue = _HUES.get(categories[0], 0.6) if categories else 0.6
    title = str(product.get("title") or product.get("product_id") or "")
    disc = _colour_named_in(title) or _hls(hue, 0.45, 0.35)
    return _draw(_hls(hue, 0.9, 0.45), disc, initials(title))


@functools.lru_cache(maxsize=256)
def _draw(background: RGB, disc: RGB, letters: str) -> bytes:
    size = IMAGE_SIZE
    centre, radius = size / 2, size * 0.31
    ink: RGB = (255, 255, 255) if _luminance(disc) < 0.6 else (51, 51, 51)
    # An ivory disc would vanish into a pale background: a thin darker ring outlines it.
    ring = _luminance(disc) > 0.8
    # The letters: a grid of square dots, centred on the disc.
    dot, gap = 9, 9
    text_w = len(letters) * 5 * dot + (len(letters) - 1) * gap
    left, top = round(centre - text_w / 2), round(centre - 7 * dot / 2)
    lit = bytearray(size * size)  # 1 where a letter's dot covers the pixel
    for n, letter in enumerate(letters):
        x0 = left + n * (5 * dot + gap)
        for gy, line in enumerate(_GLYPHS.get(letter, _GLYPHS["O"])):
            for gx, mark in enumerate(line):
                if mark != "#":
                    continue
                for y in range(top + gy * dot, top + (gy + 1) * dot):
                    start = y * size + x0 + gx * dot
                    lit[start : start + dot] = b"\x01" * dot

    rows = []
    for y in range(size):
        row = bytearray()
        for x in range(size):
            dist = ((x + 0.5 - centre) ** 2 + (y + 0.5 - centre) ** 2) ** 0.5
            cover = min(max(radius + 0.5 - dist, 0.0), 1.0)  # anti-aliased edge
            colour = _mix(background, disc, cover)
            if ring and radius - 2.5 < dist < radius + 1.5:
                colour = _mix(colour, (160, 150, 130), 0.6)
            if lit[y * size + x]:
                colour = ink
            row += bytes(colour)
        rows.append(bytes(row))
    return png(size, size, rows)


def _mix(a: RGB, b: RGB, t: float) -> RGB:
    return (
        round(a[0] + (b[0] - a[0]) * t),
        round(a[1] + (b[1] - a[1]) * t),
        round(a[2] + (b[2] - a[2]) * t),
    )

"""Rows of a CSV or JSONL file as dicts, each with the line it starts on.

CSV: the first row is the header; quoted fields may span lines (the row keeps the line
it starts on). JSONL: one object per line; blank lines are skipped. Column mapping
(``--map dest=src``) renames source columns to the importer's field names.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from nudge.imports.errors import InputFileError, RowError
from nudge.imports.progress import CountingReader


@dataclass(slots=True)
class Row:
    line: int
    data: dict[str, Any]


@dataclass(slots=True)
class BadRow:
    line: int
    reason: str


def guess_format(path: Path, given: str | None) -> str:
    if given:
        return given
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return "csv"
    if suffix in (".jsonl", ".ndjson", ".json"):
        return "jsonl"
    raise InputFileError(f"cannot tell the format of {path.name}: pass --format csv|jsonl")


def parse_mapping(pairs: tuple[str, ...] | list[str], allowed: frozenset[str]) -> dict[str, str]:
    """``["email=E-mail", ...]`` as ``{"email": "E-mail"}``; unknown targets refused."""
    mapping: dict[str, str] = {}
    for pair in pairs:
        dest, sep, src = pair.partition("=")
        dest, src = dest.strip(), src.strip()
        if not sep or not dest or not src:
            raise InputFileError(f"bad --map {pair!r}: expected dest=source_column")
        if dest not in allowed:
            raise InputFileError(f"bad --map {pair!r}: {dest!r} is not one of {sorted(allowed)}")
        mapping[dest] = src
    return mapping


def read_rows(stream: CountingReader, fmt: str) -> Iterator[Row | BadRow]:
    if fmt == "csv":
        return _csv_rows(stream)
    if fmt == "jsonl":
        return _jsonl_rows(stream)
    raise InputFileError(f"unknown format {fmt!r}")


def _csv_rows(stream: CountingReader) -> Iterator[Row | BadRow]:
    buffered = io.BufferedReader(stream, 1 << 20)
    # utf-8-sig: spreadsheet exports start with a byte-order mark more often than not.
    text = io.TextIOWrapper(buffered, encoding="utf-8-sig", errors="replace", newline="")
    reader = csv.reader(text)
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration:
        return
    except csv.Error as exc:
        raise InputFileError(f"not a CSV file: {exc}") from None
    width = len(header)
    last_line = reader.line_num
    while True:
        try:
            values = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield BadRow(last_line + 1, f"bad CSV: {exc}")
            last_line = reader.line_num
            continue
        line, last_line = last_line + 1, reader.line_num
        if not values or (len(values) == 1 and not values[0].strip()):
            continue
        if len(values) > width:
            yield BadRow(line, f"{len(values)} fields, header has {width}")
            continue
        yield Row(line, dict(zip(header, values, strict=False)))


def _jsonl_rows(stream: CountingReader) -> Iterator[Row | BadRow]:
    buffered = io.BufferedReader(stream, 1 << 20)
    for line, raw in enumerate(buffered, 1):
        if not raw.strip():
            continue
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            yield BadRow(line, f"malformed JSON: {exc}"[:200])
            continue
        if type(data) is not dict:
            yield BadRow(line, "not a JSON object")
            continue
        yield Row(line, data)


def pick(data: Mapping[str, Any], mapping: Mapping[str, str], field: str) -> Any:
    """The value of ``field``: its mapped column, else a column of the same name.
    Empty strings count as absent (CSV cannot tell the two apart)."""
    value = data.get(mapping.get(field, field))
    if isinstance(value, str):
        value = value.strip()
        return value or None
    return value


def required_text(value: Any, name: str) -> str:
    if value is None or value == "":
        raise RowError(f"missing {name}")
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise RowError(f"bad {name} {value!r:.60}")
    return str(value).strip()

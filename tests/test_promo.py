"""Promo code pools on a real Redis: one code per message, the same on every replay,
never one code to two messages; and the `nudge promo` commands."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from redis.asyncio import Redis

from nudge.cli.main import main
from nudge.errors import NudgeError
from nudge.promo import PoolEmpty, PromoCode, PromoPools, generate_codes, read_codes


@pytest.fixture
async def pools(redis_url: str) -> AsyncIterator[PromoPools]:
    client = Redis.from_url(redis_url)
    namespace = f"test-promo-{uuid.uuid4().hex[:8]}"
    yield PromoPools(client, namespace)
    keys = [key async for key in client.scan_iter(f"{namespace}:*")]
    if keys:
        await client.delete(*keys)
    await client.aclose()


async def test_a_message_gets_one_code_the_same_on_every_replay(pools: PromoPools) -> None:
    assert await pools.add("WELCOME", ["A1B2C3", "D4E5F6"]) == (2, 0)
    first = await pools.claim("WELCOME", "welcome:c1:1:1", 14 * 86_400_000, now_ms=1_000)
    again = await pools.claim("WELCOME", "welcome:c1:1:1", 14 * 86_400_000, now_ms=9_999)
    assert first == again and first.expires_at == 1_000 + 14 * 86_400_000
    other = await pools.claim("WELCOME", "welcome:c2:1:1", None, now_ms=1_000)
    assert other.code != first.code and other.expires_at is None
    with pytest.raises(PoolEmpty, match="'WELCOME' has no codes left"):
        await pools.claim("WELCOME", "welcome:c3:1:1", None, now_ms=1_000)
    assert await pools.claim("WELCOME", "welcome:c1:1:1", None, 1) == first, "still its own"


async def test_concurrent_claims_never_share_a_code(pools: PromoPools) -> None:
    await pools.add("P", [f"CODE{i:03d}" for i in range(50)])
    slots = asyncio.Semaphore(10)  # as many at once as a client's connections allow

    async def claim(message_id: str) -> object:
        async with slots:
            return await pools.claim("P", message_id, None, 0)

    claims = await asyncio.gather(
        *(claim(f"m{i % 60}") for i in range(120)), return_exceptions=True
    )
    assert all(not isinstance(c, BaseException) or isinstance(c, PoolEmpty) for c in claims)
    given: dict[str, set[str]] = {}
    for i, c in enumerate(claims):
        if isinstance(c, PromoCode):
            given.setdefault(f"m{i % 60}", set()).add(c.code)
    assert all(len(codes) == 1 for codes in given.values()), "one code per message"
    codes = [code for codes in given.values() for code in codes]
    assert len(codes) == len(set(codes)) == 50, "no code twice, the pool used up"


async def test_a_code_once_loaded_never_goes_back_into_the_pool(pools: PromoPools) -> None:
    await pools.add("P", ["AAA111", "BBB222"])
    given = await pools.claim("P", "m1", None, 0)
    assert await pools.add("P", ["AAA111", "BBB222", "CCC333"]) == (1, 2)
    assert await pools.available("P") == 2
    assert given.code not in {(await pools.claim("P", m, None, 0)).code for m in ("m2", "m3")}


def test_codes_are_read_with_line_numbers_for_the_bad_ones(tmp_path: Path) -> None:
    path = tmp_path / "codes.csv"
    path.write_text('code,note\nAB12CD,x\n\n"EF34GH"\nno way\n<script>\n', encoding="utf-8")
    codes, problems = read_codes(path)
    assert codes == ["AB12CD", "EF34GH"]
    assert problems == [
        "line 5: 'no way' is not a code (3-64 letters, digits, -, _)",
        "line 6: '<script>' is not a code (3-64 letters, digits, -, _)",
    ]


def test_generated_codes_are_distinct_and_unambiguous() -> None:
    codes = generate_codes(500, prefix="WELCOME-", length=6)
    assert len(set(codes)) == 500
    assert all(c.startswith("WELCOME-") and len(c) == 14 for c in codes)
    assert not any(ch in c[8:] for c in codes for ch in "01IO")
    with pytest.raises(NudgeError):
        generate_codes(0)


@pytest.fixture
def cli_redis(redis_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """`nudge` commands on the test Redis, in a namespace of their own, cleaned after."""
    namespace = f"test-promo-cli-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("NUDGE_REDIS_URL", redis_url)
    monkeypatch.setenv("NUDGE_REDIS_NAMESPACE", namespace)
    yield
    asyncio.run(_cleanup(redis_url, namespace))


@pytest.mark.usefixtures("cli_redis")
def test_the_promo_commands(tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "codes.txt"
    result = runner.invoke(
        main,
        ["promo", "generate", "WELCOME10", "--count", "25", "--prefix", "W-", "--out", str(out)],
    )
    assert result.exit_code == 0, result.output
    assert "WELCOME10: 25 codes added, 0 already known, 25 available" in result.output
    assert len(out.read_text().split()) == 25
    result = runner.invoke(main, ["promo", "import", "WELCOME10", str(out)])
    assert "0 codes added, 25 already known, 25 available" in result.output
    bad = tmp_path / "bad.txt"
    bad.write_text("GOOD01\nbad code\n", encoding="utf-8")
    result = runner.invoke(main, ["promo", "import", "WELCOME10", str(bad)])
    assert result.exit_code != 0 and "line 2: 'bad code' is not a code" in result.output
    result = runner.invoke(main, ["promo", "import", "no pool!", str(out)])
    assert result.exit_code != 0 and "bad pool name 'no pool!'" in result.output


async def _cleanup(redis_url: str, namespace: str) -> None:
    client = Redis.from_url(redis_url)
    keys = [key async for key in client.scan_iter(f"{namespace}:*")]
    if keys:
        await client.delete(*keys)
    await client.aclose()


@pytest.mark.usefixtures("cli_redis")
def test_triggers_apply_refuses_a_flow_drawing_from_an_unknown_pool(tmp_path: Path) -> None:
    path = tmp_path / "welcome.yaml"
    path.write_text(
        "id: welcome\ntrigger: {event: customer_created}\n"
        "steps:\n  - send: {promo: {pool: NOPE10}}\n",
        encoding="utf-8",
    )
    result = CliRunner().invoke(main, ["triggers", "apply", "--check", str(path)])
    assert result.exit_code != 0
    assert (
        f"{path}: welcome.steps[0].send.promo: unknown promo pool 'NOPE10' "
        "(nudge promo import / generate NOPE10 first)"
    ) in result.output
    codes = tmp_path / "codes.txt"
    codes.write_text("NOPE-0001\n", encoding="utf-8")
    assert CliRunner().invoke(main, ["promo", "import", "NOPE10", str(codes)]).exit_code == 0
    result = CliRunner().invoke(main, ["triggers", "apply", "--check", str(path)])
    assert result.exit_code == 0 and "valid welcome (flow, enabled)" in result.output

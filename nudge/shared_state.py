"""What stream and delivery workers share through Redis: profiles, consent, catalogue.

The Faust tables stay the source of truth for per-customer detection state; Redis
holds the views the delivery worker needs *at send time* (consent above all), plus
the catalogue, which is keyed by product and so is not co-partitioned with customers.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Mapping
from typing import Any

import orjson
from redis.asyncio import Redis

#: Products remembered per search word, the best sellers after it.
CONVERSIONS_KEPT = 500


class SharedState:
    def __init__(self, redis: Redis, namespace: str = "nudge") -> None:
        self.redis = redis
        self.ns = namespace

    def key(self, *parts: str) -> str:
        return ":".join((self.ns, *parts))

    # -- customers -------------------------------------------------------
    def profile_key(self, customer_id: str) -> str:
        """The key layout, public so a caller can batch reads in its own pipeline."""
        return self.key("profile", customer_id)

    def consent_key(self, customer_id: str) -> str:
        return self.key("consent", customer_id)

    @staticmethod
    def decode_profile(raw: bytes | str | None) -> dict[str, Any] | None:
        return orjson.loads(raw) if raw else None

    async def put_profile(self, customer_id: str, profile: Mapping[str, Any]) -> None:
        await self.redis.set(self.profile_key(customer_id), orjson.dumps(dict(profile)))

    async def get_profile(self, customer_id: str) -> dict[str, Any] | None:
        return self.decode_profile(await self.redis.get(self.profile_key(customer_id)))

    async def set_consent(self, customer_id: str, channel: str, status: str) -> None:
        await self.redis.hset(self.consent_key(customer_id), channel, status)

    async def put_customers(
        self, views: Iterable[tuple[str, Mapping[str, Any], Mapping[str, str]]]
    ) -> None:
        """Profiles and consents of many customers, ``(id, profile, consent)``, in one
        round trip."""
        pipe = self.redis.pipeline(transaction=False)
        for customer_id, profile, consents in views:
            pipe.set(self.profile_key(customer_id), orjson.dumps(dict(profile)))
            if consents:
                mapping: Any = dict(consents)
                pipe.hset(self.consent_key(customer_id), mapping=mapping)
        await pipe.execute()

    async def get_consent(self, customer_id: str, channel: str) -> str | None:
        raw = await self.redis.hget(self.consent_key(customer_id), channel)
        return raw.decode() if isinstance(raw, bytes) else raw

    # -- catalogue -------------------------------------------------------
    async def put_products(self, products: Iterable[Mapping[str, Any]]) -> None:
        """Upsert catalogue records; the catalogue's version moves with every change, so
        that readers keeping a derived index (the search) know to rebuild it."""
        mapping = {p["product_id"]: orjson.dumps(dict(p)) for p in products}
        if mapping:
            pipe = self.redis.pipeline(transaction=False)
            pipe.hset(self.key("catalog"), mapping=mapping)
            pipe.incr(self.key("catalog-version"))
            await pipe.execute()

    async def catalog_version(self) -> int:
        return int(await self.redis.get(self.key("catalog-version")) or 0)

    async def all_products(self, page: int = 5000) -> AsyncIterator[dict[str, Any]]:
        """Every catalogue record, a page of the hash at a time (HSCAN: no long block)."""
        async for _, raw in self.redis.hscan_iter(self.key("catalog"), count=page):
            yield orjson.loads(raw)

    async def get_products(self, product_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        ids = list(dict.fromkeys(product_ids))
        if not ids:
            return {}
        raws = await self.redis.hmget(self.key("catalog"), ids)
        return {pid: orjson.loads(raw) for pid, raw in zip(ids, raws, strict=True) if raw}

    async def repurchase_intervals(self, product_ids: Iterable[str]) -> dict[str, list[int]]:
        """The latest repurchase intervals (ms) customers showed, per product."""
        ids = list(dict.fromkeys(product_ids))
        if not ids:
            return {}
        pipe = self.redis.pipeline(transaction=False)
        for pid in ids:
            pipe.lrange(self.key("repurchase", pid), 0, -1)
        rows = await pipe.execute()
        return {pid: [int(v) for v in row] for pid, row in zip(ids, rows, strict=True) if row}

    async def record_repurchases(self, intervals: Mapping[str, list[int]], keep: int = 101) -> None:
        """Add intervals to each product's latest ``keep`` (their median is the fallback
        of customers who never bought the product twice)."""
        if intervals:
            pipe = self.redis.pipeline(transaction=False)
            for pid, values in intervals.items():
                pipe.lpush(self.key("repurchase", pid), *values)
                pipe.ltrim(self.key("repurchase", pid), 0, keep - 1)
            await pipe.execute()

    async def bump_popularity(
        self,
        weights: Mapping[str, float],
        conversions: Mapping[tuple[str, str], float] | None = None,
    ) -> None:
        """Add to products' popularity and, with ``conversions``, to what was bought after
        searches per word, ``{(stem, product id): count}``, in one round trip. Each
        word keeps its ``CONVERSIONS_KEPT`` best products."""
        if not weights and not conversions:
            return
        pipe = self.redis.pipeline(transaction=False)
        for pid, weight in weights.items():
            pipe.zincrby(self.key("popular"), weight, pid)
        terms = set()
        for (term, pid), count in (conversions or {}).items():
            pipe.zincrby(self.key("searched", term), count, pid)
            terms.add(term)
        for term in terms:
            pipe.zremrangebyrank(self.key("searched", term), 0, -CONVERSIONS_KEPT - 1)
        await pipe.execute()

    async def search_conversions(
        self, terms: Iterable[str], per_term: int = 50
    ) -> dict[str, float]:
        """What shoppers bought after searching these words: product id -> count, summed
        over the words."""
        unique = list(dict.fromkeys(terms))
        if not unique:
            return {}
        pipe = self.redis.pipeline(transaction=False)
        for term in unique:
            pipe.zrevrange(self.key("searched", term), 0, per_term - 1, withscores=True)
        bought: dict[str, float] = {}
        for rows in await pipe.execute():
            for pid, score in rows:
                name = pid.decode() if isinstance(pid, bytes) else str(pid)
                bought[name] = bought.get(name, 0.0) + float(score)
        return bought

    async def popular(
        self,
        count: int,
        exclude: Iterable[str] = (),
        category: str | None = None,
        max_scanned: int = 2000,
    ) -> list[dict[str, Any]]:
        """The most popular available catalogue products, best first; with ``category``,
        only products in it or its subcategories, among the ``max_scanned`` best sellers."""
        skip = set(exclude)
        result: list[dict[str, Any]] = []
        # a category's products are a fraction of the best sellers: read bigger pages
        start, page = 0, max(count * 3, 200 if category else 20)
        while len(result) < count and (category is None or start < max_scanned):
            decoded = await self.popular_ids(start, page)
            if not decoded:
                break
            products = await self.get_products(p for p in decoded if p not in skip)
            picked = pick_popular(
                (products[p] for p in decoded if p in products), count - len(result), skip, category
            )
            result += picked
            skip.update(p["product_id"] for p in picked)
            start += page
        return result

    async def popular_ids(self, start: int, count: int) -> list[str]:
        """Product ids ``start .. start + count - 1`` of the popularity ranking."""
        ids = await self.redis.zrevrange(self.key("popular"), start, start + count - 1)
        return [i.decode() if isinstance(i, bytes) else str(i) for i in ids]


def pick_popular(
    ranked: Iterable[Mapping[str, Any]],
    count: int,
    exclude: Iterable[str] = (),
    category: str | None = None,
) -> list[dict[str, Any]]:
    """The first ``count`` of ``ranked`` products (best first) that are available, not
    excluded, and in ``category`` (or a subcategory of it) when one is given."""
    skip = set(exclude)
    result: list[dict[str, Any]] = []
    for product in ranked:
        if len(result) >= count:
            break
        pid = str(product.get("product_id"))
        if not product.get("available", True) or pid in skip:
            continue
        if category is not None and category not in product.get("category_ids", ()):
            continue
        result.append(dict(product))
        skip.add(pid)
    return result

"""Wiring for production and ``nudge delivery``: Redis, SMTP pool, worker, web endpoints."""

from __future__ import annotations

import asyncio
import logging
import os

import redis.asyncio as aioredis
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from nudge.broker_watch import BrokerWatch
from nudge.clock import SystemClock
from nudge.delivery.dkim import DkimSigner
from nudge.delivery.pipeline import NoTriggers, TriggerLookup
from nudge.delivery.smtp import SmtpPool
from nudge.delivery.worker import DeliveryWorker
from nudge.errors import ConfigError
from nudge.recommender import PopularRecommender, Recommender
from nudge.recommender.hot_swap import ModelAnnouncements, SwappableRecommender
from nudge.recommender.model import ItemKNN
from nudge.recommender.service import ModelRecommender
from nudge.settings import Settings
from nudge.shared_state import SharedState
from nudge.topic_tail import TopicTail
from nudge.waits import Waits

log = logging.getLogger(__name__)

#: How long delivery reuses the best-seller ranking: the stream workers rewrite it about
#: once a second, and reading it for every email cost two Redis round trips each.
POPULAR_CACHE_S = 1.0


def make_web_app(worker: DeliveryWorker, waits: Waits | None = None) -> web.Application:
    """``/health``: 200 "ok" while consuming; 503 "starting", or "waiting" with what
    for (a lost broker); ``/metrics`` for Prometheus."""
    waits = waits if waits is not None else Waits()

    async def health(_: web.Request) -> web.Response:
        status = "starting" if not worker.running else "waiting" if waits else "ok"
        body = {"status": status, "waiting_for": waits.describe()}
        return web.json_response(body, status=200 if status == "ok" else 503)

    async def metrics(_: web.Request) -> web.Response:
        body = generate_latest(worker.metrics.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    app = web.Application()
    app.router.add_get("/health", health)
    app.router.add_get("/metrics", metrics)
    return app


def make_recommender(settings: Settings, shared: SharedState) -> SwappableRecommender:
    """The model from ``NUDGE_MODEL_DIR`` when set (a bad one stops start-up with a
    clear error), else the catalogue's most popular products; either is replaced when
    a model is published on ``model-updates``."""
    popular = PopularRecommender(shared, cache_s=POPULAR_CACHE_S)
    if settings.model_dir is None:
        return SwappableRecommender(popular)
    model = ItemKNN.load(settings.model_dir)
    log.info("recommendations from model %s", settings.model_dir)
    return SwappableRecommender(model_recommender(model, shared), model.model_version)


def model_recommender(model: ItemKNN, shared: SharedState) -> Recommender:
    return ModelRecommender(
        model,
        products_of=shared.get_products,
        fallback=PopularRecommender(shared, cache_s=POPULAR_CACHE_S),
    )


async def run_delivery(
    settings: Settings,
    *,
    stop: asyncio.Event | None = None,
    triggers: TriggerLookup | None = None,
) -> None:
    """Run the delivery worker and its /health and /metrics server until ``stop`` is set.

    ``triggers`` is anything with ``get(trigger_id)`` returning the flow, with ``enabled``, (the
    ``TriggerRegistry`` fed from ``trigger-config``); without it, built-in templates.
    """
    stop = stop or asyncio.Event()
    if "NUDGE_SEND_MAX_ATTEMPTS" in os.environ:
        # Renamed, not silently dropped: a retry count became a retry window.
        log.warning(
            "NUDGE_SEND_MAX_ATTEMPTS is no longer read: transient failures are retried "
            "for NUDGE_SEND_RETRY_FOR (now %ss)",
            settings.send_retry_for,
        )
    if not settings.redis_url:
        raise ConfigError("NUDGE_REDIS_URL is not set: delivery shares the workers' Redis")
    # Read once, here: a partial or broken setup stops start-up (one line, ConfigError).
    dkim = DkimSigner.from_settings(settings)
    if dkim is not None and not dkim.aligned_with(settings.mail_from):
        log.warning(
            "NUDGE_DKIM_DOMAIN=%s is neither the domain of NUDGE_MAIL_FROM nor a parent of "
            "it: signatures verify, but DMARC does not count them as aligned",
            settings.dkim_domain,
        )
    redis = aioredis.from_url(settings.redis_url)
    transport = SmtpPool(settings)
    problem = await transport.probe()
    if problem is not None:
        log.warning(
            "NUDGE_SMTP_HOST=%s NUDGE_SMTP_PORT=%s: the SMTP server did not accept a "
            "connection (%s); messages wait and are retried",
            settings.smtp_host,
            settings.smtp_port,
            problem,
        )
    shared = SharedState(redis, settings.redis_namespace)
    recommender = make_recommender(settings, shared)
    models = ModelAnnouncements(recommender, lambda model: model_recommender(model, shared))
    model_feed = TopicTail(settings.kafka_bootstrap, settings.topic("model-updates"), models.apply)
    worker = DeliveryWorker(
        settings,
        redis,
        transport,
        shared,
        triggers or NoTriggers(),
        SystemClock(),
        registry=CollectorRegistry(),
        recommender=recommender,
        dkim=dkim,
    )
    waits = Waits()
    broker = BrokerWatch.of(settings.kafka_bootstrap, waits)
    runner = web.AppRunner(make_web_app(worker, waits), access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, settings.web_host, settings.delivery_web_port)
        await site.start()
        helpers = [
            asyncio.create_task(model_feed.run(stop), name="model-updates"),
            asyncio.create_task(broker.run(), name="broker-watch"),
        ]
        try:
            await worker.run(stop)
        finally:
            for helper in helpers:
                helper.cancel()
            await asyncio.gather(*helpers, return_exceptions=True)
    finally:
        await runner.cleanup()
        await transport.close()
        await redis.aclose()

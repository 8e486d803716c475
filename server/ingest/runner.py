"""``vitrine server ingest``: the fact consumer and the outbox publisher in one process.

The ingest runs as its own process, beside ``vitrine server run`` (the HTTP
API): the API stays stateless and scales behind a load balancer, while the
consumer is partitioned by store (docs/engine.md, "Running it").
"""

from __future__ import annotations

import logging
import threading
from datetime import timedelta

from sqlalchemy.engine import Engine

from server.db import make_engine, ping
from server.engine import EngineSettings
from server.ingest.consumer import FactConsumer
from server.ingest.service import IngestConfig
from server.ingest.settings import IngestSettings
from server.outbox import OutboxPublisher
from server.webhooks.worker import WebhookWorker
from vitrine.runtime.mqtt import parse_mqtt_url
from vitrine.runtime.ops import OpsServer, Readiness

__all__ = ["IngestProcess", "run"]

log = logging.getLogger(__name__)


class IngestProcess:
    """The consumer, the outbox publisher and the webhook worker sharing one engine."""

    def __init__(self, settings: IngestSettings, engine: Engine) -> None:
        target = parse_mqtt_url(settings.mqtt_url)
        config = IngestConfig(
            footfall_key=settings.secret_key.get_secret_value().encode(),
            engine=EngineSettings(view_window=timedelta(days=settings.view_window_days)),
        )
        self.publisher = OutboxPublisher(
            engine, target, client_id=f"{settings.ingest_client_id}-outbox"
        )
        self.webhooks = WebhookWorker(engine)
        self.consumer = FactConsumer(
            engine,
            target,
            config,
            client_id=settings.ingest_client_id,
            workers=settings.ingest_workers,
            batch_max=settings.ingest_batch_max,
            on_committed=self._committed,
        )

    def _committed(self) -> None:
        self.publisher.wake()
        self.webhooks.wake()

    def start(self) -> None:
        self.publisher.start()
        self.webhooks.start()
        self.consumer.start()

    def stop(self) -> None:
        self.consumer.stop()
        self.webhooks.stop()
        self.publisher.stop()


def run(settings: IngestSettings, stop: threading.Event) -> None:
    """Run until ``stop`` is set (SIGTERM/SIGINT in the CLI)."""
    settings.validate_for_run()
    engine = make_engine(settings.database_url)
    readiness = Readiness()
    readiness.add("database", lambda: ping(engine))
    process = IngestProcess(settings, engine)
    readiness.add("mqtt", process.consumer.subscribed.is_set)
    ops = OpsServer(settings.ops_host, settings.ops_port, readiness)
    ops.start()
    process.start()
    log.info("ingest started")
    try:
        stop.wait()
    finally:
        process.stop()
        ops.stop()
        engine.dispose()
        log.info("ingest stopped")

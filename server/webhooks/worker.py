"""The delivery worker: POST due deliveries, signed; retry with exponential backoff; give up.

A thread of ``vitrine server ingest`` (docs/engine.md, "Running it"). Each round
reads pending deliveries whose ``next_attempt_at`` has come, POSTs each body
with the ``Vitrine-*`` headers (:mod:`server.webhooks.signing`) and records the
outcome in its own short transaction:

- a 2xx answer → ``delivered``;
- anything else (status, timeout, refused connection) → ``attempts + 1`` and
  ``next_attempt_at = now + min(max_delay, base_delay * 2**(attempts - 1))``,
  or ``dead`` once ``max_attempts`` is reached.

Delivery is at least once: a crash between the receiver's 2xx and our commit
sends again, with the same ``Vitrine-Event-Id`` for the receiver to drop.
Run one worker per database (rows are not claimed; two workers could both
send a row — still at-least-once, just more duplicates).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from server.models import DeliveryStatus, WebhookDelivery, WebhookEndpoint
from server.webhooks.signing import sign

__all__ = ["WebhookSettings", "WebhookWorker", "backoff"]

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]


@dataclass(frozen=True, slots=True)
class WebhookSettings:
    #: First retry after 10 s: a receiver restarting (a deploy) is usually back by then.
    base_delay: timedelta = timedelta(seconds=10)
    #: Backoff cap of 1 h: a receiver down for a day is still tried every hour.
    max_delay: timedelta = timedelta(hours=1)
    #: 12 attempts span ~10 h with the delays above (10 s … 1 h): a working day's outage;
    #: past it the delivery is ``dead`` and visible in the admin API.
    max_attempts: int = 12
    #: Per request: a CRM that takes longer is treated as down, not waited on.
    timeout_s: float = 10.0
    #: Deliveries per round, oldest first: bounds one round's time and memory.
    batch: int = 100
    #: Idle poll: deliveries committed by other processes are found within 1 s.
    poll_interval_s: float = 1.0


def backoff(attempts: int, settings: WebhookSettings) -> timedelta:
    """The wait after the ``attempts``-th failed attempt (1-based), capped."""
    exponent = min(max(attempts - 1, 0), 30)  # 2**30 × any base is past any cap
    delay: timedelta = settings.base_delay * (2**exponent)
    return min(settings.max_delay, delay)


class WebhookWorker:
    """Drains due deliveries; :meth:`run_once` is one round (tests drive it with a clock)."""

    def __init__(
        self,
        engine: Engine,
        settings: WebhookSettings | None = None,
        *,
        client: httpx.Client | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.engine = engine
        self.settings = settings or WebhookSettings()
        self.client = client or httpx.Client(timeout=self.settings.timeout_s)
        self.clock = clock or (lambda: datetime.now(UTC))
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def wake(self) -> None:
        """New deliveries may be due (called after a commit)."""
        self._wake.set()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="webhooks", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=self.settings.timeout_s + 5)
        self.client.close()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                sent = self.run_once()
            except Exception:  # a database hiccup must not end the thread
                log.exception("webhook round failed")
                sent = 0
            if sent == 0:
                self._wake.wait(self.settings.poll_interval_s)
                self._wake.clear()

    def run_once(self) -> int:
        """Attempt every due delivery once; returns how many were attempted."""
        now = self.clock()
        with Session(self.engine, expire_on_commit=False) as session:
            due = session.exec(
                select(WebhookDelivery, WebhookEndpoint)
                .join(WebhookEndpoint, col(WebhookEndpoint.id) == col(WebhookDelivery.endpoint_id))
                .where(WebhookDelivery.status == DeliveryStatus.PENDING)
                .where(col(WebhookDelivery.next_attempt_at) <= now)
                .order_by(col(WebhookDelivery.next_attempt_at), col(WebhookDelivery.created_at))
                .limit(self.settings.batch)
            ).all()
        for delivery, endpoint in due:
            if self._stop.is_set():
                break
            self._attempt(delivery, endpoint)
        return len(due)

    def _attempt(self, delivery: WebhookDelivery, endpoint: WebhookEndpoint) -> None:
        at = self.clock()
        timestamp = int(at.timestamp())
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "vitrine-webhooks/1",
            "Vitrine-Event-Id": delivery.event_id,
            "Vitrine-Timestamp": str(timestamp),
            "Vitrine-Signature": sign(endpoint.secret, timestamp, delivery.body),
        }
        status: int | None = None
        error: str | None = None
        try:
            response = self.client.post(endpoint.url, content=delivery.body, headers=headers)
            status = response.status_code
            if not 200 <= status < 300:
                error = f"HTTP {status}"
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"[:500]
        with Session(self.engine) as session:
            row = session.get(WebhookDelivery, delivery.id)
            if row is None or row.status != DeliveryStatus.PENDING:
                return  # erased or delivered meanwhile
            row.attempts += 1
            row.last_status = status
            row.last_error = error
            if error is None:
                row.status = DeliveryStatus.DELIVERED
                row.delivered_at = at
            elif row.attempts >= self.settings.max_attempts:
                row.status = DeliveryStatus.DEAD
                log.warning(
                    "webhook delivery dead",
                    extra={"endpoint": endpoint.id, "attempts": row.attempts, "error": error},
                )
            else:
                row.next_attempt_at = at + backoff(row.attempts, self.settings)
            session.add(row)
            session.commit()

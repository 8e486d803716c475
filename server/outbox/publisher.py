"""Draining the outbox to the broker: in ``seq`` order, QoS 1, marked after PUBACK.

Delivery is *at least once, in order per stream* (QUALITY.md, "chain of
custody"): a row is marked published only once the broker acknowledged it, so a
crash between PUBACK and the mark re-sends it; clients drop the duplicate by
``event_id``/``seq``. While the broker is unreachable the publisher waits for
the next CONNACK and the rows wait in the table.

One publisher per database: rows are read in ``seq`` order without locking;
running several would publish some rows twice (still at least once), which a
``SELECT … FOR UPDATE SKIP LOCKED`` claim would avoid when that is needed.
"""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime
from typing import Any

import paho.mqtt.client as mqtt
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session

from server.models import OutboxMessage
from vitrine.runtime.mqtt import MqttTarget, make_client

__all__ = ["OutboxPublisher"]

log = logging.getLogger(__name__)

#: Longest wait between reconnection attempts (paho doubles from 1 s up to this):
#: a restarted broker is found again within seconds.
RECONNECT_MAX_S = 5

#: Rows per drain: enough to amortise the query at a burst of arrivals, few
#: enough that one slow PUBACK wait holds back little.
BATCH = 200
#: How long to wait for the broker's PUBACKs of one batch before giving up on
#: it for now (the rows stay unpublished and are retried): well above a
#: loopback or LAN round trip, short enough to notice a dead connection.
PUBACK_TIMEOUT_S = 5.0
#: Idle poll: rows committed by another process (an API worker) are found
#: within this time even if nobody calls :meth:`OutboxPublisher.wake`.
POLL_INTERVAL_S = 0.5


class OutboxPublisher:
    """Owns one MQTT client and one thread; :meth:`start` / :meth:`stop`."""

    def __init__(self, engine: Engine, target: MqttTarget, *, client_id: str) -> None:
        self._engine = engine
        self._target = target
        self._client, self._props = make_client(client_id, target, session_expiry_s=0)
        # Retry the broker every second at first and never less often than every
        # RECONNECT_MAX_S: a broker restart is noticed within seconds.
        self._client.reconnect_delay_set(min_delay=1, max_delay=RECONNECT_MAX_S)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._connected = threading.Event()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="outbox-publisher", daemon=True)
        self.published = 0

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        self._client.connect_async(
            self._target.host, self._target.port, clean_start=True, properties=self._props
        )
        self._client.loop_start()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)
        self._client.disconnect()
        self._client.loop_stop()

    def wake(self) -> None:
        """Drain now: called after a commit that wrote outbox rows."""
        self._wake.set()

    # -- paho callbacks (network thread) --------------------------------------------------

    def _on_connect(
        self, client: mqtt.Client, userdata: Any, flags: Any, rc: Any, props: Any
    ) -> None:
        if not rc.is_failure:
            self._connected.set()
            self._wake.set()

    def _on_disconnect(
        self, client: mqtt.Client, userdata: Any, flags: Any, rc: Any, props: Any
    ) -> None:
        self._connected.clear()

    # -- the drain loop -------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            if not self._connected.wait(timeout=POLL_INTERVAL_S):
                continue
            try:
                sent = self.drain_once()
            except Exception:  # one bad round never kills the publisher
                log.exception("outbox drain failed")
                sent = 0
            if sent == 0:
                self._wake.wait(timeout=POLL_INTERVAL_S)
                self._wake.clear()

    def drain_once(self) -> int:
        """Publish one batch of unpublished rows; returns how many were acknowledged."""
        with Session(self._engine) as session:
            rows = session.execute(
                sa.select(OutboxMessage.seq, OutboxMessage.topic, OutboxMessage.payload)  # type: ignore[call-overload]
                .where(OutboxMessage.published_at.is_(None))  # type: ignore[union-attr]
                .order_by(OutboxMessage.seq)
                .limit(BATCH)
            ).all()
        if not rows:
            return 0
        infos: list[tuple[int, mqtt.MQTTMessageInfo]] = []
        for seq, topic, payload in rows:
            if not self._connected.is_set():
                break
            infos.append((seq, self._client.publish(topic, payload, qos=1)))
        acked: list[int] = []
        for seq, info in infos:
            try:
                info.wait_for_publish(timeout=PUBACK_TIMEOUT_S)
            except (RuntimeError, ValueError):
                break
            if not info.is_published():
                break
            acked.append(seq)
        if acked:
            with Session(self._engine) as session:
                session.execute(
                    sa.update(OutboxMessage)
                    .where(OutboxMessage.seq.in_(acked))  # type: ignore[union-attr]
                    .values(published_at=datetime.now(UTC))
                )
                session.commit()
            self.published += len(acked)
        return len(acked)

"""Draining the outbox to the broker: in ``seq`` order, QoS 1, marked after PUBACK.

Delivery is *at least once, in order per stream* (QUALITY.md, "chain of
custody"): a row is marked published only once the broker acknowledged it, so a
crash between PUBACK and the mark re-sends it; clients drop the duplicate by
``event_id``/``seq``. While the broker is unreachable the publisher waits for
the next CONNACK and the rows wait in the table.

Two threads, so that a new row never waits for the previous rows' round trips
(docs/engine.md, "Delivery guarantees"):

- the **sender** reads the unpublished rows it has not handed to the broker
  yet, in ``seq`` order, and publishes them at once; it keeps them as
  *handed* (in memory) and reads again as soon as it is woken (a commit that
  wrote rows), never waiting for a PUBACK or for a mark;
- the **marker** takes the rows whose PUBACK came, in the order they were
  sent, and writes their ``published_at`` in one ``UPDATE`` per round
  (:data:`MARK_LINGER_S` groups a fact's rows and a burst's PUBACKs); a row
  leaves *handed* only once its mark is committed, so the sender never reads
  it again.

A disconnection, or a PUBACK missing for :data:`PUBACK_TIMEOUT_S`, *rewinds*:
the unacknowledged rows leave *handed* and are read and published again in
``seq`` order (the broker may then deliver some twice: at least once). A crash
loses only the in-memory state: the rows not yet marked are published again at
the next start. One connection carries every publish in ``seq`` order, so each
stream's order is the broker's order.

One publisher per database: rows are read in ``seq`` order without locking;
running several would publish some rows twice (still at least once), which a
``SELECT … FOR UPDATE SKIP LOCKED`` claim would avoid when that is needed.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
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

#: Rows per read: enough to amortise the query at a burst of arrivals, few
#: enough that one read holds back little.
BATCH = 200
#: Rows handed to the broker and not yet marked, at most: the sender stops
#: reading while this many wait for a PUBACK or a mark (a slow broker, the
#: database refusing the marks), so memory and a crash's re-sends stay bounded.
MAX_HANDED = 1_000
#: How long a row handed to the broker may wait for its PUBACK before the
#: publisher sends it again: well above a loopback or LAN round trip, short
#: enough to notice a dead connection.
PUBACK_TIMEOUT_S = 5.0
#: How long the marker lets PUBACKs gather before one ``UPDATE``: a fact's
#: rows (an arrival writes 3–4) and a burst's land in one statement and one
#: commit instead of one each — fewer commits competing with the ingest's for
#: SQLite's single writer lock. Costs nothing a consumer sees: the mark only
#: bounds what a crash re-sends (this long's rows more).
MARK_LINGER_S = 0.05
#: Idle poll: rows committed by another process (an API worker) are found
#: within this time even if nobody calls :meth:`OutboxPublisher.wake`.
POLL_INTERVAL_S = 0.5


class OutboxPublisher:
    """Owns one MQTT client and two threads; :meth:`start` / :meth:`stop`."""

    def __init__(self, engine: Engine, target: MqttTarget, *, client_id: str) -> None:
        self._engine = engine
        self._target = target
        self._client, self._props = make_client(client_id, target, session_expiry_s=0)
        # Retry the broker every second at first and never less often than every
        # RECONNECT_MAX_S: a broker restart is noticed within seconds.
        self._client.reconnect_delay_set(min_delay=1, max_delay=RECONNECT_MAX_S)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_publish = self._on_publish
        self._connected = threading.Event()
        self._wake = threading.Event()
        self._acked = threading.Event()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        #: Sent, in send order: (seq, paho's handle, when). Under ``_lock``.
        self._inflight: deque[tuple[int, mqtt.MQTTMessageInfo, float]] = deque()
        #: Every seq sent and not yet marked (in flight, or acked and waiting for
        #: the marker): the sender does not read these again. Under ``_lock``.
        self._handed: set[int] = set()
        #: Acknowledged by the broker, not yet marked. Under ``_lock``.
        self._to_mark: list[int] = []
        #: Set by a disconnection or a PUBACK timeout: send the unacked rows again.
        self._rewind = threading.Event()
        self._sender = threading.Thread(target=self._send_loop, name="outbox-sender", daemon=True)
        self._marker = threading.Thread(target=self._mark_loop, name="outbox-marker", daemon=True)
        #: Rows marked published so far.
        self.published = 0

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        self._client.connect_async(
            self._target.host, self._target.port, clean_start=True, properties=self._props
        )
        self._client.loop_start()
        self._sender.start()
        self._marker.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        self._acked.set()
        for thread in (self._sender, self._marker):
            if thread.is_alive():
                thread.join(timeout=10)
        self._client.disconnect()
        self._client.loop_stop()

    def wake(self) -> None:
        """Read and send now: called after a commit that wrote outbox rows."""
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
        self._rewind.set()

    def _on_publish(
        self, client: mqtt.Client, userdata: Any, mid: int, rc: Any, props: Any
    ) -> None:
        self._acked.set()

    # -- the sender -----------------------------------------------------------------------

    def _send_loop(self) -> None:
        while not self._stop.is_set():
            if not self._connected.wait(timeout=POLL_INTERVAL_S):
                continue
            # Cleared before reading: a commit after this point wakes the next wait.
            self._wake.clear()
            try:
                full = self.drain_once() >= BATCH
            except Exception:  # one bad round never kills the publisher
                log.exception("outbox drain failed")
                full = False
            if not full:
                self._wake.wait(timeout=POLL_INTERVAL_S)

    def drain_once(self) -> int:
        """Send the unpublished rows not handed to the broker yet; returns how many were sent."""
        if self._rewind.is_set():
            self._rewind.clear()
            self._take_back_unacked()
        with self._lock:
            handed = list(self._handed)  # NOT IN needs no order
        room = MAX_HANDED - len(handed)
        if room <= 0:
            return 0
        query = (
            sa.select(OutboxMessage.seq, OutboxMessage.topic, OutboxMessage.payload)  # type: ignore[call-overload]
            .where(OutboxMessage.published_at.is_(None))  # type: ignore[union-attr]
            .order_by(OutboxMessage.seq)
            .limit(min(BATCH, room))
        )
        if handed:
            # A row whose seq is below one already sent can still appear (a
            # transaction of another process that took its seq first and
            # committed later): reading "not handed" rather than "after the
            # last sent" finds it. It is on another stream (a stream's next
            # row is written after its previous one's commit), so no stream's
            # order changes.
            query = query.where(OutboxMessage.seq.not_in(handed))  # type: ignore[union-attr]
        with Session(self._engine) as session:
            rows = session.execute(query).all()
        sent = 0
        for seq, topic, payload in rows:
            if not self._connected.is_set() or self._rewind.is_set():
                break
            with self._lock:
                info = self._client.publish(topic, payload, qos=1)
                self._inflight.append((seq, info, time.monotonic()))
                self._handed.add(seq)
            sent += 1
        return sent

    def _take_back_unacked(self) -> None:
        """Forget what was sent and not acknowledged, so that it is read and sent again."""
        with self._lock:
            self._collect_acked()
            for seq, _, _ in self._inflight:
                self._handed.discard(seq)
            self._inflight.clear()
        self._acked.set()  # the marker writes what was acked before the rewind

    # -- the marker -----------------------------------------------------------------------

    def _collect_acked(self) -> bool:
        """Move the PUBACKed rows at the head of the send order to ``_to_mark`` (under
        lock); ``True`` if the head is one paho refused."""
        while self._inflight:
            try:
                if not self._inflight[0][1].is_published():
                    return False
            except (ValueError, RuntimeError):
                # Paho refused it (published in the instant between the socket
                # closing and on_disconnect): it raises here for good and is never
                # acked, so it and the rows after it must be sent again.
                return True
            self._to_mark.append(self._inflight.popleft()[0])
        return False

    def _mark_loop(self) -> None:
        while True:
            self._acked.wait(timeout=POLL_INTERVAL_S)
            stopping = self._stop.is_set()
            if not stopping:
                self._stop.wait(MARK_LINGER_S)  # let this burst's PUBACKs gather
            self._acked.clear()
            try:
                self.mark_once()
            except Exception:  # the rows stay handed and acked: marked next round
                log.exception("outbox mark failed")
            if stopping:
                return

    def mark_once(self) -> int:
        """Write ``published_at`` of the rows the broker acknowledged; returns how many."""
        with self._lock:
            refused = self._collect_acked()
            acked = list(self._to_mark)
            late = (
                bool(self._inflight)
                and self._connected.is_set()
                and time.monotonic() - self._inflight[0][2] > PUBACK_TIMEOUT_S
            )
        if late or refused:
            if late:
                log.warning("outbox PUBACK overdue; sending the unacknowledged rows again")
            self._rewind.set()
            self._wake.set()
        if not acked:
            return 0
        with Session(self._engine) as session:
            session.execute(
                sa.update(OutboxMessage)
                .where(OutboxMessage.seq.in_(acked))  # type: ignore[union-attr]
                .values(published_at=datetime.now(UTC))
            )
            session.commit()
        # Only now, with the marks committed, may the sender stop skipping them:
        # a read that starts after this sees them published.
        with self._lock:
            del self._to_mark[: len(acked)]
            self._handed.difference_update(acked)
        self.published += len(acked)
        return len(acked)

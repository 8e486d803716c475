"""The transactional outbox: write in the caller's transaction, publish after commit.

- :func:`enqueue` / :func:`enqueue_event` add a row (with the stream's next
  sequence number, stamped into the event's ``seq``) to the caller's session;
  the row exists only if the caller commits.
- :class:`OutboxPublisher` drains unpublished rows in ``seq`` order, publishes
  each at QoS 1, and marks it published only after the broker's PUBACK. While
  the broker is away, rows wait.
"""

from __future__ import annotations

from server.outbox.publisher import OutboxPublisher
from server.outbox.writer import enqueue, enqueue_event, enqueue_events, stream_and_topic

__all__ = ["OutboxPublisher", "enqueue", "enqueue_event", "enqueue_events", "stream_and_topic"]

"""The transactional outbox and the consumers' idempotency ledger.

A change and the messages announcing it are written in one transaction; a
publisher drains :class:`OutboxMessage` in ``seq`` order after commit, so
nothing is announced that was not committed and nothing committed is lost when
the broker is down (ARCHITECTURE.md, "State and storage").

``seq`` is the global, strictly increasing order (``AUTOINCREMENT`` on SQLite so
a purged top row's number is never reused; an identity column on PostgreSQL).
Phones and staff screens resume per *stream* (``shopper:<id>``,
``staff:<store>``) from ``stream_seq``, which the writer assigns as the
stream's last value + 1 inside its transaction; the unique constraint turns a
concurrent writer's race into a retryable conflict instead of a gap or a
duplicate (QUALITY.md, "in order per stream").

Note for PostgreSQL: sequence values are handed out at insert, not at commit,
so a publisher must not assume ``seq`` has no holes or that a lower ``seq`` is
already visible; draining "unpublished rows by ``seq``" handles both.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from server.models.base import utc_field

__all__ = ["OutboxMessage", "ProcessedEvent"]

#: BIGINT on PostgreSQL; SQLite only autoincrements an ``INTEGER PRIMARY KEY``.
_SEQ_TYPE = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


class OutboxMessage(SQLModel, table=True):
    __tablename__ = "outbox"
    __table_args__ = (
        sa.UniqueConstraint("stream", "stream_seq"),
        # The publisher's query: unpublished rows in seq order (a partial index
        # stays small however long the published history grows).
        sa.Index(
            "ix_outbox_unpublished",
            "seq",
            postgresql_where=sa.text("published_at IS NULL"),
            sqlite_where=sa.text("published_at IS NULL"),
        ),
        sa.Index(None, "created_at"),
        {"sqlite_autoincrement": True},
    )

    seq: int | None = Field(default=None, primary_key=True, sa_type=_SEQ_TYPE)
    #: ``shopper:<shopper id>`` or ``staff:<store id>``: the resume unit of a client.
    stream: str = Field(max_length=200)
    stream_seq: int = Field(sa_type=sa.BigInteger)
    #: The MQTT topic (``vitrine.contracts.topics``).
    topic: str = Field(max_length=512)
    #: The exact bytes to publish (``dump_fact`` / outbound event JSON).
    payload: bytes = Field(sa_type=sa.LargeBinary)
    created_at: datetime = utc_field(now=True)
    published_at: datetime | None = utc_field(nullable=True)


class ProcessedEvent(SQLModel, table=True):
    """``(consumer, event_id)`` seen: a redelivered message is skipped, not re-applied."""

    __tablename__ = "processed_events"

    consumer: str = Field(primary_key=True, max_length=100)
    event_id: str = Field(primary_key=True, max_length=128)
    processed_at: datetime = utc_field(now=True, index=True)

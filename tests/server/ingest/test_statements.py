"""How many SQL statements a consenting app shopper's facts cost (docs/engine.md, "Batches").

The shopper fact is the latency path of the chain to the phone (docs/performance.md,
"e2e: the server leg"): most of its cost is ORM work per statement, so the counts
are a regression guard. What the count covers: the transaction from its ``BEGIN``
to the last ``INSERT`` (the commit is not a cursor statement).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session

from server.ingest.service import IngestConfig, handle_fact_message
from server.installs.token_index import resolve_install
from server.models import OutboxMessage
from tests.server.ingest.support import seed
from vitrine.contracts.facts import (
    Fact,
    ShopperEntered,
    ShopperZoneChanged,
    dump_fact,
    make_event_id,
)
from vitrine.contracts.ids import GatewayId, StoreId
from vitrine.contracts.topics import fact_topic

CONFIG = IngestConfig(footfall_key=b"k")

#: Statements of a consenting app shopper's arrival (guidance, staff alert and
#: task, an interaction, their outbox rows): 25 on SQLite (with its
#: ``BEGIN IMMEDIATE``), 24 on PostgreSQL. It was 35 / 34: the webhook
#: endpoints were read once per interaction, each outbox row asked for its
#: stream's ``max(stream_seq)`` and was inserted alone, and the new visit and
#: its (absent) engine state were read back after insert.
ARRIVAL_MAX = 25
#: Her zone change to the fitting room (unchanged at 17: a guard only).
ZONE_CHANGE_MAX = 17


class Statements:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.seen: list[str] = []
        sa.event.listen(engine, "before_cursor_execute", self._on)

    def _on(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        self.seen.append(" ".join(statement.split())[:100])

    def close(self) -> None:
        sa.event.remove(self.engine, "before_cursor_execute", self._on)


def _apply(engine: Engine, fact: Fact) -> list[str]:
    counter = Statements(engine)
    try:
        outcome = handle_fact_message(
            engine, fact_topic(fact.store, fact.kind), dump_fact(fact), CONFIG, fact.occurred_at
        )
    finally:
        counter.close()
    assert outcome == "applied"
    return counter.seen


def test_a_consenting_shoppers_arrival_and_zone_change_stay_within_their_statements(
    committed_engine: Engine,
) -> None:
    s = seed(committed_engine)
    at = datetime.now(UTC)
    token = s.token(at)
    # The first app fact of a token window fills the token index (docs/engine.md,
    # "The app-token index"): done here, so the count is the steady state's.
    with Session(committed_engine) as db:
        assert resolve_install(db, token, at) is not None
        db.commit()
    base = {"store": StoreId(s.store), "gateway": GatewayId("gw-1"), "device": token}
    arrival = _apply(
        committed_engine,
        ShopperEntered(
            event_id=make_event_id(s.store, "stmts", 1),
            occurred_at=at,
            device_kind="app",
            zone="entrance",
            **base,
        ),
    )
    zone = _apply(
        committed_engine,
        ShopperZoneChanged(
            event_id=make_event_id(s.store, "stmts", 2),
            occurred_at=at + timedelta(seconds=20),
            device_kind="app",
            from_zone="entrance",
            zone="fit-1",
            **base,
        ),
    )
    # The arrival did its work (else a low count would prove nothing).
    with Session(committed_engine) as db:
        kinds = sorted(
            db.exec(
                sa.select(OutboxMessage.topic).where(  # type: ignore[call-overload]
                    OutboxMessage.topic.contains(s.store)  # type: ignore[attr-defined]
                )
            ).scalars()
        )
    assert [k.rsplit("/", 1)[1] for k in kinds] == [
        "guidance",
        "interaction",
        "staff_alert",
        "staff_task",
    ], kinds
    assert len(arrival) <= ARRIVAL_MAX, "\n".join(arrival)
    assert len(zone) <= ZONE_CHANGE_MAX, "\n".join(zone)
    # Each stream's last number is asked once per transaction, the endpoints once.
    maxes = [q for q in arrival if q.startswith("SELECT max(outbox.stream_seq)")]
    assert len(maxes) == 2, arrival
    assert sum(q.startswith("SELECT webhook_endpoints") for q in arrival) == 1, arrival
    assert sum(q.startswith("INSERT INTO outbox") for q in arrival) == 1, arrival

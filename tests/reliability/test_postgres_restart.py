"""PostgreSQL stopped and started under a running ``vitrine server ingest``.

The test owns a throwaway cluster (:class:`~tests.reliability.procs.PgCluster`,
never the shared one on 5432). The shopper walk of ``test_ingest_kill.py``,
with item moves between its steps, is published at once; while the ingest
works through it the database goes away twice:

1. ``pg_ctl stop -m fast`` — sessions terminated, a clean shutdown — at about
   a third of the facts;
2. ``pg_ctl stop -m immediate`` — PostgreSQL quits without a checkpoint, like a
   crash, and runs crash recovery at the next start — at about two thirds.

Each time the test waits until the ingest has hit the outage on a fact (its
"retrying" warning) and reports not ready, then starts the database again.
The same ingest process must carry on by itself (no restart) and be ready
again; in the end every fact is processed once and the walk's effects exist
once (the checker and the assertions of ``test_ingest_kill.py``), and the
outbox publisher, which shares the database, published every row.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from server import migrate
from server.db import make_engine
from server.models import ProcessedEvent
from tests.reliability.procs import PgCluster, http_status, wait_until
from tests.reliability.test_ingest_kill import (
    assert_walk_effects,
    outbox_published,
    publish_all,
    walk,
)
from tests.server.ingest.support import seed
from tests.support.services import Broker, free_port, require_service
from vitrine.runtime.supervise import ProcessGroup, vitrine_command

pytestmark = [pytest.mark.mqtt, pytest.mark.postgres]

#: Item moves between the walk's steps (multiples of 4: each item ends where it
#: began): ~1,540 facts, a few seconds of ingest work to stop the database in
#: (384 were enough at one transaction per fact; the ingest's batches applied
#: them before the test could stop anything). At most ~1,800: the walk's facts
#: are 0.5 s apart and its token resolves within one 15-minute window of them.
MOVES = (512, 512, 512)
#: The two outages: how PostgreSQL stops, and when (share of the facts processed).
OUTAGES: tuple[tuple[Literal["fast", "immediate"], float], ...] = (
    ("fast", 1 / 3),
    ("immediate", 2 / 3),
)


@pytest.fixture
def cluster() -> Iterator[PgCluster]:
    why = PgCluster.available()
    if why is not None:
        require_service("a throwaway PostgreSQL cluster", why)
    pg = PgCluster()
    pg.start()
    yield pg
    pg.close()


def _processed(engine: Engine) -> int:
    """Processed facts, or -1 while the database is away."""
    try:
        with Session(engine) as db:
            return len(db.exec(select(ProcessedEvent.event_id)).all())
    except Exception:
        return -1


def test_postgres_restart_mid_stream_loses_and_repeats_nothing(
    cluster: PgCluster, mosquitto: Broker, tmp_path: Path
) -> None:
    url = cluster.url()
    migrate.upgrade(url)
    engine = make_engine(url)
    s = seed(engine)
    facts = walk(s, MOVES)
    ops = free_port()
    group = ProcessGroup(
        tmp_path / "logs",
        {
            "VITRINE_DATABASE_URL": url,
            "VITRINE_MQTT_URL": mosquitto.url,
            "VITRINE_SECRET_KEY": "fault-test-secret-key-not-for-production",
            "VITRINE_INGEST_CLIENT_ID": f"pg-{uuid.uuid4().hex[:6]}",
            "VITRINE_OPS_PORT": str(ops),
            "VITRINE_LOG_LEVEL": "WARNING",
        },
    )
    outages: list[str] = []
    try:
        ingest = group.start("ingest", vitrine_command("server", "ingest"))
        group.wait_until(ingest, lambda: http_status(ops) == 200)
        publish_all(mosquitto, facts)
        for mode, share in OUTAGES:
            outages.append(_outage(cluster, engine, ingest.log_path, ops, mode, share, len(facts)))
        wait_until(lambda: _processed(engine) >= len(facts), "every fact processed", timeout=45)
        wait_until(lambda: outbox_published(engine), "the outbox published")
        assert ingest.alive(), "the ingest must ride out the outages without a restart"
        log = ingest.log_path.read_text()
    finally:
        codes = group.stop()
        engine.dispose()
    assert codes == {"ingest": 0}, codes
    verdict = assert_walk_effects(engine, s, facts)
    engine.dispose()
    print(
        f"postgres restarts ({'; '.join(outages)}): {verdict.summary()}; "
        f"{log.count('retrying')} retry warnings"
    )


def _outage(
    cluster: PgCluster,
    engine: Engine,
    log: Path,
    ops: int,
    mode: Literal["fast", "immediate"],
    share: float,
    total: int,
) -> str:
    """Stop the database at ``share`` of the facts, prove the ingest noticed, start it."""
    wait_until(lambda: _processed(engine) >= total * share, f"{share:.0%} of the facts processed")
    before = _retries(log)
    cluster.stop(mode)
    # Down: the ingest hits it on a fact, holds the fact, and says it is not ready.
    wait_until(
        lambda: _retries(log) > before,
        f"the ingest retrying a fact on the stopped database ({mode})",
    )
    wait_until(lambda: http_status(ops) == 503, f"/readyz 503 while down ({mode})")
    cluster.start()
    engine.dispose()  # the test's own pooled connections died with the server
    at_stop = _processed(engine)
    assert at_stop < total, "stopped too late to be mid-stream"
    wait_until(lambda: http_status(ops) == 200, f"/readyz 200 again ({mode})")
    return f"{mode} stop at {at_stop}/{total}"


def _retries(log: Path) -> int:
    """The ingest's "database error on a fact; retrying" warnings so far."""
    return log.read_text(errors="replace").count("database error on a fact; retrying")

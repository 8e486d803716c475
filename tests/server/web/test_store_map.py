"""``GET /v1/web/stores/{store}/map``: the data source of the dashboard's "N shoppers in store".

Every open visit of the store counts — identified or anonymous footfall — and
none that has ended or belongs to another store; per zone, only identified
(opted-in) shoppers are counted. Read live on every request: no cache between
the ingest's commit and the count.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlmodel import Session

from server.models import ShopperProfile, StoreVisit, ZoneType
from server.models.journeys import DeviceKind
from tests.server.ingest_web.support import bearer, client_on
from tests.support.stores import add_store

NOW = datetime(2026, 3, 10, 15, 0, tzinfo=UTC)


def _store(session: Session) -> str:
    store = f"s-{uuid.uuid4().hex[:8]}"
    zones = [("entrance", "entrance", ZoneType.ENTRANCE), ("floor", "floor", ZoneType.SALES_FLOOR)]
    add_store(session, store, "Lyon", zones)
    return store


def _visit(
    session: Session, store: str, zone: str, *, identified: bool, ended: bool = False
) -> None:
    profile_id = None
    if identified:
        profile = ShopperProfile()
        session.add(profile)
        session.flush()
        profile_id = profile.id
    session.add(
        StoreVisit(
            store_id=store,
            profile_id=profile_id,
            device_kind=DeviceKind.APP if identified else DeviceKind.ANONYMOUS,
            footfall_hash=None if identified else uuid.uuid4().hex * 2,
            started_at=NOW,
            ended_at=NOW + timedelta(minutes=5) if ended else None,
            entry_zone_id="entrance",
            last_zone_id=zone,
        )
    )
    session.flush()


def _map(session: Session, store: str) -> dict[str, Any]:
    with client_on(session) as client:
        response = client.get(f"/v1/web/stores/{store}/map", headers=bearer("staff"))
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body


def test_every_open_visit_counts_and_only_opted_in_ones_per_zone(session: Session) -> None:
    store, other = _store(session), _store(session)
    assert _map(session, store)["shoppers_in_store"] == 0
    _visit(session, store, "floor", identified=True)
    _visit(session, store, "floor", identified=False)
    _visit(session, store, "entrance", identified=False)
    _visit(session, store, "floor", identified=True, ended=True)
    _visit(session, other, "floor", identified=True)

    body = _map(session, store)

    assert body["shoppers_in_store"] == 3
    assert {z["id"]: z["identified_shoppers"] for z in body["zones"]} == {"entrance": 0, "floor": 1}


def test_the_count_is_read_on_every_request(session: Session) -> None:
    store = _store(session)
    counts = []
    for _ in range(3):
        _visit(session, store, "entrance", identified=True)
        counts.append(_map(session, store)["shoppers_in_store"])
    assert counts == [1, 2, 3]

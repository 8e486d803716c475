"""Staff alerts and tasks over HTTP: list, claim, acknowledge, close; typed errors."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlmodel import Session

from server.auth.tokens import Principal, issue_token
from server.models import StaffAlert, StaffTask, Store, StoreVisit
from server.models.journeys import DeviceKind
from tests.server.ingest_web.support import SECRET, bearer, client_on

NOW = datetime(2026, 3, 14, 10, 0, tzinfo=UTC)


def _seed(session: Session) -> tuple[str, str, str]:
    store = f"s-{uuid.uuid4().hex[:8]}"
    session.add(Store(id=store, name="Lyon"))
    session.flush()
    visit = StoreVisit(
        store_id=store, device_kind=DeviceKind.ANONYMOUS, footfall_hash="h" * 64, started_at=NOW
    )
    session.add(visit)
    session.flush()
    alert = StaffAlert(
        id=str(uuid.uuid4()),
        store_id=store,
        visit_id=visit.id,
        zone_id="entrance",
        created_at=NOW,
        updated_at=NOW,
        payload={"kind": "staff_alert", "shopper_label": "Camille", "tier": "gold"},
    )
    task = StaffTask(
        id=str(uuid.uuid4()),
        store_id=store,
        created_at=NOW,
        updated_at=NOW,
        task="bring_to_floor",
        text="Bring size M of Wool coat to the floor",
        zone_id="back",
    )
    session.add_all([alert, task])
    session.flush()
    return store, alert.id, task.id


def _staff(subject: str, store: str | None = None) -> dict[str, str]:
    token = issue_token(
        SECRET.encode(),
        Principal(subject=subject, role="staff", store=store),
        expires_at=datetime.now(UTC) + timedelta(minutes=5),
    )
    return {"Authorization": f"Bearer {token}"}


def test_staff_list_claim_acknowledge_close(session: Session) -> None:
    store, alert_id, task_id = _seed(session)
    ana, ben = _staff("ana", store), _staff("ben", store)
    with client_on(session) as client:
        [alert] = client.get(f"/v1/stores/{store}/staff/alerts", headers=ana).json()
        assert (alert["id"], alert["status"]) == (alert_id, "open")
        assert alert["alert"]["shopper_label"] == "Camille"

        claimed = client.post(f"/v1/staff/alerts/{alert_id}/claim", headers=ana)
        assert claimed.status_code == 200
        assert (claimed.json()["status"], claimed.json()["claimed_by"]) == ("claimed", "ana")
        # Someone else cannot take it over.
        assert client.post(f"/v1/staff/alerts/{alert_id}/claim", headers=ben).status_code == 409
        assert (
            client.post(f"/v1/staff/alerts/{alert_id}/acknowledge", headers=ben).status_code == 409
        )
        acked = client.post(f"/v1/staff/alerts/{alert_id}/acknowledge", headers=ana)
        assert acked.json()["status"] == "acknowledged"
        assert (
            client.post(f"/v1/staff/alerts/{alert_id}/close", headers=ana).json()["status"]
            == "closed"
        )
        assert client.post(f"/v1/staff/alerts/{alert_id}/close", headers=ana).status_code == 409
        assert client.get(f"/v1/stores/{store}/staff/alerts", headers=ana).json() == []
        closed = client.get(f"/v1/stores/{store}/staff/alerts?status=closed", headers=ana).json()
        assert [a["id"] for a in closed] == [alert_id]

        [task] = client.get(f"/v1/stores/{store}/staff/tasks", headers=ben).json()
        assert task["text"] == "Bring size M of Wool coat to the floor"
        assert (
            client.post(f"/v1/staff/tasks/{task_id}/claim", headers=ben).json()["claimed_by"]
            == "ben"
        )
        assert client.post(f"/v1/staff/tasks/{task_id}/close", headers=ben).status_code == 200


def test_unknown_ids_other_stores_and_bad_input_are_typed_errors(session: Session) -> None:
    store, alert_id, task_id = _seed(session)
    elsewhere = _staff("eve", "another-store")
    with client_on(session) as client:
        missing = client.post(f"/v1/staff/alerts/{uuid.uuid4()}/claim", headers=bearer("staff"))
        assert missing.status_code == 404 and missing.json() == {"detail": "no such alert"}
        assert client.post(f"/v1/staff/tasks/{task_id}/claim", headers=elsewhere).status_code == 404
        assert client.get(f"/v1/stores/{store}/staff/alerts", headers=elsewhere).status_code == 404
        assert (
            client.post(f"/v1/staff/alerts/{alert_id}/steal", headers=bearer()).status_code == 422
        )
        bad = client.get(f"/v1/stores/{store}/staff/alerts?status=lost", headers=bearer())
        assert bad.status_code == 400
        assert client.get(f"/v1/stores/{store}/staff/alerts").status_code == 401

"""The offer library's admin API: rules are data."""

from __future__ import annotations

from sqlmodel import Session

from tests.server.ingest_web.support import bearer, client_on

OFFER = {
    "title": "Coats week",
    "body": "Try the new coats",
    "priority": 5,
    "moments": ["arrival", "zone"],
    "categories": ["coats"],
    "max_per_profile": 2,
}


def test_offers_are_created_read_updated_and_deleted_by_admins_only(session: Session) -> None:
    with client_on(session) as client:
        assert (
            client.post("/v1/admin/offers", json=OFFER, headers=bearer("staff")).status_code == 403
        )
        created = client.post("/v1/admin/offers", json=OFFER, headers=bearer())
        assert created.status_code == 201
        offer = created.json()
        assert offer["moments"] == ["arrival", "zone"] and offer["active"] is True
        listed = client.get("/v1/admin/offers", headers=bearer()).json()
        assert offer["id"] in [o["id"] for o in listed]

        changed = client.put(
            f"/v1/admin/offers/{offer['id']}", json={**OFFER, "active": False}, headers=bearer()
        )
        assert changed.json()["active"] is False
        assert client.delete(f"/v1/admin/offers/{offer['id']}", headers=bearer()).status_code == 204
        assert client.get(f"/v1/admin/offers/{offer['id']}", headers=bearer()).status_code == 404


def test_an_offer_needs_a_known_moment(session: Session) -> None:
    with client_on(session) as client:
        bad = client.post(
            "/v1/admin/offers", json={**OFFER, "moments": ["checkout"]}, headers=bearer()
        )
        assert bad.status_code == 422
        none = client.post("/v1/admin/offers", json={**OFFER, "moments": []}, headers=bearer())
        assert none.status_code == 422

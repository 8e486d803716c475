"""``GET /v1/stores/{id}/layout``: the gateway's copy of the imported layout, on both backends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
from sqlmodel import Session
from typer.testing import CliRunner

from server.auth.tokens import Principal, Role, issue_token
from server.stores.service import import_layout, parse_layout
from tests.server.ingest_web.support import SECRET, client_on
from tests.support.layouts import gateway_layout
from vitrine.contracts.layout import StoreLayout

STORE_YAML = (Path(__file__).parents[3] / "firmware_sim" / "data" / "store.yaml").read_bytes()


def _auth(role: Role, store: str | None = None) -> dict[str, str]:
    token = issue_token(
        SECRET.encode(),
        Principal(subject="gw1", role=role, store=store),
        expires_at=datetime.now(UTC) + timedelta(minutes=5),
    )
    return {"Authorization": f"Bearer {token}"}


def in_served_order(layout: StoreLayout) -> StoreLayout:
    """The order the route documents: ids (antennas by port)."""
    return layout.model_copy(
        update={
            "zones": tuple(sorted(layout.zones, key=lambda z: z.id)),
            "racks": tuple(sorted(layout.racks, key=lambda r: r.id)),
            "readers": tuple(
                r.model_copy(update={"antennas": tuple(sorted(r.antennas, key=lambda a: a.port))})
                for r in sorted(layout.readers, key=lambda r: r.id)
            ),
            "scanners": tuple(sorted(layout.scanners, key=lambda s: s.id)),
        }
    )


def test_the_simulators_store_round_trips_through_the_contract(session: Session) -> None:
    layout = parse_layout(STORE_YAML)
    import_layout(session, layout)
    with client_on(session) as client:
        response = client.get(
            "/v1/stores/demo-rivoli/layout", headers=_auth("gateway", "demo-rivoli")
        )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    served = StoreLayout.model_validate(response.json())
    assert served == in_served_order(layout)
    assert served.readers and served.scanners and served.racks  # the test means something


def test_a_custom_espresense_prefix_and_management_topic_come_back(session: Session) -> None:
    document = gateway_layout("s-prefix")
    document["readers"][0]["management_topic"] = "s-prefix/mevents/fx9600"
    document["readers"][0]["antennas"].append(
        {"port": 2, "zone": "fitting", "position": [4, 1], "range_m": 1.5}
    )
    layout = StoreLayout.model_validate(document)
    import_layout(session, layout)
    with client_on(session) as client:
        response = client.get("/v1/stores/s-prefix/layout", headers=_auth("admin"))
    served = StoreLayout.model_validate(response.json())
    assert served.espresense_prefix == "espresense-s-prefix"
    assert served == in_served_order(layout)


def test_only_admin_and_the_stores_own_gateway_may_read_it(session: Session) -> None:
    import_layout(session, parse_layout(STORE_YAML))
    path = "/v1/stores/demo-rivoli/layout"
    with client_on(session) as client:
        assert client.get(path).status_code == 401
        assert client.get(path, headers={"Authorization": "Bearer v1.x.y"}).status_code == 401
        assert client.get(path, headers=_auth("staff")).status_code == 403
        assert client.get(path, headers=_auth("ingest")).status_code == 403
        assert client.get(path, headers=_auth("gateway", "other-store")).status_code == 403
        assert client.get(path, headers=_auth("gateway")).status_code == 403  # names no store
        assert client.get(path, headers=_auth("gateway", "demo-rivoli")).status_code == 200
        assert client.get(path, headers=_auth("admin")).status_code == 200
        missing = client.get("/v1/stores/nope/layout", headers=_auth("admin"))
        assert missing.status_code == 404
        # A gateway token for the right store still cannot import a layout.
        posted = client.post(
            "/v1/admin/stores/import", content=STORE_YAML, headers=_auth("gateway", "demo-rivoli")
        )
        assert posted.status_code == 403


def test_etag_answers_304_until_the_layout_changes(session: Session) -> None:
    layout = StoreLayout.model_validate(gateway_layout("s-etag"))
    import_layout(session, layout)
    path, auth = "/v1/stores/s-etag/layout", _auth("gateway", "s-etag")
    with client_on(session) as client:
        first = client.get(path, headers=auth)
        etag = first.headers["etag"]
        assert etag.startswith('"') and etag.endswith('"')
        assert first.headers["cache-control"] == "private, no-cache"
        same = client.get(path, headers={**auth, "If-None-Match": etag})
        assert same.status_code == 304 and same.content == b""
        assert same.headers["etag"] == etag
        listed = client.get(path, headers={**auth, "If-None-Match": f'"nope", W/{etag}'})
        assert listed.status_code == 304
        assert client.get(path, headers={**auth, "If-None-Match": "*"}).status_code == 304
        assert client.get(path, headers={**auth, "If-None-Match": '"old"'}).status_code == 200
        # Re-import with antenna 1 of the Zebra moved to the fitting room.
        document = gateway_layout("s-etag")
        document["readers"][0]["antennas"][0]["zone"] = "fitting"
        import_layout(session, StoreLayout.model_validate(document))
        changed = client.get(path, headers={**auth, "If-None-Match": etag})
    assert changed.status_code == 200
    assert changed.headers["etag"] != etag
    body = orjson.loads(changed.content)
    zebra = next(r for r in body["readers"] if r["id"] == "fx9600")
    assert zebra["antennas"][0]["zone"] == "fitting"


def test_a_gateway_token_must_name_its_store() -> None:
    from vitrine.cli import app

    runner = CliRunner()
    refused = runner.invoke(app, ["auth", "token", "--role", "gateway", "--subject", "gw1"])
    assert refused.exit_code == 1
    assert "names its store" in refused.output

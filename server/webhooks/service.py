"""Webhook endpoints (admin CRUD) and the deliveries owed to them.

:func:`enqueue_interaction` is called by whoever writes a ``profile_interactions``
row, in the same transaction: the delivery rows commit (or roll back) with
the interaction, so a CRM never hears of a step that did not happen and never
misses one that did (the transactional-outbox pattern of ``server.outbox``).
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from datetime import datetime

import orjson
from sqlmodel import Session, col, select

from server.errors import NotFound
from server.models import ProfileInteraction, WebhookDelivery, WebhookEndpoint
from server.webhooks.schemas import DeliveryPublic, EndpointCreated, EndpointIn, EndpointPublic

__all__ = [
    "active_endpoints",
    "create_endpoint",
    "delete_endpoint",
    "enqueue_interaction",
    "get_endpoint",
    "interaction_body",
    "list_deliveries",
    "list_endpoints",
    "update_endpoint",
]

#: Deliveries listed per endpoint by the admin API (newest first).
DELIVERIES_LISTED = 200


def _public(row: WebhookEndpoint) -> EndpointPublic:
    return EndpointPublic(
        id=row.id,
        url=row.url,
        event_kinds=list(row.event_kinds),
        active=row.active,
        created_at=row.created_at,
    )


def _get(session: Session, endpoint_id: str) -> WebhookEndpoint:
    row = session.get(WebhookEndpoint, endpoint_id)
    if row is None:
        raise NotFound(f"no webhook endpoint {endpoint_id}")
    return row


def list_endpoints(session: Session) -> list[EndpointPublic]:
    rows = session.exec(select(WebhookEndpoint).order_by(col(WebhookEndpoint.created_at))).all()
    return [_public(r) for r in rows]


def create_endpoint(session: Session, data: EndpointIn) -> EndpointCreated:
    secret = data.secret or secrets.token_urlsafe(32)
    row = WebhookEndpoint(
        url=str(data.url),
        secret=secret,
        event_kinds=[k.value for k in data.event_kinds],
        active=data.active,
    )
    session.add(row)
    session.commit()
    session.refresh(row)
    return EndpointCreated(**_public(row).model_dump(), secret=secret)


def get_endpoint(session: Session, endpoint_id: str) -> EndpointPublic:
    return _public(_get(session, endpoint_id))


def update_endpoint(session: Session, endpoint_id: str, data: EndpointIn) -> EndpointPublic:
    row = _get(session, endpoint_id)
    row.url = str(data.url)
    row.event_kinds = [k.value for k in data.event_kinds]
    row.active = data.active
    if data.secret is not None:
        row.secret = data.secret
    session.add(row)
    session.commit()
    session.refresh(row)
    return _public(row)


def delete_endpoint(session: Session, endpoint_id: str) -> None:
    session.delete(_get(session, endpoint_id))
    session.commit()


def list_deliveries(session: Session, endpoint_id: str) -> list[DeliveryPublic]:
    _get(session, endpoint_id)
    rows = session.exec(
        select(WebhookDelivery)
        .where(WebhookDelivery.endpoint_id == endpoint_id)
        .order_by(col(WebhookDelivery.created_at).desc())
        .limit(DELIVERIES_LISTED)
    ).all()
    return [
        DeliveryPublic(
            id=r.id,
            event_id=r.event_id,
            status=r.status.value,
            attempts=r.attempts,
            next_attempt_at=r.next_attempt_at,
            delivered_at=r.delivered_at,
            last_status=r.last_status,
            last_error=r.last_error,
        )
        for r in rows
    ]


def interaction_body(row: ProfileInteraction) -> bytes:
    """The JSON a receiver gets: the timeline entry, no alias or device identifier."""
    return orjson.dumps(
        {
            "type": "interaction",
            "v": 1,
            "event_id": row.event_id,
            "kind": row.kind.value,
            "channel": row.channel.value,
            "profile_id": row.profile_id,
            "store_id": row.store_id,
            "visit_id": row.visit_id,
            "product_id": row.product_id,
            "variant_id": row.variant_id,
            "occurred_at": row.occurred_at.isoformat().replace("+00:00", "Z"),
            "data": row.data,
        },
        option=orjson.OPT_SORT_KEYS,
    )


def active_endpoints(session: Session) -> Sequence[WebhookEndpoint]:
    """The endpoints that are owed deliveries (read once by a caller writing several rows)."""
    return session.exec(select(WebhookEndpoint).where(col(WebhookEndpoint.active).is_(True))).all()


def enqueue_interaction(
    session: Session,
    row: ProfileInteraction,
    now: datetime,
    endpoints: Sequence[WebhookEndpoint] | None = None,
) -> int:
    """Owe ``row`` to every active endpoint that wants its kind; in the caller's transaction.

    ``endpoints``: :func:`active_endpoints` as the caller read them in this
    transaction (the ingest reads them once for all the interactions it
    writes); read here when not given.
    """
    if endpoints is None:
        endpoints = active_endpoints(session)
    body: bytes | None = None
    owed = 0
    for endpoint in endpoints:
        if endpoint.event_kinds and row.kind.value not in endpoint.event_kinds:
            continue
        body = body or interaction_body(row)
        session.add(
            WebhookDelivery(
                endpoint_id=endpoint.id,
                event_id=row.event_id,
                profile_id=row.profile_id,
                body=body,
                next_attempt_at=now,
                created_at=now,
            )
        )
        owed += 1
    return owed

"""Admin routes of webhook endpoints (``/v1/admin/webhooks``)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response

from server.auth.deps import AdminDep
from server.db import SessionDep
from server.webhooks import service
from server.webhooks.schemas import DeliveryPublic, EndpointCreated, EndpointIn, EndpointPublic

__all__ = ["router"]

router = APIRouter(tags=["webhooks"])
_404: dict[int | str, dict[str, Any]] = {404: {"description": "No such endpoint"}}


@router.get("/v1/admin/webhooks", summary="Webhook endpoints")
def list_endpoints(session: SessionDep, admin: AdminDep) -> list[EndpointPublic]:
    return service.list_endpoints(session)


@router.post("/v1/admin/webhooks", status_code=201, summary="Add an endpoint (secret shown once)")
def create_endpoint(data: EndpointIn, session: SessionDep, admin: AdminDep) -> EndpointCreated:
    return service.create_endpoint(session, data)


@router.get("/v1/admin/webhooks/{endpoint_id}", summary="One endpoint", responses=_404)
def get_endpoint(endpoint_id: str, session: SessionDep, admin: AdminDep) -> EndpointPublic:
    return service.get_endpoint(session, endpoint_id)


@router.put("/v1/admin/webhooks/{endpoint_id}", summary="Replace an endpoint", responses=_404)
def update_endpoint(
    endpoint_id: str, data: EndpointIn, session: SessionDep, admin: AdminDep
) -> EndpointPublic:
    return service.update_endpoint(session, endpoint_id, data)


@router.delete(
    "/v1/admin/webhooks/{endpoint_id}",
    status_code=204,
    summary="Remove an endpoint and its deliveries",
    responses=_404,
)
def delete_endpoint(endpoint_id: str, session: SessionDep, admin: AdminDep) -> Response:
    service.delete_endpoint(session, endpoint_id)
    return Response(status_code=204)


@router.get(
    "/v1/admin/webhooks/{endpoint_id}/deliveries",
    summary="Recent deliveries and their state",
    responses=_404,
)
def list_deliveries(endpoint_id: str, session: SessionDep, admin: AdminDep) -> list[DeliveryPublic]:
    return service.list_deliveries(session, endpoint_id)

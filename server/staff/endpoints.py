"""Staff routes: a store's open alerts and tasks; claim, acknowledge, close."""

from __future__ import annotations

from fastapi import APIRouter, Query

from server.auth.deps import StaffDep
from server.db import SessionDep
from server.staff import service
from server.staff.schemas import StaffAlertPublic, StaffTaskPublic, Transition

__all__ = ["router"]

router = APIRouter(tags=["staff"])

_STATUS = Query(None, description="open, claimed, acknowledged or closed; default: all not closed")


@router.get("/v1/stores/{store_id}/staff/alerts", summary="A store's staff alerts")
def list_alerts(
    store_id: str, session: SessionDep, staff: StaffDep, status: str | None = _STATUS
) -> list[StaffAlertPublic]:
    return service.list_alerts(session, staff, store_id, status)


@router.get("/v1/stores/{store_id}/staff/tasks", summary="A store's staff tasks")
def list_tasks(
    store_id: str, session: SessionDep, staff: StaffDep, status: str | None = _STATUS
) -> list[StaffTaskPublic]:
    return service.list_tasks(session, staff, store_id, status)


@router.post(
    "/v1/staff/alerts/{alert_id}/{action}",
    summary="Claim, acknowledge or close an alert",
    responses={404: {"description": "No such alert"}, 409: {"description": "Not allowed now"}},
)
def transition_alert(
    alert_id: str, action: Transition, session: SessionDep, staff: StaffDep
) -> StaffAlertPublic:
    return service.transition_alert(session, staff, alert_id, action)


@router.post(
    "/v1/staff/tasks/{task_id}/{action}",
    summary="Claim, acknowledge or close a task",
    responses={404: {"description": "No such task"}, 409: {"description": "Not allowed now"}},
)
def transition_task(
    task_id: str, action: Transition, session: SessionDep, staff: StaffDep
) -> StaffTaskPublic:
    return service.transition_task(session, staff, task_id, action)

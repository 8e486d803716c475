"""Staff work's life cycle: open → claimed → acknowledged → closed.

- ``claim``: open → claimed by the caller (again by the same person: no-op);
  claimed by someone else → :class:`Conflict`.
- ``acknowledge``: open or claimed-by-the-caller → acknowledged (and claimed by them).
- ``close``: anything not closed → closed; closing twice → :class:`Conflict`.

A staff token scoped to a store reaches only that store's alerts and tasks
(object-level authorisation, OWASP API1); an unknown id and another store's id
are both :class:`NotFound`, so ids cannot be probed.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlmodel import Session

from server.auth import Principal
from server.errors import BadRequest, Conflict, NotFound
from server.models import StaffAlert, StaffStatus, StaffTask
from server.staff import repository
from server.staff.schemas import StaffAlertPublic, StaffTaskPublic, Transition

__all__ = ["list_alerts", "list_tasks", "transition_alert", "transition_task"]

_OPEN = {StaffStatus.OPEN, StaffStatus.CLAIMED, StaffStatus.ACKNOWLEDGED}


def _statuses(status: str | None) -> set[StaffStatus]:
    if status is None:
        return set(_OPEN)
    try:
        return {StaffStatus(status)}
    except ValueError:
        raise BadRequest(
            f"status must be one of {', '.join(s.value for s in StaffStatus)}"
        ) from None


def _check_store(principal: Principal, store_id: str) -> None:
    if principal.role != "admin" and principal.store is not None and principal.store != store_id:
        raise NotFound("no such store")


def list_alerts(
    session: Session, principal: Principal, store_id: str, status: str | None
) -> list[StaffAlertPublic]:
    _check_store(principal, store_id)
    return [_alert(a) for a in repository.list_alerts(session, store_id, _statuses(status))]


def list_tasks(
    session: Session, principal: Principal, store_id: str, status: str | None
) -> list[StaffTaskPublic]:
    _check_store(principal, store_id)
    return [_task(t) for t in repository.list_tasks(session, store_id, _statuses(status))]


def transition_alert(
    session: Session, principal: Principal, alert_id: str, action: Transition
) -> StaffAlertPublic:
    row = repository.get_alert(session, alert_id)
    if row is None or _foreign(principal, row.store_id):
        raise NotFound("no such alert")
    _transition(row, principal, action)
    session.add(row)
    session.commit()
    return _alert(row)


def transition_task(
    session: Session, principal: Principal, task_id: str, action: Transition
) -> StaffTaskPublic:
    row = repository.get_task(session, task_id)
    if row is None or _foreign(principal, row.store_id):
        raise NotFound("no such task")
    _transition(row, principal, action)
    session.add(row)
    session.commit()
    return _task(row)


def _foreign(principal: Principal, store_id: str) -> bool:
    return principal.role != "admin" and principal.store is not None and principal.store != store_id


def _transition(row: StaffAlert | StaffTask, principal: Principal, action: Transition) -> None:
    who = principal.subject
    if row.status == StaffStatus.CLOSED:
        raise Conflict("already closed")
    if action == "close":
        row.status = StaffStatus.CLOSED
    else:
        if row.claimed_by is not None and row.claimed_by != who:
            raise Conflict("claimed by someone else")
        if action == "claim":
            if row.status == StaffStatus.ACKNOWLEDGED:
                raise Conflict("already acknowledged")
            row.status = StaffStatus.CLAIMED
        else:
            row.status = StaffStatus.ACKNOWLEDGED
        row.claimed_by = who
    row.updated_at = datetime.now(UTC)


def _alert(row: StaffAlert) -> StaffAlertPublic:
    return StaffAlertPublic(
        id=row.id,
        store_id=row.store_id,
        visit_id=row.visit_id,
        status=row.status,
        zone_id=row.zone_id,
        claimed_by=row.claimed_by,
        created_at=row.created_at,
        updated_at=row.updated_at,
        alert=row.payload,
    )


def _task(row: StaffTask) -> StaffTaskPublic:
    return StaffTaskPublic(
        id=row.id,
        store_id=row.store_id,
        task=row.task,
        text=row.text,
        status=row.status,
        zone_id=row.zone_id,
        variant_id=row.variant_id,
        visit_id=row.visit_id,
        claimed_by=row.claimed_by,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )

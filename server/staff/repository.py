"""Queries of staff alerts and tasks."""

from __future__ import annotations

from collections.abc import Sequence

from sqlmodel import Session, col, select

from server.models import StaffAlert, StaffStatus, StaffTask

__all__ = ["get_alert", "get_task", "list_alerts", "list_tasks"]

#: Rows per list: more open alerts than a store's staff can act on.
LIST_LIMIT = 200


def list_alerts(
    session: Session, store_id: str, statuses: set[StaffStatus]
) -> Sequence[StaffAlert]:
    return session.exec(
        select(StaffAlert)
        .where(StaffAlert.store_id == store_id, col(StaffAlert.status).in_(statuses))
        .order_by(col(StaffAlert.created_at).desc())
        .limit(LIST_LIMIT)
    ).all()


def list_tasks(session: Session, store_id: str, statuses: set[StaffStatus]) -> Sequence[StaffTask]:
    return session.exec(
        select(StaffTask)
        .where(StaffTask.store_id == store_id, col(StaffTask.status).in_(statuses))
        .order_by(col(StaffTask.created_at).desc())
        .limit(LIST_LIMIT)
    ).all()


def get_alert(session: Session, alert_id: str) -> StaffAlert | None:
    return session.get(StaffAlert, alert_id, with_for_update=True)


def get_task(session: Session, task_id: str) -> StaffTask | None:
    return session.get(StaffTask, task_id, with_for_update=True)

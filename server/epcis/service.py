"""Build an ``EPCISDocument`` of ObjectEvents (GS1 EPCIS 2.0, JSON-LD binding).

Shape copied from ``gs1/EPCIS`` ``JSON/Example_9.6.1-ObjectEvent.jsonld``
(WIRE-FORMATS §6): ``@context``, ``type: EPCISDocument``, ``schemaVersion:
"2.0"``, ``creationDate``, ``epcisBody.eventList[]``; each ObjectEvent has
``eventID`` (``ni:///sha-256;…?ver=CBV2.0``), ``eventTime`` and
``eventTimeZoneOffset``, ``epcList`` of pure-identity URIs, ``action:
OBSERVE``, ``bizStep``, ``disposition`` and ``readPoint.id``.

Observations come from ``item_observations`` (one row per item fact the ingest
applied: arrived, moved, departed): one event per observation in the period, so
an item that moved three times shows three reads. Items with a ``last_seen_at``
in the period but no observation (stock imported, or read before the history
existed) are exported once from their latest read. Items that are not SGTINs are exported with the
TDS raw URI ``urn:epc:raw:<bits>.x<hex>`` (TDS §12.3.4) so that none is dropped.
The store has no GLN in its layout, so ``readPoint.id`` is a URN of ours,
``urn:vitrine:store:<store>:zone:<zone>`` (EPCIS 2.0 §7.3.4 accepts any URI).
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from epcpy.utils.parsers import hex_to_tag_encodable
from sqlmodel import Session, col, select

from server.errors import BadRequest, NotFound
from server.models import Item, ItemObservation, ItemStatus, Store, Zone, ZoneType

__all__ = ["EPCIS_CONTEXT", "epc_uri", "export_observations"]

EPCIS_CONTEXT = "https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"


def epc_uri(epc_hex: str) -> str:
    """The pure-identity URI of an EPC (SGTIN-96/198 via epcpy), else the raw URI."""
    try:
        tag = hex_to_tag_encodable(epc_hex)
        uri: str = tag.epc_uri
        return uri
    except Exception:  # epcpy raises several types for unknown headers; all mean "not decodable"
        return f"urn:epc:raw:{len(epc_hex) * 4}.x{epc_hex.upper()}"


def _offset(at: datetime, tz: ZoneInfo) -> str:
    delta = at.astimezone(tz).utcoffset()
    minutes = int(delta.total_seconds() // 60) if delta is not None else 0
    sign = "+" if minutes >= 0 else "-"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def _event(
    epc: str,
    store_id: str,
    zone_id: str | None,
    at: datetime,
    sold: bool,
    zone_type: ZoneType | None,
    tz: ZoneInfo,
) -> dict[str, Any]:
    if sold:
        biz_step, disposition = "retail_selling", "retail_sold"
    elif zone_type == ZoneType.STOCKROOM:
        biz_step, disposition = "cycle_counting", "sellable_not_accessible"
    else:
        biz_step, disposition = "cycle_counting", "sellable_accessible"
    event: dict[str, Any] = {
        "type": "ObjectEvent",
        "eventTime": at.isoformat().replace("+00:00", "Z"),
        "eventTimeZoneOffset": _offset(at, tz),
        "epcList": [epc_uri(epc)],
        "action": "OBSERVE",
        "bizStep": biz_step,
        "disposition": disposition,
        "readPoint": {"id": f"urn:vitrine:store:{store_id}:zone:{zone_id or 'unknown'}"},
        "bizLocation": {"id": f"urn:vitrine:store:{store_id}"},
    }
    # EPCIS 2.0 / CBV 2.0 §8.9 event hash: here a hash of the canonical fields we emit.
    digest = hashlib.sha256(
        f"{event['eventTime']}|{event['epcList'][0]}|{biz_step}|{event['readPoint']['id']}".encode()
    ).hexdigest()
    return {"eventID": f"ni:///sha-256;{digest}?ver=CBV2.0", **event}


def export_observations(
    session: Session, store_id: str, start: datetime, end: datetime, now: datetime
) -> dict[str, Any]:
    if end <= start:
        raise BadRequest("'to' must be after 'from'")
    store = session.get(Store, store_id)
    if store is None:
        raise NotFound(f"no store {store_id}")
    try:
        tz = ZoneInfo(store.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        tz = ZoneInfo("UTC")
    zone_types = {
        z.id: z.type for z in session.exec(select(Zone).where(Zone.store_id == store_id)).all()
    }
    observations = session.exec(
        select(ItemObservation)
        .where(
            ItemObservation.store_id == store_id,
            col(ItemObservation.occurred_at) >= start,
            col(ItemObservation.occurred_at) < end,
        )
        .order_by(col(ItemObservation.occurred_at), col(ItemObservation.epc))
    ).all()
    observed = {o.epc for o in observations}
    latest = [
        i
        for i in session.exec(
            select(Item).where(
                Item.store_id == store_id,
                col(Item.last_seen_at) >= start,
                col(Item.last_seen_at) < end,
            )
        ).all()
        if i.epc not in observed and i.last_seen_at is not None
    ]
    rows: list[tuple[datetime, str, str | None, bool]] = [
        (o.occurred_at, o.epc, o.zone_id, o.sold) for o in observations
    ]
    rows.extend(
        (i.last_seen_at, i.epc, i.zone_id, i.status == ItemStatus.SOLD)
        for i in latest
        if i.last_seen_at is not None
    )
    rows.sort(key=lambda r: (r[0], r[1]))
    return {
        "@context": [EPCIS_CONTEXT],
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": now.isoformat().replace("+00:00", "Z"),
        "epcisBody": {
            "eventList": [
                _event(epc, store_id, zone, at, sold, zone_types.get(zone) if zone else None, tz)
                for at, epc, zone, sold in rows
            ]
        },
    }

"""Build an ``EPCISDocument`` of ObjectEvents (GS1 EPCIS 2.0, JSON-LD binding).

Shape copied from ``gs1/EPCIS`` ``JSON/Example_9.6.1-ObjectEvent.jsonld``
(WIRE-FORMATS §6): ``@context``, ``type: EPCISDocument``, ``schemaVersion:
"2.0"``, ``creationDate``, ``epcisBody.eventList[]``; each ObjectEvent has
``eventID`` (``ni:///sha-256;…?ver=CBV2.0``), ``eventTime`` and
``eventTimeZoneOffset``, ``epcList`` of pure-identity URIs, ``action:
OBSERVE``, ``bizStep``, ``disposition`` and ``readPoint.id``.

Observations are the items' latest reads (``items.last_seen_at``): one event
per item seen in the period. Items that are not SGTINs are exported with the
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
from server.models import Item, ItemStatus, Store, Zone, ZoneType

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


def _event(item: Item, zone_type: ZoneType | None, tz: ZoneInfo) -> dict[str, Any]:
    assert item.last_seen_at is not None
    if item.status == ItemStatus.SOLD:
        biz_step, disposition = "retail_selling", "retail_sold"
    elif zone_type == ZoneType.STOCKROOM:
        biz_step, disposition = "cycle_counting", "sellable_not_accessible"
    else:
        biz_step, disposition = "cycle_counting", "sellable_accessible"
    event: dict[str, Any] = {
        "type": "ObjectEvent",
        "eventTime": item.last_seen_at.isoformat().replace("+00:00", "Z"),
        "eventTimeZoneOffset": _offset(item.last_seen_at, tz),
        "epcList": [epc_uri(item.epc)],
        "action": "OBSERVE",
        "bizStep": biz_step,
        "disposition": disposition,
        "readPoint": {"id": f"urn:vitrine:store:{item.store_id}:zone:{item.zone_id or 'unknown'}"},
        "bizLocation": {"id": f"urn:vitrine:store:{item.store_id}"},
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
    items = session.exec(
        select(Item)
        .where(
            Item.store_id == store_id,
            col(Item.last_seen_at) >= start,
            col(Item.last_seen_at) < end,
        )
        .order_by(col(Item.last_seen_at), col(Item.epc))
    ).all()
    return {
        "@context": [EPCIS_CONTEXT],
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": now.isoformat().replace("+00:00", "Z"),
        "epcisBody": {
            "eventList": [
                _event(i, zone_types.get(i.zone_id) if i.zone_id else None, tz) for i in items
            ]
        },
    }

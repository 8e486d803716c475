"""Payload builders in the devices' and web trackers' own formats (WIRE-FORMATS.md).

Pure functions: values in, JSON-able dicts out. Every field name, unit and quirk
follows the document and section cited on each builder; the simulator's tests
check the shapes against the same documents.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Literal

__all__ = [
    "ZEBRA_MODES",
    "ZebraMode",
    "espresense_payload",
    "espresense_topic",
    "ga4_view_item",
    "impinj_antenna_event",
    "impinj_overflow_event",
    "impinj_tag_event",
    "impinj_timestamp",
    "segment_product_viewed",
    "shopify_product_viewed",
    "zebra_heartbeat",
    "zebra_tag_event",
    "zebra_timestamp",
]

ZebraMode = Literal["SIMPLE", "INVENTORY", "CONVEYOR", "CUSTOM"]
ZEBRA_MODES: tuple[ZebraMode, ...] = ("SIMPLE", "INVENTORY", "CONVEYOR", "CUSTOM")

JsonDict = dict[str, Any]


# ----------------------------------------------------------------- Zebra IoT Connector
def zebra_timestamp(at: datetime) -> str:
    """``YYYY-MM-DDThh:mm:ss.sss+hhmm``: local offset without a colon (WIRE-FORMATS §1)."""
    return at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}" + at.strftime("%z")


def zebra_tag_event(
    mode: ZebraMode,
    event_num: int,
    epc_hex: str,
    at: datetime,
    *,
    antenna: int,
    peak_rssi: int,
    reads: int,
) -> JsonDict:
    """A Data-interface tag event with the fields the mode carries by default.

    WIRE-FORMATS §1 (hardware captures on FXR60/FXR90): SIMPLE and CUSTOM carry
    ``eventNum``, ``format``, ``idHex`` only; CONVEYOR adds ``antenna``;
    INVENTORY adds ``antenna``, ``peakRssi`` (integer dBm) and ``reads``.
    ``idHex`` is lower-case hex.
    """
    data: JsonDict = {"eventNum": event_num, "format": "epc", "idHex": epc_hex.lower()}
    if mode in ("CONVEYOR", "INVENTORY"):
        data["antenna"] = antenna
    if mode == "INVENTORY":
        data["peakRssi"] = peak_rssi
        data["reads"] = reads
    return {"data": data, "timestamp": zebra_timestamp(at), "type": mode}


def zebra_heartbeat(event_num: int, at: datetime) -> JsonDict:
    """Management Events heartbeat, shape of the WIRE-FORMATS §1 sample (no ``idHex``)."""
    return {
        "component": "RG",
        "data": {"radio_control": {}},
        "eventNum": event_num,
        "timestamp": zebra_timestamp(at),
        "type": "heartbeat",
    }


# ----------------------------------------------------------------- Impinj IoT interface
def impinj_timestamp(at: datetime) -> str:
    """UTC with nanosecond precision, as in R700 captures (WIRE-FORMATS §2)."""
    utc = at.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond * 1000:09d}Z"


def _b64url(hex_text: str) -> str:
    """base64url as the Impinj IoT interface sends ``epc``/``tid`` (WIRE-FORMATS §2)."""
    return base64.urlsafe_b64encode(bytes.fromhex(hex_text)).decode("ascii")


def impinj_tag_event(
    hostname: str,
    at: datetime,
    epc_hex: str,
    tid_hex: str,
    *,
    antenna_port: int,
    peak_rssi_cdbm: int,
    frequency_khz: int,
    transmit_power_cdbm: int,
) -> JsonDict:
    """ReaderEvent with a TagInventoryEvent, default reporting fields only.

    Impinj Reader Configuration API v1.7.0 (``docs/ReaderEvent.md``,
    ``docs/TagInventoryEvent.md``): by default ``epc``, ``tid`` (base64url),
    ``antennaPort``, ``transmitPowerCdbm``, ``peakRssiCdbm`` (centi-dBm) and
    ``frequency`` (kHz).
    """
    return {
        "timestamp": impinj_timestamp(at),
        "hostname": hostname,
        "eventType": "tagInventory",
        "tagInventoryEvent": {
            "epc": _b64url(epc_hex),
            "tid": _b64url(tid_hex),
            "antennaPort": antenna_port,
            "transmitPowerCdbm": transmit_power_cdbm,
            "peakRssiCdbm": peak_rssi_cdbm,
            "frequency": frequency_khz,
        },
    }


def impinj_overflow_event(
    hostname: str, at: datetime, first: datetime, last: datetime, purged: int, remaining: int
) -> JsonDict:
    """``overflowEvent`` (Impinj API v1.7.0 ``docs/ReaderEvent.md``): events were purged."""
    return {
        "timestamp": impinj_timestamp(at),
        "hostname": hostname,
        "eventType": "overflow",
        "overflowEvent": {
            "firstEventTimestamp": impinj_timestamp(first),
            "lastEventTimestamp": impinj_timestamp(last),
            "eventsPurged": purged,
            "eventsRemaining": remaining,
        },
    }


def impinj_antenna_event(hostname: str, at: datetime, port: int, connected: bool) -> JsonDict:
    """``antennaConnectedEvent`` / ``antennaDisconnectedEvent`` (Impinj API v1.7.0)."""
    kind = "antennaConnected" if connected else "antennaDisconnected"
    return {
        "timestamp": impinj_timestamp(at),
        "hostname": hostname,
        "eventType": kind,
        f"{kind}Event": {"antennaPort": port},
    }


# ------------------------------------------------------------------------- ESPresense
def espresense_topic(prefix: str, device_id: str, room: str) -> str:
    """``espresense/devices/<device-id>/<room>`` (ESPresense docs, configuration/mqtt.md)."""
    return f"{prefix}/devices/{device_id}/{room}"


def espresense_payload(
    *,
    device_id: str,
    mac: str,
    rssi_at_1m: int,
    rssi: float,
    rssi_var: float,
    distance: float,
    var: float,
    close: bool,
    interval_ms: int,
) -> JsonDict:
    """A v4 per-device report (ESPresense v4.0.6 field set, WIRE-FORMATS §5).

    v4: ``mac, id, name, rssi@1m, rssi (float), rxAdj, rssiVar, distance, var,
    close, int`` (``mV``/``batt``/``temp``/``rh``/``irk`` only for devices that
    expose them; no ``raw``, ``speed`` or ``idType``). Phones carry no name.
    """
    return {
        "mac": mac,
        "id": device_id,
        "rssi@1m": rssi_at_1m,
        "rssi": round(rssi, 2),
        "rxAdj": 0,
        "rssiVar": round(rssi_var, 2),
        "distance": round(distance, 2),
        "var": round(var, 2),
        "close": close,
        "int": interval_ms,
    }


# --------------------------------------------------------------- e-commerce "viewed"
def _iso_ms(at: datetime) -> str:
    utc = at.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def segment_product_viewed(
    *,
    message_id: str,
    user_id: str,
    anonymous_id: str,
    at: datetime,
    product: JsonDict,
    currency_lower: bool,
) -> JsonDict:
    """Segment ``track`` "Product Viewed" (segment-docs ecommerce/v2.md, spec/track.md).

    ``product`` keys: product_id, sku, category, name, brand, variant, price
    (number), url, image_url, currency. The official example sends ``'usd'``
    in lower case, so some events here do too.
    """
    currency = str(product["currency"])
    return {
        "type": "track",
        "event": "Product Viewed",
        "userId": user_id,
        "anonymousId": anonymous_id,
        "messageId": message_id,
        "timestamp": _iso_ms(at),
        "originalTimestamp": _iso_ms(at),
        "sentAt": _iso_ms(at),
        "properties": {
            "product_id": product["product_id"],
            "sku": product["sku"],
            "category": product["category"],
            "name": product["name"],
            "brand": product["brand"],
            "variant": product["variant"],
            "price": float(product["price"]),
            "quantity": 1,
            "currency": currency.lower() if currency_lower else currency,
            "url": product["url"],
            "image_url": product["image_url"],
        },
        "context": {
            "page": {"url": product["url"], "title": product["name"]},
            "userAgent": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X)",
            "library": {"name": "analytics.js", "version": "next-1.70.0"},
        },
    }


def ga4_view_item(
    *,
    client_id: str,
    user_id: str,
    at: datetime,
    product: JsonDict,
    with_currency: bool,
) -> JsonDict:
    """GA4 ``view_item`` (developers.google.com … ga4/reference/events).

    Carried as a Measurement-Protocol-like body (``client_id`` + ``events[]``).
    Real dataLayer pushes send ``price``/``quantity``/``value`` as **strings**
    and sometimes omit ``currency`` (WIRE-FORMATS §7); so do these.
    """
    price = str(Decimal(str(product["price"])))
    params: JsonDict = {
        "value": price,
        "items": [
            {
                "item_id": product["sku"],
                "item_name": product["name"],
                "item_brand": product["brand"],
                "item_category": product["category"],
                "item_variant": product["variant"],
                "price": price,
                "quantity": "1",
            }
        ],
    }
    if with_currency:
        params = {"currency": product["currency"], **params}
    return {
        "client_id": client_id,
        "user_id": user_id,
        "timestamp_micros": str(int(at.timestamp() * 1_000_000)),
        "events": [{"name": "view_item", "params": params}],
    }


def shopify_product_viewed(
    *, event_id: str, client_id: str, at: datetime, product: JsonDict
) -> JsonDict:
    """Shopify Web Pixels ``product_viewed`` (WIRE-FORMATS §7, test-store capture).

    ``data.productVariant{price{amount,currencyCode}, product{id,title,vendor,url,
    type,untranslatedTitle}, id, title, untranslatedTitle, sku}``; ids are numeric strings.
    """
    return {
        "id": event_id,
        "name": "product_viewed",
        "type": "standard",
        "clientId": client_id,
        "timestamp": _iso_ms(at),
        "data": {
            "productVariant": {
                "id": product["variant_id"],
                "title": product["variant"],
                "untranslatedTitle": product["variant"],
                "sku": product["sku"],
                "price": {
                    "amount": float(product["price"]),
                    "currencyCode": product["currency"],
                },
                "product": {
                    "id": product["product_id"],
                    "title": product["name"],
                    "untranslatedTitle": product["name"],
                    "vendor": product["brand"],
                    "url": product["url"],
                    "type": product["category"],
                },
            }
        },
    }

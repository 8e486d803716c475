"""Southbound adapters: vendor payload bytes → normalised reads (:mod:`gateway.reads`).

One adapter per wire format (WIRE-FORMATS.md §1–§5), all behind
:class:`ReaderAdapter`; :func:`parse` is the one entry point the pipeline, the
MQTT service and ``vitrine readers parse`` call.

Errors::

    ValueError
    └── AdapterError      a payload that must be rejected; str() is the reason,
                          .partial holds the good reads of a batch/stream that
                          also held bad records

Valid input that carries nothing for Vitrine (keep-alives, settings echoes,
empty batches) comes back as :class:`~gateway.reads.Skipped`, and reader health
(heartbeats, antenna changes, overflow, will/connect messages) as
:class:`~gateway.reads.DeviceEvent` — neither is ever an error. Vendor topics are
configuration (``readers[].topic`` in the store layout), so the only topic
levels read here are ESPresense's documented ``…/devices/<id>/<room>`` and
``…/rooms/<room>[/<key>]``.
"""

from __future__ import annotations

from typing import Final, Literal, Protocol, get_args

import orjson

from gateway.adapters._common import AdapterError, decode_text, stream_lines
from gateway.adapters.espresense import EspresenseAdapter
from gateway.adapters.impinj import ImpinjAdapter, is_status_text
from gateway.adapters.llrp import LlrpAdapter
from gateway.adapters.speedway import SpeedwayAdapter
from gateway.adapters.zebra import TAG_MODES, ZebraAdapter
from gateway.reads import AdapterOutput

__all__ = [
    "ADAPTERS",
    "FORMATS",
    "AdapterError",
    "AdapterOutput",
    "Format",
    "ReaderAdapter",
    "detect_format",
    "parse",
]

Format = Literal["auto", "zebra", "impinj", "speedway", "espresense", "llrp"]
FORMATS: Final[tuple[str, ...]] = get_args(Format)


class ReaderAdapter(Protocol):
    """What every vendor adapter offers."""

    name: str

    def parse(
        self, payload: bytes, *, topic: str | None = None, reader: str | None = None
    ) -> list[AdapterOutput]:
        """Normalise one payload; raise :class:`AdapterError` with the reason if malformed."""
        ...


ADAPTERS: Final[dict[str, ReaderAdapter]] = {
    adapter.name: adapter
    for adapter in (
        ZebraAdapter(),
        ImpinjAdapter(),
        SpeedwayAdapter(),
        EspresenseAdapter(),
        LlrpAdapter(),
    )
}

_LLRP_KEYS = frozenset(
    {
        "EPC",
        "EPC-96",
        "AntennaID",
        "PeakRSSI",
        "TagReportData",
        "RO_ACCESS_REPORT",
        # what `vitrine readers llrp-bridge` publishes besides tag reports
        "KEEPALIVE",
        "READER_EVENT_NOTIFICATION",
        "LlrpBridge",
    }
)
_IMPINJ_EVENTS = frozenset(
    {
        "tagInventoryEvent",
        "antennaConnectedEvent",
        "antennaDisconnectedEvent",
        "inventoryStatusEvent",
        "antennaActivationEvent",
        "overflowEvent",
    }
)


def parse(
    fmt: str, payload: bytes, *, topic: str | None = None, reader: str | None = None
) -> list[AdapterOutput]:
    """Normalise ``payload`` in format ``fmt`` (``auto`` detects it).

    ``reader`` is the configured reader/scanner id; ``topic`` the MQTT topic it
    arrived on. Never raises anything but :class:`AdapterError` for any bytes.
    """
    name = detect_format(payload, topic) if fmt == "auto" else fmt
    adapter = ADAPTERS.get(name)
    if adapter is None:
        raise AdapterError(f"unknown format {fmt!r} (one of {', '.join(FORMATS)})")
    try:
        return adapter.parse(payload, topic=topic, reader=reader)
    except AdapterError:
        raise
    except (RecursionError, MemoryError) as exc:
        # orjson caps nesting itself; this guards the adapters' own walks.
        raise AdapterError(
            f"payload too deeply nested or too large ({type(exc).__name__})"
        ) from None


def detect_format(payload: bytes, topic: str | None = None) -> str:
    """Guess the format of one payload from its topic and shape, for ``--format auto``.

    Production configures ``readers[].format``; this is for integrators poking at
    captures. Raises :class:`AdapterError` when nothing fits.
    """
    if topic is not None:
        levels = topic.split("/")
        if "espresense" in levels or (
            len(levels) >= 3 and (levels[-3] == "devices" or levels[-3] == "rooms")
        ):
            return "espresense"
    text = decode_text(payload)
    if is_status_text(text):
        return "impinj"  # the will/connect strings of the Impinj MQTT settings
    lines = list(stream_lines(text))
    if not lines:
        return "impinj"  # an HTTP-stream keep-alive
    try:
        document: object = orjson.loads(lines[0][1])
    except orjson.JSONDecodeError:
        raise AdapterError("cannot detect the format: payload is not JSON") from None
    sample = document
    if isinstance(document, list):
        sample = next((d for d in document if isinstance(d, dict)), None)
    if not isinstance(sample, dict):
        raise AdapterError("cannot detect the format: no JSON object in the payload")
    keys = set(sample)
    data = sample.get("data")
    kind = sample.get("type")
    if keys & _IMPINJ_EVENTS or "eventType" in keys:
        return "impinj"
    if (isinstance(data, dict) and ("idHex" in data or kind == "BLE_DATA")) or (
        isinstance(kind, str) and (kind.upper() in TAG_MODES or "component" in keys)
    ):
        return "zebra"
    if "isHeartBeat" in keys or ("epc" in keys and "antennaPort" in keys):
        return "speedway"
    if keys & _LLRP_KEYS:
        return "llrp"
    if "id" in keys and ("rssi" in keys or "distance" in keys):
        return "espresense"
    if isinstance(kind, str) and "timestamp" in keys:
        return "zebra"  # a management event: heartbeat, gpi, gpo, errors, …
    raise AdapterError(
        f"cannot detect the format from keys {sorted(keys)[:8]}; pass --format explicitly"
    )

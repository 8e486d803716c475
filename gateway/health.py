"""Reader and scanner health, derived from what they send (pure, clock-free).

Published retained on ``health_topic(store, kind, device)`` by the service every
few seconds: last seen, last heartbeat, read rate, disconnected antennas,
overflow and lost-read counts, antennas inferred silent. Nothing here ever
holds a shopper identifier.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from gateway.reads import DeviceEvent

__all__ = ["RATE_WINDOW_S", "DeviceHealth", "HealthBook"]

#: Read rates are averaged over one minute: long enough to smooth readers that
#: report in bursts (reportFilter periods, batching), short enough to show a
#: reader that went quiet within a minute.
RATE_WINDOW_S = 60

DeviceKind = Literal["reader", "scanner"]


def _iso(t: float | None) -> str | None:
    return None if t is None else datetime.fromtimestamp(t, UTC).isoformat()


@dataclass(slots=True)
class DeviceHealth:
    kind: DeviceKind
    device: str
    last_seen: float | None = None
    last_heartbeat: float | None = None
    total_reads: int = 0
    #: (whole second, reads in it), the last ``RATE_WINDOW_S`` seconds.
    buckets: deque[tuple[int, int]] = field(default_factory=deque)
    disconnected_antennas: set[int] = field(default_factory=set)
    #: Antennas the pipeline infers failed although the reader says nothing:
    #: they stopped reading every tag at once while the reader's other antennas
    #: read on (``gateway.pipeline.items``, "A silent antenna"). Check the cable.
    silent_antennas: set[int] = field(default_factory=set)
    overflows: int = 0
    lost_reads: int = 0
    errors: int = 0
    last_error: str | None = None
    #: From the device's own (or its bridge's) status line: True "online" /
    #: "connected", False "offline" / "disconnected" / "connection lost" (the MQTT
    #: last wills of ESPresense and Impinj, the LLRP bridge's status); None
    #: until one arrives — a reader that never says is judged by ``last_seen``.
    connected: bool | None = None

    def rate(self, t: float) -> float:
        horizon = int(t) - RATE_WINDOW_S
        return sum(n for s, n in self.buckets if s > horizon) / RATE_WINDOW_S

    def report(self, t: float) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "device": self.device,
            "last_seen": _iso(self.last_seen),
            "last_heartbeat": _iso(self.last_heartbeat),
            "reads_total": self.total_reads,
            "read_rate_per_s": round(self.rate(t), 3),
            "disconnected_antennas": sorted(self.disconnected_antennas),
            "silent_antennas": sorted(self.silent_antennas),
            "overflows": self.overflows,
            "lost_reads": self.lost_reads,
            "errors": self.errors,
            "last_error": self.last_error,
            "connected": self.connected,
            "at": _iso(t),
        }


#: Status words, lower-cased, that say whether the device is connected. Anything
#: else (a firmware version, "rebooting") leaves ``connected`` as it was.
_CONNECTED = {"online": True, "connected": True, "offline": False, "disconnected": False,
              "connection lost": False}  # fmt: skip


def _connection_said(detail: dict[str, object]) -> bool | None:
    for key in ("status", "message"):
        text = detail.get(key)
        if isinstance(text, str) and text.strip().lower() in _CONNECTED:
            return _CONNECTED[text.strip().lower()]
    return None


class HealthBook:
    """Per reader/scanner health; fed by the pipeline, read by the service."""

    def __init__(self) -> None:
        self._devices: dict[tuple[DeviceKind, str], DeviceHealth] = {}

    def _get(self, kind: DeviceKind, device: str) -> DeviceHealth:
        key = (kind, device)
        health = self._devices.get(key)
        if health is None:
            health = self._devices[key] = DeviceHealth(kind, device)
        return health

    def device(self, kind: DeviceKind, device: str) -> DeviceHealth | None:
        return self._devices.get((kind, device))

    def read(self, kind: DeviceKind, device: str, t: float, count: int = 1) -> None:
        health = self._get(kind, device)
        health.last_seen = t if health.last_seen is None else max(health.last_seen, t)
        health.total_reads += count
        second = int(t)
        if health.buckets and health.buckets[-1][0] == second:
            health.buckets[-1] = (second, health.buckets[-1][1] + count)
        else:
            health.buckets.append((second, count))
        while health.buckets and health.buckets[0][0] <= second - RATE_WINDOW_S:
            health.buckets.popleft()

    def antenna_silent(self, reader: str, antenna: int, silent: bool) -> None:
        antennas = self._get("reader", reader).silent_antennas
        if silent:
            antennas.add(antenna)
        else:
            antennas.discard(antenna)

    def lost(self, device: str, count: int) -> None:
        self._get("reader", device).lost_reads += count

    def event(self, kind: DeviceKind, device: str, event: DeviceEvent, t: float) -> None:
        health = self._get(kind, device)
        health.last_seen = t if health.last_seen is None else max(health.last_seen, t)
        match event.event:
            case "heartbeat":
                health.last_heartbeat = t
            case "antenna_disconnected" if event.antenna is not None:
                health.disconnected_antennas.add(event.antenna)
            case "antenna_connected" if event.antenna is not None:
                health.disconnected_antennas.discard(event.antenna)
            case "overflow":
                health.overflows += 1
            case "error":
                health.errors += 1
                message = event.detail.get("message") or event.detail.get("reason")
                health.last_error = str(message)[:200] if message is not None else "error"
            case "status":
                said = _connection_said(event.detail)
                if said is not None:
                    health.connected = said
            case _:
                pass

    def reports(self, t: float) -> list[dict[str, Any]]:
        return [h.report(t) for h in self._devices.values()]

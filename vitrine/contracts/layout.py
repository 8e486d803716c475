"""A store's layout: zones, racks, readers and scanners, and which maps to which.

One schema serves the simulator (which needs the geometry), the gateway (which
needs antenna/scanner → zone and each reader's vendor topic) and the server's
``vitrine store import``. Files are YAML or JSON; loading them is the caller's
I/O, validating them is :meth:`StoreLayout.model_validate`.

Coordinates are metres on the shop plan, origin at a corner, ``x`` to the right,
``y`` up.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = [
    "Antenna",
    "Rack",
    "ReaderConfig",
    "ReaderFormat",
    "Rect",
    "Scanner",
    "StoreInfo",
    "StoreLayout",
    "Zone",
    "ZoneType",
]

_ID = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$"


class ZoneType(StrEnum):
    ENTRANCE = "entrance"
    SALES_FLOOR = "sales_floor"
    STOCKROOM = "stockroom"
    FITTING_ROOM = "fitting_room"
    TILL = "till"
    EXIT = "exit"


ReaderFormat = Literal["zebra", "impinj", "speedway", "llrp"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Rect(_Frozen):
    x: float
    y: float
    w: float = Field(gt=0)
    h: float = Field(gt=0)

    def contains(self, px: float, py: float) -> bool:
        return self.x <= px <= self.x + self.w and self.y <= py <= self.y + self.h

    @property
    def centre(self) -> tuple[float, float]:
        return (self.x + self.w / 2, self.y + self.h / 2)


class StoreInfo(_Frozen):
    id: str = Field(pattern=_ID)
    name: str
    timezone: str = "UTC"


class Zone(_Frozen):
    id: str = Field(pattern=_ID)
    name: str
    type: ZoneType
    area: Rect


class Rack(_Frozen):
    id: str = Field(pattern=_ID)
    zone: str
    name: str
    position: tuple[float, float]


class Antenna(_Frozen):
    port: int = Field(ge=1)
    zone: str
    rack: str | None = None
    position: tuple[float, float]
    #: Read range in metres (the simulator's radius; documentation for real sites).
    range_m: float = Field(default=3.0, gt=0)


class ReaderConfig(_Frozen):
    id: str = Field(pattern=_ID)
    format: ReaderFormat
    #: The vendor topic this reader publishes its tag data on (Zebra fixes none;
    #: Impinj's ``eventTopic``). Wildcards are allowed for the subscription.
    topic: str
    #: Zebra/Impinj management events, if sent to a separate topic.
    management_topic: str | None = None
    antennas: tuple[Antenna, ...]


class Scanner(_Frozen):
    id: str = Field(pattern=_ID)
    #: ESPresense room name: the last level of ``espresense/devices/<id>/<room>``.
    room: str
    zone: str
    position: tuple[float, float]


class StoreLayout(_Frozen):
    store: StoreInfo
    zones: tuple[Zone, ...]
    racks: tuple[Rack, ...] = ()
    readers: tuple[ReaderConfig, ...] = ()
    scanners: tuple[Scanner, ...] = ()
    #: ESPresense base topic for this store's scanners.
    espresense_prefix: str = "espresense"

    @model_validator(mode="after")
    def _references_resolve(self) -> StoreLayout:
        zone_ids = {z.id for z in self.zones}
        rack_ids = {r.id for r in self.racks}
        problems: list[str] = []
        for kind, items in (
            ("zone", self.zones),
            ("rack", self.racks),
            ("reader", self.readers),
            ("scanner", self.scanners),
        ):
            ids = [i.id for i in items]
            dupes = sorted({i for i in ids if ids.count(i) > 1})
            if dupes:
                problems.append(f"duplicate {kind} ids: {', '.join(dupes)}")
        for rack in self.racks:
            if rack.zone not in zone_ids:
                problems.append(f"rack {rack.id} names unknown zone {rack.zone}")
        for reader in self.readers:
            ports = [a.port for a in reader.antennas]
            if len(ports) != len(set(ports)):
                problems.append(f"reader {reader.id} repeats an antenna port")
            for ant in reader.antennas:
                if ant.zone not in zone_ids:
                    problems.append(
                        f"reader {reader.id} antenna {ant.port}: unknown zone {ant.zone}"
                    )
                if ant.rack is not None and ant.rack not in rack_ids:
                    problems.append(
                        f"reader {reader.id} antenna {ant.port}: unknown rack {ant.rack}"
                    )
        for scanner in self.scanners:
            if scanner.zone not in zone_ids:
                problems.append(f"scanner {scanner.id} names unknown zone {scanner.zone}")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def zone(self, zone_id: str) -> Zone:
        for z in self.zones:
            if z.id == zone_id:
                return z
        raise KeyError(zone_id)

"""Reports and read models of the stores feature (the file format is ``StoreLayout``)."""

from __future__ import annotations

from pydantic import BaseModel

__all__ = ["StoreImportReport", "StorePublic", "ZonePublic"]


class StoreImportReport(BaseModel):
    store_id: str
    created: bool
    zones: int
    racks: int
    readers: int
    antennas: int
    scanners: int
    removed: int


class ZonePublic(BaseModel):
    id: str
    name: str
    type: str


class StorePublic(BaseModel):
    id: str
    name: str
    timezone: str
    zones: list[ZonePublic]

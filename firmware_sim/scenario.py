"""Scenario files: what happens in the simulated store, and how the devices are set up.

A scenario is YAML validating as :class:`Scenario`. Shipped scenarios live in
``firmware_sim/data/scenarios/<name>.yaml``; ``--scenario`` takes a name or a path.
Paths inside a scenario (layout, catalogue, stock) are relative to its file;
left out, they name the sample store.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Literal

import yaml
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from firmware_sim.formats import ZebraMode
from firmware_sim.store import DATA_DIR, SampleFiles, StoreBundle, load_bundle

__all__ = [
    "SCENARIO_DIR",
    "Arrivals",
    "DeadAntenna",
    "Radio",
    "ReaderSetup",
    "Reboot",
    "Scenario",
    "ScenarioError",
    "ShopperSpec",
    "StaffMove",
    "list_scenarios",
    "load_scenario",
]

SCENARIO_DIR = DATA_DIR / "scenarios"

Consent = Literal["guidance", "staff_recognition", "journey_profile"]
ALL_CONSENTS: tuple[Consent, ...] = ("guidance", "staff_recognition", "journey_profile")


class ScenarioError(ValueError):
    """A scenario that cannot be found or does not validate."""


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ReaderSetup(_Frozen):
    #: Zebra operating mode (``set_mode`` ``type``); ignored for Impinj.
    mode: ZebraMode = "INVENTORY"
    #: Zebra batching: a message is a JSON array of the tick's events (WIRE-FORMATS §1).
    batching: bool = False
    #: Like Zebra's ``reportFilter.duration`` / per-antenna de-duplication: a tag is
    #: reported at most once per antenna in this many seconds. 10 s keeps a 400-tag
    #: store at ~40 events/s, the order of magnitude of a real shop floor.
    report_interval_s: float = Field(default=10.0, gt=0)
    #: Impinj ``eventPerSecondLimit``; past it events are purged and an
    #: ``overflowEvent`` says how many. 0 = no limit.
    events_per_second_limit: int = Field(default=0, ge=0)


class Radio(_Frozen):
    """Physics parameters; sources and reasons in docs/simulator.md."""

    #: Path-loss exponent of the *room* (what the phones' signal really does).
    ble_path_loss_n: float = 2.7
    #: ESPresense v4 "absorption" used to turn RSSI into distance (include/defaults.h).
    espresense_absorption: float = 2.7
    #: iBeacon measured power / ESPresense default Tx reference at 1 m (dBm).
    ble_rssi_at_1m: int = -59
    #: Per-advert Gaussian noise; 3.5–5.9 dB measured on phones (Strzoda et al. 2022).
    ble_sigma_db: float = Field(default=4.5, ge=0)
    #: Adverts a scanner misses for reasons other than range (channel collisions,
    #: Wi-Fi coexistence on the ESP32).
    ble_miss_probability: float = Field(default=0.15, ge=0, le=1)
    #: Below this an ESP32 does not decode the advert (dBm).
    ble_sensitivity_dbm: float = -95.0
    #: Like ESPresense's ``max_distance``: reports of farther devices are not sent.
    ble_max_distance_m: float = Field(default=12.0, gt=0)
    #: App advertising interval; iOS/Android "balanced" advertising is ~100–1000 ms.
    app_advertising_interval_ms: int = Field(default=500, gt=0)
    #: Phones without the app: privacy-address beacons (Apple Continuity etc.).
    other_advertising_interval_ms: int = Field(default=1000, gt=0)
    #: RFID read probability per second at the antenna, before range and density.
    rfid_p_max: float = Field(default=0.95, ge=0, le=1)
    #: Tags in one antenna's field at which the read probability halves (Gen2
    #: Q-algorithm collisions): a few hundred tags per field is where dense
    #: readers start missing tags within a second.
    rfid_density_half: float = Field(default=150.0, gt=0)
    #: Peak RSSI at 1 m (dBm) and the backscatter exponent (two-way path: d^-4).
    rfid_rssi_at_1m: float = -50.0
    rfid_rssi_exponent: float = 40.0
    rfid_sigma_db: float = Field(default=2.0, ge=0)


class Arrivals(_Frozen):
    """Random shoppers arriving as a Poisson process."""

    per_minute: float = Field(default=0.0, ge=0)
    until_s: float = Field(default=0.0, ge=0)
    app_share: float = Field(default=0.4, ge=0, le=1)
    consent_share: float = Field(default=0.7, ge=0, le=1)


class ShopperSpec(_Frozen):
    """A shopper written into the scenario (the others are drawn from ``arrivals``)."""

    name: str
    arrive_s: float = Field(ge=0)
    app: bool = True
    consents: tuple[Consent, ...] = ALL_CONSENTS
    #: SKUs viewed online before the visit; the shopper looks for them in store.
    viewed: tuple[str, ...] = ()
    #: Buy what was looked for (if found); otherwise the usual random choice.
    buys_viewed: bool = True
    #: Wait at the rack for the viewed size this long (staff may bring it).
    waits_s: float = 0.0


class StaffMove(_Frozen):
    """Staff carry ``count`` items of ``sku`` from one rack/shelf to another."""

    at_s: float = Field(ge=0)
    sku: str
    count: int = Field(default=1, ge=1)
    from_rack: str
    to_rack: str


class DeadAntenna(_Frozen):
    kind: Literal["dead_antenna"] = "dead_antenna"
    reader: str
    port: int
    from_s: float = Field(ge=0)
    until_s: float | None = None


class Reboot(_Frozen):
    kind: Literal["reboot"] = "reboot"
    reader: str
    at_s: float = Field(ge=0)
    down_s: float = Field(default=30.0, gt=0)


class Scenario(_Frozen):
    name: str
    description: str = ""
    #: Wall-clock instant of simulated second 0 (with its offset).
    start: AwareDatetime = datetime.fromisoformat("2024-09-07T09:30:00+02:00")
    duration_s: float = Field(default=600.0, gt=0)
    #: The simulation step; 1 s is ESPresense's reporting cadence for a moving device.
    tick_s: float = Field(default=1.0, gt=0)
    qos: Literal[0, 1, 2] = 1
    layout: str | None = None
    catalogue: str | None = None
    stock: str | None = None
    #: The retailer's companion-app iBeacon proximity UUID.
    app_uuid: str = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
    readers: dict[str, ReaderSetup] = Field(default_factory=dict)
    radio: Radio = Radio()
    arrivals: Arrivals = Arrivals()
    shoppers: tuple[ShopperSpec, ...] = ()
    staff: tuple[StaffMove, ...] = ()
    faults: tuple[DeadAntenna | Reboot, ...] = ()
    #: Online product views per shopper before the visit, and the share who view after.
    online_views_before: int = Field(default=3, ge=0)
    online_after_share: float = Field(default=0.5, ge=0, le=1)
    base_dir: Path | None = Field(default=None, exclude=True)

    def reader(self, reader_id: str) -> ReaderSetup:
        return self.readers.get(reader_id, ReaderSetup())

    def bundle(self) -> StoreBundle:
        sample = SampleFiles()
        base = self.base_dir or SCENARIO_DIR

        def pick(value: str | None, default: Path) -> Path:
            return default if value is None else (base / value)

        return load_bundle(
            pick(self.layout, sample.layout),
            pick(self.catalogue, sample.catalogue),
            pick(self.stock, sample.stock),
        )


def list_scenarios() -> list[str]:
    return sorted(p.stem for p in SCENARIO_DIR.glob("*.yaml"))


def load_scenario(name_or_path: str) -> Scenario:
    path = Path(name_or_path)
    if not path.suffix:
        path = SCENARIO_DIR / f"{name_or_path}.yaml"
    if not path.is_file():
        raise ScenarioError(f"no scenario {name_or_path!r}; shipped: {', '.join(list_scenarios())}")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        return Scenario.model_validate({**data, "base_dir": path.parent})
    except (yaml.YAMLError, ValueError) as exc:
        raise ScenarioError(f"{path}: {exc}") from exc

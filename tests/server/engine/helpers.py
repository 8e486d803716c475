"""Plain in-memory contexts for the engine's tests: a small store, two products."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from server.engine import Consents, Context, Shopper, StockLine, ViewedProduct, ZoneInfo
from vitrine.contracts.facts import (
    ItemArrived,
    ShopperEntered,
    ShopperLeft,
    ShopperZoneChanged,
    make_event_id,
)
from vitrine.contracts.ids import DeviceToken, Epc, GatewayId, StoreId
from vitrine.contracts.layout import ZoneType

T0 = datetime(2026, 3, 14, 10, 0, tzinfo=UTC)
STORE = StoreId("lyon-1")
GATEWAY = GatewayId("gw-1")
TOKEN = DeviceToken("1a2b3c4d")

ZONES = {
    "entrance": ZoneInfo("entrance", "Entrance", ZoneType.ENTRANCE),
    "women": ZoneInfo("women", "Women", ZoneType.SALES_FLOOR),
    "men": ZoneInfo("men", "Men", ZoneType.SALES_FLOOR),
    "back": ZoneInfo("back", "Stockroom", ZoneType.STOCKROOM),
    "fit-1": ZoneInfo("fit-1", "Fitting room 1", ZoneType.FITTING_ROOM),
    "till-1": ZoneInfo("till-1", "Till", ZoneType.TILL),
    "exit": ZoneInfo("exit", "Exit", ZoneType.EXIT),
}

VIEW_A = ViewedProduct("prod-a", "Linen shirt", T0 - timedelta(days=2), "shirts", "var-a-m", "M")
VIEW_B = ViewedProduct("prod-b", "Wool coat", T0 - timedelta(days=1), "coats", None, None)

STOCK = (
    StockLine("prod-a", "var-a-m", "M", "women", "r3", 3, T0 - timedelta(minutes=5)),
    StockLine("prod-a", "var-a-m", "M", "men", "r9", 1, T0 - timedelta(minutes=5)),
    StockLine("prod-a", "var-a-l", "L", "women", "r4", 7, T0 - timedelta(minutes=5)),
    StockLine("prod-b", "var-b-m", "M", "back", None, 2, T0 - timedelta(hours=1)),
)

ALL = Consents(guidance=True, staff_recognition=True, journey_profile=True)


def shopper(consents: Consents = ALL, **kw: object) -> Shopper:
    base: dict[str, object] = {
        "profile_id": "p-1",
        "label": "Camille",
        "consents": consents,
        "tier": "gold",
        "known_size": "M",
        "views": (VIEW_A, VIEW_B),
        "click_and_collect": ("order 1042",),
    }
    base.update(kw)
    return Shopper(**base)  # type: ignore[arg-type]


def context(**kw: object) -> Context:
    base: dict[str, object] = {"store": STORE, "zones": ZONES, "stock": STOCK}
    base.update(kw)
    return Context(**base)  # type: ignore[arg-type]


def entered(zone: str = "entrance", at: datetime = T0, n: int = 0) -> ShopperEntered:
    return ShopperEntered(
        event_id=make_event_id("entered", n),
        store=STORE,
        gateway=GATEWAY,
        occurred_at=at,
        device=TOKEN,
        device_kind="app",
        zone=zone,
    )


def moved(to: str, frm: str = "entrance", n: int = 0) -> ShopperZoneChanged:
    return ShopperZoneChanged(
        event_id=make_event_id("moved", to, n),
        store=STORE,
        gateway=GATEWAY,
        occurred_at=T0 + timedelta(minutes=2),
        device=TOKEN,
        device_kind="app",
        from_zone=frm,
        zone=to,
    )


def left(n: int = 0) -> ShopperLeft:
    return ShopperLeft(
        event_id=make_event_id("left", n),
        store=STORE,
        gateway=GATEWAY,
        occurred_at=T0 + timedelta(minutes=20),
        device=TOKEN,
        device_kind="app",
        last_zone="exit",
    )


def item_arrived(zone: str, epc: str = "3034257BF7194E4000001A85", n: int = 0) -> ItemArrived:
    return ItemArrived(
        event_id=make_event_id("item", epc, zone, n),
        store=STORE,
        gateway=GATEWAY,
        occurred_at=T0 + timedelta(minutes=5),
        epc=Epc(epc),
        gtin="00614141123452",
        serial="6789",
        zone=zone,
    )

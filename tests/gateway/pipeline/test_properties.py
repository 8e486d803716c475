"""Property tests: arbitrary read sequences never raise, and facts stay consistent."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.reads import AdapterOutput, BleRead, DeviceEvent, IBeacon, RfidRead, Skipped
from tests.gateway.pipeline.conftest import APP_UUID, at, make_pipeline
from vitrine.contracts.facts import Fact
from vitrine.contracts.ids import Epc

EPCS = [Epc("3074257BF7194E4000001A85"), Epc("E28011002000564500000002"), Epc("8A450224")]
rssi = st.one_of(st.none(), st.floats(-120, 0))
rfid = st.builds(
    RfidRead,
    epc=st.sampled_from(EPCS),
    antenna=st.one_of(st.none(), st.integers(0, 6)),
    rssi_dbm=rssi,
    timestamp=st.none(),
    reader=st.none(),
    sequence=st.one_of(st.none(), st.integers(0, 5000)),
)
ble = st.builds(
    BleRead,
    device_id=st.sampled_from(["aabbccddee01", "apple:1006:10-12", "irk:1234"]),
    room=st.sampled_from(["entrance", "floor", "fitting", "exit", "nowhere", None]),
    rssi_dbm=st.one_of(st.none(), st.floats(-120, 0)),
    distance_m=st.one_of(st.none(), st.floats(0, 50)),
    ibeacon=st.one_of(st.none(), st.just(IBeacon(APP_UUID, 1, 2))),
    timestamp=st.none(),
)
event = st.builds(
    DeviceEvent,
    device=st.sampled_from([None, "fx1", "floor"]),
    event=st.sampled_from(["heartbeat", "overflow", "antenna_disconnected", "error"]),
    timestamp=st.none(),
    antenna=st.one_of(st.none(), st.integers(1, 4)),
    lost=st.one_of(st.none(), st.integers(0, 10**6)),
)
output: st.SearchStrategy[AdapterOutput] = st.one_of(
    rfid, ble, event, st.builds(Skipped, reason=st.text(max_size=5))
)
step = st.tuples(
    st.floats(0, 120),  # seconds since the previous step (0: same instant)
    st.sampled_from(["fx1", "simple1", "unknown", None]),
    st.one_of(output, st.none()),  # None: a tick
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(step, max_size=60))
def test_any_sequence_is_handled_and_facts_are_consistent(
    steps: list[tuple[float, str | None, AdapterOutput | None]],
) -> None:
    pipeline = make_pipeline()
    facts: list[Fact] = []
    t = 0.0
    for gap, reader, out in steps:
        t += gap
        if out is None:
            facts += pipeline.tick(at(t))
        else:
            facts += pipeline.feed(out, at(t), reader=reader)
    facts += pipeline.tick(at(t + 3600))

    item_zone: dict[str, str | None] = {}
    device_in: dict[str, bool] = {}
    for fact in facts:
        match fact.kind:
            case "item_arrived":
                assert item_zone.get(fact.epc) is None
                item_zone[fact.epc] = fact.zone
            case "item_moved":
                assert item_zone.get(fact.epc) == fact.from_zone != fact.zone
                item_zone[fact.epc] = fact.zone
            case "item_departed":
                assert item_zone.get(fact.epc) == fact.zone
                item_zone[fact.epc] = None
            case "shopper_entered":
                assert not device_in.get(fact.device)
                device_in[fact.device] = True
            case "shopper_zone_changed" | "shopper_dwelled":
                assert device_in.get(fact.device)
            case "shopper_left":
                assert device_in.get(fact.device)
                device_in[fact.device] = False
    # an hour of silence later, nothing is left in any zone
    assert not any(item_zone.values()) and not any(device_in.values())
    assert len({f.event_id for f in facts}) == len(facts)

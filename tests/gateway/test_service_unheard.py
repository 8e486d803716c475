"""Facts the broker PUBACKs "no matching subscribers" (16), with a scripted client.

The real-Mosquitto case is in ``test_service.py``; here the test decides which
PUBACK comes when, so the orders a broker restart produces are reproduced
exactly: a fact that goes unheard *behind* one already held, once input has
stopped (the broker SIGKILL fault, tests/reliability/test_broker_restart.py),
and a health report's unheard packet id reused by a fact.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.reasoncodes import ReasonCode

from gateway.service import GatewayService, _Out
from gateway.settings import GatewaySettings
from tests.gateway.pipeline.conftest import LAYOUT
from vitrine.contracts.ids import StoreId
from vitrine.contracts.layout import StoreLayout
from vitrine.contracts.topics import fact_topic

NO_MATCHING_SUBSCRIBERS = 16


class ScriptedClient:
    """What the service calls on a paho client; PUBACKs come when the test says.

    :meth:`puback` runs the service's ``on_publish`` and then marks the message
    published, in paho 2.x's order (``Client._do_on_publish``).
    """

    def __init__(self) -> None:
        self.next_mid = 1
        self.published: list[tuple[str, bytes, mqtt.MQTTMessageInfo]] = []
        self._lock = threading.Lock()
        self.on_connect: Callable[..., None] | None = None
        self.on_publish: Callable[..., None] | None = None

    def publish(self, topic: str, payload: bytes, qos: int = 0, retain: bool = False) -> Any:
        with self._lock:
            info = mqtt.MQTTMessageInfo(self.next_mid)
            self.next_mid += 1
            self.published.append((topic, payload, info))
        return info

    def puback(self, info: mqtt.MQTTMessageInfo, reason: int) -> None:
        assert self.on_publish is not None
        code = ReasonCode(PacketTypes.PUBACK, identifier=reason)
        self.on_publish(self, None, info.mid, code, None)
        info._set_as_published()

    def sent(self, payload: bytes) -> list[mqtt.MQTTMessageInfo]:
        with self._lock:
            return [info for _, p, info in self.published if p == payload]

    def connect_async(self, *args: Any, **kwargs: Any) -> None:
        pass

    def loop_start(self) -> None:
        assert self.on_connect is not None
        flags = mqtt.ConnectFlags(session_present=False)
        self.on_connect(self, None, flags, ReasonCode(PacketTypes.CONNACK, identifier=0), None)

    def subscribe(self, *args: Any, **kwargs: Any) -> None:
        pass

    def disconnect(self) -> None:
        pass

    def loop_stop(self) -> None:
        pass


def _service(tmp_path: Path) -> tuple[GatewayService, ScriptedClient]:
    settings = GatewaySettings(
        mqtt_url="mqtt://127.0.0.1:1",
        state_dir=tmp_path,
        gateway_id="gwu",
        # Neither the periodic prune nor health reports may do the work under test.
        state_interval_s=3600,
        health_interval_s=3600,
    )
    service = GatewayService(settings, StoreLayout.model_validate(LAYOUT))
    client = ScriptedClient()
    client.on_connect = service._on_connect
    client.on_publish = service._on_publish
    service.client = client  # type: ignore[assignment]
    return service, client


def _facts(n: int) -> list[_Out]:
    topic = fact_topic(StoreId("s1"), "item_arrived")
    return [_Out(topic, f'{{"n":{i}}}'.encode()) for i in range(n)]


def _wait(what: str, pred: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


@pytest.fixture
def running(tmp_path: Path) -> Iterator[tuple[GatewayService, ScriptedClient, list[_Out]]]:
    """A service restarted with three facts in its outbox and no input coming."""
    first, _ = _service(tmp_path)
    facts = _facts(3)
    first._outbox = deque(facts)
    first.save_state()
    assert first._journal is not None
    first._journal.close()
    service, client = _service(tmp_path)
    stop = threading.Event()
    worker = threading.Thread(target=service.run, args=(stop,), daemon=True)
    worker.start()
    try:
        yield service, client, facts
    finally:
        service.connected.clear()  # gone: the shutdown waits for no PUBACK
        stop.set()
        worker.join(10)
    assert not worker.is_alive()


def test_a_fact_gone_unheard_behind_a_held_one_is_sent_again_without_further_input(
    running: tuple[GatewayService, ScriptedClient, list[_Out]],
) -> None:
    """After a broker restart the ingest subscribes again between two PUBACKs: the
    first fact is held, the second is answered 16 only after that, the third is
    heard. With no input after them, no checkpoint lands to look at the outbox;
    the second must still be found and sent again (before, it waited for the
    periodic prune: 10 s by default, and the fault test's check came first)."""
    service, client, (one, two, three) = running
    _wait("the restored outbox published", lambda: len(client.published) >= 4)
    client.puback(client.sent(one.payload)[0], NO_MATCHING_SUBSCRIBERS)
    _wait("the first fact held", lambda: service._hold_until > 0)
    client.puback(client.sent(two.payload)[0], NO_MATCHING_SUBSCRIBERS)
    client.puback(client.sent(three.payload)[0], 0)
    # The hold is 1 s, then 2 s: both held facts go out again, in order, well within 6 s.
    _wait("both unheard facts sent again", lambda: len(client.sent(two.payload)) == 2, 6)
    again = [p for _, p, _ in client.published[4:] if p in (one.payload, two.payload)]
    assert again == [one.payload, two.payload]
    assert len(client.sent(three.payload)) == 1, "the heard fact is not sent again"


def test_an_unheard_health_report_does_not_mark_a_fact_that_reuses_its_packet_id(
    tmp_path: Path,
) -> None:
    """Health reports and the state line often have no subscriber (16 too); their
    packet ids are no outbox entry's. Paho reuses ids after 65,535 publishes: the
    fact that gets one must not be taken for unheard (published twice, and a
    spurious hold of the whole outbox)."""
    service, client = _service(tmp_path)
    service.connected.set()
    health = client.publish("vitrine/v1/s1/health/reader/fx1", b"{}", qos=1, retain=True)
    client.puback(health, NO_MATCHING_SUBSCRIBERS)
    (fact,) = _facts(1)
    service._outbox = deque([fact])
    service._prune_outbox()  # nothing delivered yet: only forgets the health report's id
    client.next_mid = health.mid  # wrapped around
    service._republish()
    (info,) = client.sent(fact.payload)
    assert info.mid == health.mid
    client.puback(info, 0)
    service._prune_outbox()
    assert not service._outbox, "a heard fact leaves the outbox"
    assert service._hold_until == 0.0, "and holds nothing"
    assert len(client.sent(fact.payload)) == 1

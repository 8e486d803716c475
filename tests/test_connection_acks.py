"""ConnectionAcks: an inbound message is acknowledged only on the connection that delivered it.

A unit test with a recording stand-in for paho's ``ack`` (the real broker case is
``tests/reliability/test_broker_restart.py``).
"""

from __future__ import annotations

from typing import Any, cast

import paho.mqtt.client as mqtt

from vitrine.runtime.mqtt import ConnectionAcks


class _Recorder:
    def __init__(self) -> None:
        self.sent: list[tuple[int, int]] = []

    def ack(self, mid: int, qos: int) -> Any:
        self.sent.append((mid, qos))


def _acks() -> tuple[ConnectionAcks, _Recorder]:
    client = _Recorder()
    return ConnectionAcks(cast(mqtt.Client, client)), client


def test_an_ack_goes_out_on_the_connection_that_delivered_the_message() -> None:
    acks, client = _acks()
    acks.connected()
    first = acks.generation
    assert acks.ack(first, 7, 1)
    assert client.sent == [(7, 1)] and acks.stale == 0


def test_no_ack_while_disconnected_nor_for_a_message_of_an_earlier_connection() -> None:
    acks, client = _acks()
    acks.connected()
    before = acks.generation
    acks.disconnected()
    assert not acks.ack(before, 1, 1)  # the connection is gone
    acks.connected()  # the broker may have restarted: mid 2 of before names nothing now
    assert not acks.ack(before, 2, 1)
    assert acks.ack(acks.generation, 2, 1)  # the redelivered copy is acked
    assert client.sent == [(2, 1)] and acks.stale == 2


def test_qos_0_needs_no_ack() -> None:
    acks, client = _acks()
    assert acks.ack(0, 0, 0) and client.sent == []

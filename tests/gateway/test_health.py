"""Reader and scanner ``connected`` state from the vendors' own status lines.

Payloads per WIRE-FORMATS.md: Impinj's ``connectMessage``/``willMessage``
(``connected`` / ``connection lost``, plain text on the will topic), ESPresense's
LWT on ``espresense/rooms/<room>/status`` (``online``/``offline``), and the LLRP
bridge's ``{"LlrpBridge": {"status": …}}``.
"""

from __future__ import annotations

import pytest

from gateway.adapters import detect_format, parse
from gateway.health import HealthBook
from gateway.reads import DeviceEvent


def _connected_after(fmt: str, payloads: list[bytes], topic: str | None = None) -> bool | None:
    book = HealthBook()
    for t, payload in enumerate(payloads):
        for out in parse(fmt, payload, topic=topic, reader="r1"):
            assert isinstance(out, DeviceEvent)
            book.event("reader", "r1", out, float(t))
    health = book.device("reader", "r1")
    assert health is not None
    report = health.report(float(len(payloads)))
    assert isinstance(report["connected"], bool | None)
    return report["connected"]


@pytest.mark.parametrize(
    ("fmt", "topic", "up", "down"),
    [
        ("impinj", "impinj/status", b"connected", b"connection lost"),
        ("espresense", "espresense/rooms/women/status", b"online", b"offline"),
        ("llrp", None, b'{"LlrpBridge":{"status":"connected"}}',
         b'{"LlrpBridge":{"status":"disconnected","reason":"reader closed the connection"}}'),
    ],
)  # fmt: skip
def test_status_lines_set_and_clear_connected(
    fmt: str, topic: str | None, up: bytes, down: bytes
) -> None:
    assert _connected_after(fmt, [up], topic) is True
    assert _connected_after(fmt, [up, down], topic) is False
    assert _connected_after(fmt, [down, up], topic) is True


def test_other_status_words_leave_connected_unknown() -> None:
    assert _connected_after("impinj", [b"firmware 8.4.1"], "impinj/status") is None


@pytest.mark.parametrize(
    "payload",
    [b'{"KEEPALIVE":{}}', b'{"LlrpBridge":{"status":"connected"}}',
     b'{"READER_EVENT_NOTIFICATION":{"ReaderEventNotificationData":{}}}'],
)  # fmt: skip
def test_llrp_bridge_payloads_are_auto_detected(payload: bytes) -> None:
    assert detect_format(payload) == "llrp"

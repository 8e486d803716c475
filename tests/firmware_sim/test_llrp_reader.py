"""The LLRP reader simulator: byte layouts from the LLRP 1.0.1 spec, a real TCP session.

Expected bytes are written out by hand from the standard's binary encoding
(§16: message header ver/type/length/id, TLV and TV parameters), not produced by
the simulator's own helpers. sllurp is used only as an independent *decoder* of
what the simulator sends and *encoder* of what it receives.
"""

from __future__ import annotations

import socket
import struct

import pytest
from sllurp.llrp import LLRPMessage
from sllurp.llrp_proto import LLRPROSpec

from firmware_sim.llrp_reader import (
    LlrpError,
    LlrpReaderSimulator,
    MessageType,
    ReportSelector,
    RoSpec,
    Sighting,
    SimTag,
    crc16_gen2,
    decode_header,
    encode_message,
    encode_ro_access_report,
    encode_tag_report_data,
    iter_params,
    llrp_status,
    parse_rospec,
    parse_tag,
)
from firmware_sim.llrp_reader import encode_connection_event as connection_event

EPC = bytes.fromhex("3034257BF7194E4000001A85")  # TDS Annex E.3 SGTIN-96
T0 = 1_700_000_000_000_000  # µs


def test_message_header_is_version_1_type_length_id() -> None:
    # KEEPALIVE (62), no body: 0b000_001_0000111110, length 10, id 7.
    assert encode_message(MessageType.KEEPALIVE, 7) == bytes.fromhex("043e0000000a00000007")
    assert decode_header(bytes.fromhex("043e0000000a00000007")) == (1, 62, 10, 7)
    with pytest.raises(LlrpError):
        decode_header(bytes.fromhex("043e0000000300000007"))  # shorter than a header


def test_llrp_status_tlv_layout() -> None:
    # LLRPStatus 287 = 0x011F, length 4+2+2+2, StatusCode 109, utf8v "ab".
    assert llrp_status(109, "ab") == bytes.fromhex("011f000a006d00026162")


def test_tag_report_data_with_epc96_tv_and_selected_fields() -> None:
    sighting = Sighting(EPC, antenna=2, peak_rssi=-52, first_seen_us=T0, last_seen_us=T0 + 5)
    sighting.count = 3
    selector = ReportSelector(
        antenna_id=True, peak_rssi=True, first_seen=True, last_seen=False, tag_seen_count=True
    )
    expected = (
        "00f0" "0022"  # TagReportData 240, 4 + 13 + 3 + 2 + 9 + 3 = 34 bytes
        "8d" "3034257bf7194e4000001a85"  # EPC-96: TV type 13, 96 bits
        "81" "0002"  # AntennaID: TV 1, u16
        "86" "cc"  # PeakRSSI: TV 6, s8 (-52)
        "82" + f"{T0:016x}"  # FirstSeenTimestampUTC: TV 2, u64 µs
        + "88" "0003"  # TagSeenCount: TV 8, u16
    )  # fmt: skip
    assert encode_tag_report_data(sighting, selector).hex() == expected


def test_a_non_96_bit_epc_is_an_epcdata_tlv_with_its_bit_length() -> None:
    sighting = Sighting(bytes.fromhex("E2801160"), 1, -60, T0, T0)
    selector = ReportSelector(
        antenna_id=False, peak_rssi=False, first_seen=False, last_seen=False, tag_seen_count=False
    )
    # TagReportData(4) › EPCData 241 = 0x00F1, length 4+2+4, EPCLengthBits 32.
    assert encode_tag_report_data(sighting, selector).hex() == "00f0000e00f1000a0020e2801160"


def test_connection_attempt_event_layout() -> None:
    message = connection_event(5, T0, 0)
    assert message.hex() == (
        "043f" "00000020" "00000005"  # READER_EVENT_NOTIFICATION 63, 10 + 22 bytes
        "00f6" "0016"  # ReaderEventNotificationData 246, 4 + 12 + 6 bytes
        "0080" "000c" + f"{T0:016x}"  # UTCTimestamp 128, u64 µs
        + "0100" "0006" "0000"  # ConnectionAttemptEvent 256, Status 0 = Success
    )  # fmt: skip


def test_gen2_crc16_check_value() -> None:
    # CRC-16/GENIBUS (the Gen2 CRC-16) check value over "123456789" is 0xD64E.
    assert crc16_gen2(b"123456789") == 0xD64E


def test_iter_params_rejects_bad_lengths() -> None:
    with pytest.raises(LlrpError):
        list(iter_params(bytes.fromhex("00f00002")))  # length below its own header
    with pytest.raises(LlrpError):
        list(iter_params(bytes.fromhex("00f00010aa")))  # longer than the data
    with pytest.raises(LlrpError):
        list(iter_params(bytes.fromhex("ff00")))  # TV type 127 is not defined


def test_parse_rospec_from_hand_built_bytes() -> None:
    def tlv(kind: int, body: bytes) -> bytes:
        return struct.pack("!HH", kind, 4 + len(body)) + body

    # Bits 3, 5, 6, 7 of ten: EnableAntennaID, EnablePeakRSSI, EnableFirst/LastSeenTimestamp.
    selector = tlv(238, struct.pack("!H", 0b0001_0111_0000_0000))
    rospec = (
        struct.pack("!IBB", 9, 0, 0)
        + tlv(178, tlv(179, b"\x01") + tlv(182, struct.pack("!BI", 0, 0)))
        + tlv(
            183,
            struct.pack("!HHH", 2, 1, 3)
            + tlv(
                184, struct.pack("!BI", 3, 0) + tlv(185, struct.pack("!BxHHHI", 0, 50, 0, 0, 700))
            )
            + tlv(186, struct.pack("!HB", 4, 1)),
        )
        + tlv(237, struct.pack("!BH", 1, 0) + selector)
    )
    spec = parse_rospec(rospec)
    assert spec.rospec_id == 9
    assert spec.antennas == (1, 3)
    assert (spec.aispec_stop, spec.aispec_tags, spec.aispec_duration_ms) == (3, 50, 700)
    assert spec.inventory_parameter_spec_id == 4
    assert spec.selector == ReportSelector(
        antenna_id=True, peak_rssi=True, first_seen=True, last_seen=True, tag_seen_count=False
    )


def test_sllurp_decodes_the_simulators_report() -> None:
    spec = RoSpec(rospec_id=1, antennas=(0,), selector=ReportSelector(rospec_id=True))
    sightings = [
        Sighting(EPC, 1, -48, T0, T0 + 100, count=4),
        Sighting(b"\xe2\x80", 3, -70, T0, T0),
    ]
    report = LLRPMessage(msgbytes=encode_ro_access_report(42, sightings, spec)).msgdict
    first, second = report["RO_ACCESS_REPORT"]["TagReportData"]
    assert first["EPC"] == b"3034257bf7194e4000001a85"
    assert (first["AntennaID"], first["PeakRSSI"], first["TagSeenCount"]) == (1, -48, 4)
    assert (first["FirstSeenTimestampUTC"], first["LastSeenTimestampUTC"]) == (T0, T0 + 100)
    assert first["ROSpecID"] == 1
    assert second["EPC"] == b"e280" and second["AntennaID"] == 3


def test_the_simulator_decodes_sllurps_add_rospec() -> None:
    rospec = LLRPROSpec(
        None,
        7,
        antennas=(1, 2),
        report_every_n_tags=25,
        report_timeout_ms=400,
        tag_content_selector={"EnableFirstSeenTimestamp": True, "EnablePeakRSSI": True},
    )
    wire = LLRPMessage(msgdict={"ADD_ROSPEC": {"ID": 1, "ROSpecID": 7, "ROSpec": rospec}}).msgbytes
    (_kind, body) = next(iter(iter_params(wire[10:])))
    spec = parse_rospec(body)
    assert (spec.rospec_id, spec.antennas, spec.start_immediate) == (7, (1, 2), True)
    assert (spec.aispec_stop, spec.aispec_tags, spec.aispec_duration_ms) == (3, 25, 400)
    assert spec.selector.first_seen and spec.selector.peak_rssi and spec.selector.rospec_id


def test_parse_tag() -> None:
    assert parse_tag("3034257bf7194e4000001a85:2:-61.5") == SimTag(
        "3034257BF7194E4000001A85", 2, -61.5
    )
    for bad in ("zz:1", "3034:0", "303:1", "3034"):
        with pytest.raises(ValueError):
            parse_tag(bad)


# ------------------------------------------------------------- TCP session


def _read_message(sock: socket.socket) -> tuple[int, int, bytes]:
    header = _read_exactly(sock, 10)
    _version, kind, length, msg_id = decode_header(header)
    return kind, msg_id, _read_exactly(sock, length - 10)


def _read_exactly(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise EOFError
        data += chunk
    return data


def test_a_session_over_tcp() -> None:
    with (
        LlrpReaderSimulator([SimTag(EPC.hex(), 1)], port=0, round_s=0.02) as sim,
        socket.create_connection(("127.0.0.1", sim.port), timeout=5) as client,
    ):
        kind, _, body = _read_message(client)
        assert kind == MessageType.READER_EVENT_NOTIFICATION
        assert body.endswith(bytes.fromhex("010000060000"))  # ConnectionAttemptEvent Success

        # A second client while one is connected: status 2, then closed.
        with socket.create_connection(("127.0.0.1", sim.port), timeout=5) as other:
            kind, _, body = _read_message(other)
            assert body.endswith(bytes.fromhex("010000060002"))
            assert other.recv(1) == b""

        client.sendall(encode_message(MessageType.GET_READER_CAPABILITIES, 11, b"\x00"))
        kind, msg_id, body = _read_message(client)
        assert (kind, msg_id) == (MessageType.GET_READER_CAPABILITIES_RESPONSE, 11)
        params = dict(iter_params(body))
        assert params[287][:2] == b"\x00\x00"  # LLRPStatus Success
        assert struct.unpack_from("!H", params[137]) == (4,)  # 4 antennas

        client.sendall(encode_message(1000 & 0x3FF - 1, 12))  # unsupported type 999
        kind, msg_id, body = _read_message(client)
        assert (kind, msg_id) == (MessageType.ERROR_MESSAGE, 12)
        assert body[4:6] == struct.pack("!H", 109)  # M_UnsupportedMessage

        client.sendall(bytes.fromhex("083e0000000a0000000d"))  # version 2
        kind, msg_id, body = _read_message(client)
        assert (kind, msg_id, body[4:6]) == (MessageType.ERROR_MESSAGE, 13, b"\x00\x6e")

        client.sendall(encode_message(MessageType.ENABLE_ROSPEC, 14, struct.pack("!I", 5)))
        kind, msg_id, body = _read_message(client)
        assert (kind, msg_id) == (MessageType.ENABLE_ROSPEC_RESPONSE, 14)
        assert body[4:6] == struct.pack("!H", 300)  # A_Invalid: no such ROSpec

        client.sendall(encode_message(MessageType.CLOSE_CONNECTION, 15))
        kind, msg_id, body = _read_message(client)
        assert (kind, msg_id, body[4:6]) == (MessageType.CLOSE_CONNECTION_RESPONSE, 15, b"\0\0")
        with pytest.raises(EOFError):
            _read_message(client)

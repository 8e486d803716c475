"""A simulated LLRP reader: a TCP server speaking the LLRP 1.0.1 binary protocol.

Built to the EPCglobal *Low Level Reader Protocol (LLRP) 1.0.1* standard (binary
encoding, §16 "Binary Encoding for LLRP"), with message and parameter type numbers
and field layouts checked against the LLRP Toolkit's machine-readable definition
``llrp-1x0-def.xml`` (as generated into ``llrpjs/llrpjs`` ``src/def-td.ts``) and
Wireshark's LLRP dissector. It is independent code: it never imports sllurp or the
gateway (sllurp is only used to cross-check it in the tests).

Wire basics (LLRP 1.0.1 §16.1):

* **Message header**, 10 bytes: 3 reserved bits, 3-bit version (1 for LLRP 1.0.1),
  10-bit message type; u32 message length (header included); u32 message ID. A
  response carries the ID of its request.
* **TLV parameter**: 6 reserved bits, 10-bit type, u16 length (header included),
  value. **TV parameter** (types 1…127, fixed length, used inside reports): one
  byte ``0x80 | type``, then the value.

What it does, as a reader would:

* On accept it sends ``READER_EVENT_NOTIFICATION`` with ``ConnectionAttemptEvent``
  ``Success``; a second client while one is connected gets status 2 ("a client
  initiated connection already exists") and is closed (§13.2.6.10).
* Answers ``GET_READER_CAPABILITIES`` (general device, LLRP, regulatory with a
  transmit power table and one C1G2 RF mode, C1G2 LLRP capabilities),
  ``GET_READER_CONFIG``, ``SET_READER_CONFIG`` (takes ``KeepaliveSpec``),
  ``ADD/DELETE/ENABLE/DISABLE/START/STOP_ROSPEC``, ``DELETE_ACCESSSPEC``,
  ``CLOSE_CONNECTION``, each with ``LLRPStatus``; ``ENABLE_EVENTS_AND_REPORTS``
  has no response (§10.1.1 lists none); anything else gets ``ERROR_MESSAGE``
  ``M_UnsupportedMessage``; a header with another version ``M_UnsupportedVersion``.
* Runs enabled ROSpecs (start trigger Immediate on enable, or ``START_ROSPEC``):
  every ``round_s`` each tag in the field of an antenna of the AISpec is singulated;
  sightings accumulate per (EPC, antenna) — ``TagSeenCount``, first/last seen,
  peak RSSI — and go out in ``RO_ACCESS_REPORT`` as the ``ROReportSpec`` says:
  after N ``TagReportData`` (N > 0), or at the end of the AISpec (stop trigger
  Duration, or Tag observation "upon N tags" with its timeout). A Null AISpec stop
  trigger with N = 0 never ends the AISpec, so, as on a real reader, nothing is
  reported until the ROSpec stops.
* ``TagReportData`` holds what the ``TagReportContentSelector`` enables: the EPC
  as ``EPC-96`` (TV 13) for 96-bit EPCs else ``EPCData`` (TLV 241), ``ROSpecID``,
  ``SpecIndex``, ``InventoryParameterSpecID``, ``AntennaID``, ``PeakRSSI`` (s8 dBm),
  ``ChannelIndex``, ``First/LastSeenTimestampUTC`` (u64 µs), ``TagSeenCount``,
  ``C1G2PC``, ``C1G2CRC``.
* ``KEEPALIVE`` every ``KeepaliveSpec.TimeInterval`` ms when periodic.

Test hooks: :meth:`LlrpReaderSimulator.drop_connections` cuts the TCP connection
without a word (a reader losing power or its network), ``set_tags`` changes what is
in the field, ``clock`` fakes the reader's clock (an unset one reports January 2000,
WIRE-FORMATS §3).
"""

from __future__ import annotations

import logging
import random
import select
import socket
import struct
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from contextlib import suppress
from dataclasses import dataclass, field

__all__ = [
    "DEFAULT_PORT",
    "LlrpError",
    "LlrpReaderSimulator",
    "MessageType",
    "ParamType",
    "ReportSelector",
    "RoSpec",
    "Sighting",
    "SimTag",
    "crc16_gen2",
    "decode_header",
    "encode_message",
    "encode_ro_access_report",
    "encode_tag_report_data",
    "iter_params",
    "parse_rospec",
    "parse_tag",
]

log = logging.getLogger(__name__)

#: IANA-assigned LLRP port (LLRP 1.0.1 §18.1).
DEFAULT_PORT = 5084
#: The version field of every LLRP 1.0.1 message header (§16.1.1).
LLRP_VERSION = 1
HEADER = struct.Struct("!HII")
TLV_HEADER = struct.Struct("!HH")


class MessageType:
    """LLRP 1.0.1 message type numbers (§16.1; ``llrp-1x0-def.xml`` ``typeNum``)."""

    GET_READER_CAPABILITIES = 1
    GET_READER_CONFIG = 2
    SET_READER_CONFIG = 3
    CLOSE_CONNECTION_RESPONSE = 4
    GET_READER_CAPABILITIES_RESPONSE = 11
    GET_READER_CONFIG_RESPONSE = 12
    SET_READER_CONFIG_RESPONSE = 13
    CLOSE_CONNECTION = 14
    ADD_ROSPEC = 20
    DELETE_ROSPEC = 21
    START_ROSPEC = 22
    STOP_ROSPEC = 23
    ENABLE_ROSPEC = 24
    DISABLE_ROSPEC = 25
    ADD_ROSPEC_RESPONSE = 30
    DELETE_ROSPEC_RESPONSE = 31
    START_ROSPEC_RESPONSE = 32
    STOP_ROSPEC_RESPONSE = 33
    ENABLE_ROSPEC_RESPONSE = 34
    DISABLE_ROSPEC_RESPONSE = 35
    DELETE_ACCESSSPEC = 41
    DELETE_ACCESSSPEC_RESPONSE = 51
    RO_ACCESS_REPORT = 61
    KEEPALIVE = 62
    READER_EVENT_NOTIFICATION = 63
    ENABLE_EVENTS_AND_REPORTS = 64
    KEEPALIVE_ACK = 72
    ERROR_MESSAGE = 100


class ParamType:
    """LLRP 1.0.1 parameter type numbers (§16.2; TV types are 1…127)."""

    # TV-encoded (§16.2.7.3)
    ANTENNA_ID = 1
    FIRST_SEEN_UTC = 2
    LAST_SEEN_UTC = 4
    PEAK_RSSI = 6
    CHANNEL_INDEX = 7
    TAG_SEEN_COUNT = 8
    ROSPEC_ID = 9
    INVENTORY_PARAMETER_SPEC_ID = 10
    C1G2_CRC = 11
    C1G2_PC = 12
    EPC_96 = 13
    SPEC_INDEX = 14
    # TLV-encoded
    UTC_TIMESTAMP = 128
    GENERAL_DEVICE_CAPABILITIES = 137
    RECEIVE_SENSITIVITY_TABLE_ENTRY = 139
    PER_ANTENNA_AIR_PROTOCOL = 140
    GPIO_CAPABILITIES = 141
    LLRP_CAPABILITIES = 142
    REGULATORY_CAPABILITIES = 143
    UHF_BAND_CAPABILITIES = 144
    TRANSMIT_POWER_LEVEL_TABLE_ENTRY = 145
    FREQUENCY_INFORMATION = 146
    FIXED_FREQUENCY_TABLE = 148
    ROSPEC = 177
    RO_BOUNDARY_SPEC = 178
    ROSPEC_START_TRIGGER = 179
    ROSPEC_STOP_TRIGGER = 182
    AISPEC = 183
    AISPEC_STOP_TRIGGER = 184
    TAG_OBSERVATION_TRIGGER = 185
    INVENTORY_PARAMETER_SPEC = 186
    IDENTIFICATION = 218
    KEEPALIVE_SPEC = 220
    ANTENNA_PROPERTIES = 221
    RO_REPORT_SPEC = 237
    TAG_REPORT_CONTENT_SELECTOR = 238
    TAG_REPORT_DATA = 240
    EPC_DATA = 241
    READER_EVENT_NOTIFICATION_DATA = 246
    CONNECTION_ATTEMPT_EVENT = 256
    LLRP_STATUS = 287
    C1G2_LLRP_CAPABILITIES = 327
    C1G2_UHF_RF_MODE_TABLE = 328
    C1G2_UHF_RF_MODE_TABLE_ENTRY = 329
    C1G2_EPC_MEMORY_SELECTOR = 348


#: ``LLRPStatus.StatusCode`` values used here (§16.2.8.1, Table "StatusCode").
STATUS_SUCCESS = 0
STATUS_UNSUPPORTED_MESSAGE = 109
STATUS_UNSUPPORTED_VERSION = 110
STATUS_A_INVALID = 300
#: ``ConnectionAttemptEvent.Status`` (§16.2.7.6.10).
CONNECTION_SUCCESS = 0
CONNECTION_CLIENT_EXISTS = 2
#: ``ROReportTrigger`` (§16.2.7.1): 0 none, 1 upon N or end of AISpec, 2 … of ROSpec.
REPORT_NONE, REPORT_END_OF_AISPEC, REPORT_END_OF_ROSPEC = 0, 1, 2
#: ``AISpecStopTriggerType`` (§16.2.4.2.1): 0 null, 1 duration, 2 GPI, 3 tag observation.
AISPEC_STOP_NULL, AISPEC_STOP_DURATION, AISPEC_STOP_TAG_OBSERVATION = 0, 1, 3
#: ``ROSpecStartTriggerType`` (§16.2.4.1.1.1): 1 = Immediate.
START_IMMEDIATE = 1

#: Reader identity in capabilities: vendor PEN 0 and model 0 say "not a real device".
_FIRMWARE = b"vitrine-sim-llrp 1.0"
#: One transmit power entry per 0.25 dB from 10 to 30 dBm, like a Speedway's table
#: (the client picks an index; 0 in sllurp means "the highest").
_POWER_TABLE = tuple(1000 + 25 * i for i in range(81))
#: ETSI EN 302 208 lower channels (kHz): the frequencies a European reader hops.
_FREQUENCIES_KHZ = (865_700, 866_300, 866_900, 867_500)
#: How long a blocked connection thread sleeps at most: keeps keepalives and
#: inventory rounds on time and lets stop() be noticed promptly.
_POLL_S = 0.05


#: A client that has not read for this long is gone: the connection is dropped.
_SEND_TIMEOUT_S = 10.0


class LlrpError(ValueError):
    """Bytes that are not well-formed LLRP."""


# ----------------------------------------------------------------- encoding


def encode_message(msg_type: int, msg_id: int, body: bytes = b"") -> bytes:
    """A whole message: header (ver 1, type, length incl. header, id) + body (§16.1.1)."""
    return HEADER.pack((LLRP_VERSION << 10) | msg_type, HEADER.size + len(body), msg_id) + body


def decode_header(data: bytes) -> tuple[int, int, int, int]:
    """``(version, type, length, id)`` of the message starting ``data``."""
    if len(data) < HEADER.size:
        raise LlrpError(f"LLRP header needs {HEADER.size} bytes, got {len(data)}")
    word, length, msg_id = HEADER.unpack_from(data)
    if length < HEADER.size:
        raise LlrpError(f"LLRP message length {length} is shorter than its header")
    return (word >> 10) & 0x7, word & 0x3FF, length, msg_id


def tlv(param_type: int, body: bytes = b"") -> bytes:
    """A TLV parameter: 6 reserved bits + 10-bit type, u16 length incl. header (§16.2.1)."""
    return TLV_HEADER.pack(param_type & 0x3FF, TLV_HEADER.size + len(body)) + body


def tv(param_type: int, value: bytes) -> bytes:
    """A TV parameter: ``1`` bit + 7-bit type, then the fixed-length value (§16.2.1)."""
    return bytes([0x80 | param_type]) + value


def utf8(text: str) -> bytes:
    """An LLRP ``utf8v`` field: u16 byte count, then the bytes (§16.2.1)."""
    raw = text.encode()
    return struct.pack("!H", len(raw)) + raw


def llrp_status(code: int = STATUS_SUCCESS, description: str = "") -> bytes:
    """``LLRPStatus`` (287): u16 StatusCode, utf8v ErrorDescription (§16.2.8.1)."""
    return tlv(ParamType.LLRP_STATUS, struct.pack("!H", code) + utf8(description))


def iter_params(data: bytes) -> Iterable[tuple[int, bytes]]:
    """``(type, value)`` of each parameter in ``data``; TV lengths are known by type."""
    pos = 0
    while pos < len(data):
        first = data[pos]
        if first & 0x80:
            kind = first & 0x7F
            size = _TV_SIZES.get(kind)
            if size is None:
                raise LlrpError(f"unknown TV parameter type {kind}")
            yield kind, data[pos + 1 : pos + 1 + size]
            pos += 1 + size
            continue
        if len(data) - pos < TLV_HEADER.size:
            raise LlrpError("truncated TLV parameter header")
        word, length = TLV_HEADER.unpack_from(data, pos)
        if length < TLV_HEADER.size or pos + length > len(data):
            raise LlrpError(f"TLV parameter {word & 0x3FF} has a bad length {length}")
        yield word & 0x3FF, data[pos + TLV_HEADER.size : pos + length]
        pos += length


#: Value sizes of the TV parameters (§16.2.7.3, LLRP 1.0.1 Table 16-2 "TV types").
_TV_SIZES = {1: 2, 2: 8, 3: 8, 4: 8, 5: 8, 6: 1, 7: 2, 8: 2, 9: 4, 10: 2, 11: 2, 12: 2,
             13: 12, 14: 2, 15: 2, 16: 4, 17: 2}  # fmt: skip


def crc16_gen2(data: bytes) -> int:
    """The EPC Gen2 CRC-16 (ISO/IEC 13239: poly 0x1021, preset 0xFFFF, ones' complement)."""
    crc = 0xFFFF
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
    return crc ^ 0xFFFF


# -------------------------------------------------------- ROSpec / reports


@dataclass(frozen=True, slots=True)
class ReportSelector:
    """``TagReportContentSelector`` (238): which fields each ``TagReportData`` holds.

    The ten enable bits are the first ten of a u16, in this order (§16.2.7.1), then
    ``C1G2EPCMemorySelector`` (348): EnableCRC, EnablePCBits.
    """

    rospec_id: bool = False
    spec_index: bool = False
    inventory_parameter_spec_id: bool = False
    antenna_id: bool = True
    channel_index: bool = False
    peak_rssi: bool = True
    first_seen: bool = True
    last_seen: bool = True
    tag_seen_count: bool = True
    access_spec_id: bool = False
    crc: bool = False
    pc: bool = False

    @classmethod
    def decode(cls, body: bytes) -> ReportSelector:
        if len(body) < 2:
            raise LlrpError("TagReportContentSelector is shorter than its flags")
        (bits,) = struct.unpack_from("!H", body)
        flags = [bool(bits & (0x8000 >> i)) for i in range(10)]
        crc = pc = False
        for kind, value in iter_params(body[2:]):
            if kind == ParamType.C1G2_EPC_MEMORY_SELECTOR and value:
                crc, pc = bool(value[0] & 0x80), bool(value[0] & 0x40)
        names = (
            "rospec_id", "spec_index", "inventory_parameter_spec_id", "antenna_id",
            "channel_index", "peak_rssi", "first_seen", "last_seen", "tag_seen_count",
            "access_spec_id",
        )  # fmt: skip
        return cls(**dict(zip(names, flags, strict=True)), crc=crc, pc=pc)


@dataclass(frozen=True, slots=True)
class RoSpec:
    """What the simulator takes from an ``ADD_ROSPEC``'s ``ROSpec`` (177)."""

    rospec_id: int
    antennas: tuple[int, ...]
    start_immediate: bool = True
    report_trigger: int = REPORT_END_OF_AISPEC
    report_n: int = 0
    selector: ReportSelector = field(default_factory=ReportSelector)
    aispec_stop: int = AISPEC_STOP_NULL
    #: Duration trigger (ms), or the tag-observation trigger's timeout (ms; 0 = none).
    aispec_duration_ms: int = 0
    #: Tag-observation trigger "upon N tags" (0 = not that trigger).
    aispec_tags: int = 0
    inventory_parameter_spec_id: int = 1


def parse_rospec(body: bytes) -> RoSpec:
    """Decode the parts of a ``ROSpec`` parameter value the simulator acts on.

    Layouts (§16.2.4): ROSpec = u32 ROSpecID, u8 Priority, u8 CurrentState, then
    ROBoundarySpec, SpecParameter (AISpec…), ROReportSpec. ROSpecStartTrigger =
    u8 type …; AISpec = u16 AntennaCount, u16 × n AntennaIDs, AISpecStopTrigger
    (u8 type, u32 DurationTrigger, TagObservationTrigger), InventoryParameterSpec
    (u16 ID, u8 ProtocolID, …); TagObservationTrigger = u8 TriggerType, u8 reserved,
    u16 NumberOfTags, u16 NumberOfAttempts, u16 T, u32 Timeout; ROReportSpec = u8
    ROReportTrigger, u16 N, TagReportContentSelector.
    """
    if len(body) < 6:
        raise LlrpError("ROSpec is shorter than its fields")
    (rospec_id,) = struct.unpack_from("!I", body)
    spec: dict[str, object] = {"rospec_id": rospec_id, "antennas": ()}
    for kind, value in iter_params(body[6:]):
        if kind == ParamType.RO_BOUNDARY_SPEC:
            for sub, sub_value in iter_params(value):
                if sub == ParamType.ROSPEC_START_TRIGGER and sub_value:
                    spec["start_immediate"] = sub_value[0] == START_IMMEDIATE
        elif kind == ParamType.AISPEC:
            (count,) = struct.unpack_from("!H", value)
            spec["antennas"] = struct.unpack_from(f"!{count}H", value, 2)
            for sub, sub_value in iter_params(value[2 + 2 * count :]):
                if sub == ParamType.AISPEC_STOP_TRIGGER:
                    stop_type, duration = struct.unpack_from("!BI", sub_value)
                    spec["aispec_stop"] = stop_type
                    spec["aispec_duration_ms"] = duration
                    for obs, obs_value in iter_params(sub_value[5:]):
                        if obs == ParamType.TAG_OBSERVATION_TRIGGER:
                            trigger, n_tags, _attempts, _t, timeout = struct.unpack_from(
                                "!BxHHHI", obs_value
                            )
                            spec["aispec_tags"] = n_tags if trigger == 0 else 0
                            spec["aispec_duration_ms"] = timeout
                elif sub == ParamType.INVENTORY_PARAMETER_SPEC:
                    (spec["inventory_parameter_spec_id"],) = struct.unpack_from("!H", sub_value)
        elif kind == ParamType.RO_REPORT_SPEC:
            trigger, n = struct.unpack_from("!BH", value)
            spec["report_trigger"], spec["report_n"] = trigger, n
            for sub, sub_value in iter_params(value[3:]):
                if sub == ParamType.TAG_REPORT_CONTENT_SELECTOR:
                    spec["selector"] = ReportSelector.decode(sub_value)
    return RoSpec(**spec)  # type: ignore[arg-type]


@dataclass(slots=True)
class Sighting:
    """One (EPC, antenna) seen during a report period."""

    epc: bytes
    antenna: int
    peak_rssi: int
    first_seen_us: int
    last_seen_us: int
    count: int = 1


def encode_tag_report_data(
    s: Sighting, selector: ReportSelector, *, rospec_id: int = 1, ips_id: int = 1
) -> bytes:
    """``TagReportData`` (240) with what ``selector`` enables, in §16.2.7.3 order."""
    if len(s.epc) == 12:
        body = tv(ParamType.EPC_96, s.epc)
    else:  # EPCData: u16 EPCLengthBits, then the bits padded to whole bytes
        body = tlv(ParamType.EPC_DATA, struct.pack("!H", 8 * len(s.epc)) + s.epc)
    if selector.rospec_id:
        body += tv(ParamType.ROSPEC_ID, struct.pack("!I", rospec_id))
    if selector.spec_index:
        body += tv(ParamType.SPEC_INDEX, struct.pack("!H", 1))
    if selector.inventory_parameter_spec_id:
        body += tv(ParamType.INVENTORY_PARAMETER_SPEC_ID, struct.pack("!H", ips_id))
    if selector.antenna_id:
        body += tv(ParamType.ANTENNA_ID, struct.pack("!H", s.antenna))
    if selector.peak_rssi:
        body += tv(ParamType.PEAK_RSSI, struct.pack("!b", s.peak_rssi))
    if selector.channel_index:
        body += tv(ParamType.CHANNEL_INDEX, struct.pack("!H", 1))
    if selector.first_seen:
        body += tv(ParamType.FIRST_SEEN_UTC, struct.pack("!Q", s.first_seen_us))
    if selector.last_seen:
        body += tv(ParamType.LAST_SEEN_UTC, struct.pack("!Q", s.last_seen_us))
    if selector.tag_seen_count:
        body += tv(ParamType.TAG_SEEN_COUNT, struct.pack("!H", min(s.count, 0xFFFF)))
    # Gen2 PC word: EPC length in 16-bit words in its top five bits.
    pc = (len(s.epc) // 2) << 11
    if selector.pc:
        body += tv(ParamType.C1G2_PC, struct.pack("!H", pc))
    if selector.crc:
        body += tv(ParamType.C1G2_CRC, struct.pack("!H", crc16_gen2(pc.to_bytes(2) + s.epc)))
    return tlv(ParamType.TAG_REPORT_DATA, body)


def encode_ro_access_report(msg_id: int, sightings: Sequence[Sighting], spec: RoSpec) -> bytes:
    """``RO_ACCESS_REPORT`` (61): one ``TagReportData`` per sighting (§13.2.3)."""
    body = b"".join(
        encode_tag_report_data(
            s, spec.selector, rospec_id=spec.rospec_id, ips_id=spec.inventory_parameter_spec_id
        )
        for s in sightings
    )
    return encode_message(MessageType.RO_ACCESS_REPORT, msg_id, body)


def encode_connection_event(msg_id: int, utc_us: int, status: int) -> bytes:
    """``READER_EVENT_NOTIFICATION`` (63) › ``ReaderEventNotificationData`` (246) ›
    ``UTCTimestamp`` (128, u64 µs) + ``ConnectionAttemptEvent`` (256, u16 status)."""
    data = tlv(ParamType.UTC_TIMESTAMP, struct.pack("!Q", utc_us)) + tlv(
        ParamType.CONNECTION_ATTEMPT_EVENT, struct.pack("!H", status)
    )
    return encode_message(
        MessageType.READER_EVENT_NOTIFICATION,
        msg_id,
        tlv(ParamType.READER_EVENT_NOTIFICATION_DATA, data),
    )


def encode_capabilities(antennas: int) -> bytes:
    """The body of ``GET_READER_CAPABILITIES_RESPONSE`` (11) for "All" (§16.1.3.2)."""
    general = struct.pack("!HHII", antennas, 0xC000, 0, 0) + utf8(_FIRMWARE.decode())
    general += tlv(ParamType.RECEIVE_SENSITIVITY_TABLE_ENTRY, struct.pack("!Hh", 1, 0))
    general += tlv(ParamType.GPIO_CAPABILITIES, struct.pack("!HH", 0, 0))
    for port in range(1, antennas + 1):  # u16 AntennaID, u16 NumProtocols, u8 × n (1 = C1G2)
        general += tlv(ParamType.PER_ANTENNA_AIR_PROTOCOL, struct.pack("!HHB", port, 1, 1))
    # Flags, u8 MaxPriority, u16 ClientRequestOpSpecTimeout, u32 × 5 maxima (§16.2.3.2).
    llrp = struct.pack("!BBHIIIII", 0, 7, 0, 1, 1, 1, 0, 0)
    powers = b"".join(
        tlv(ParamType.TRANSMIT_POWER_LEVEL_TABLE_ENTRY, struct.pack("!Hh", i + 1, p))
        for i, p in enumerate(_POWER_TABLE)
    )
    fixed = struct.pack("!H", len(_FREQUENCIES_KHZ)) + b"".join(
        struct.pack("!I", f) for f in _FREQUENCIES_KHZ
    )
    frequency = tlv(
        ParamType.FREQUENCY_INFORMATION, b"\x00" + tlv(ParamType.FIXED_FREQUENCY_TABLE, fixed)
    )
    # C1G2UHFRFModeTableEntry: u32 ModeIdentifier, DR/conformance bits, u8 M, u8 FLM,
    # u8 spectral mask, u32 BDR, PIE, MinTari, MaxTari, StepTari (§16.3.1.1.2.1):
    # mode 0 = Miller-4 (M 2) PR-ASK (FLM 0) dense-reader mask (3), 256 kHz BLF so
    # 64 kbps backscatter, PIE 2.0 (×1000), Tari 25 µs (in ns): a common DRM mode.
    mode = struct.pack("!IBBBBIIIII", 0, 0x80, 2, 0, 3, 64_000, 2000, 25_000, 25_000, 0)
    modes = tlv(ParamType.C1G2_UHF_RF_MODE_TABLE, tlv(ParamType.C1G2_UHF_RF_MODE_TABLE_ENTRY, mode))
    band = tlv(ParamType.UHF_BAND_CAPABILITIES, powers + frequency + modes)
    # u16 CountryCode (ISO 3166 numeric 250 = France),
    # u16 CommunicationsStandard (2 = ETSI 302 208).
    regulatory = tlv(ParamType.REGULATORY_CAPABILITIES, struct.pack("!HH", 250, 2) + band)
    return (
        llrp_status()
        + tlv(ParamType.GENERAL_DEVICE_CAPABILITIES, general)
        + tlv(ParamType.LLRP_CAPABILITIES, llrp)
        + regulatory
        + tlv(ParamType.C1G2_LLRP_CAPABILITIES, struct.pack("!BH", 0, 1))
    )


# -------------------------------------------------------------------- tags


@dataclass(frozen=True, slots=True)
class SimTag:
    """A tag in the field of one antenna, with its mean peak RSSI (dBm)."""

    epc: str
    antenna: int
    rssi_dbm: float = -55.0

    @property
    def epc_bytes(self) -> bytes:
        return bytes.fromhex(self.epc)


def parse_tag(text: str) -> SimTag:
    """``EPCHEX:ANTENNA[:RSSI]``, e.g. ``3034257BF4000040000003E8:1:-52``."""
    parts = text.split(":")
    if len(parts) not in (2, 3):
        raise ValueError(f"{text!r}: expected EPCHEX:ANTENNA[:RSSI]")
    epc = parts[0].strip().upper()
    try:
        raw = bytes.fromhex(epc)
    except ValueError:
        raise ValueError(f"{text!r}: the EPC is not hex") from None
    if not raw or len(raw) % 2:
        raise ValueError(f"{text!r}: an EPC is a whole number of 16-bit words")
    antenna = int(parts[1])
    if not 1 <= antenna <= 0xFFFF:
        raise ValueError(f"{text!r}: antenna ports start at 1")
    rssi = float(parts[2]) if len(parts) == 3 else -55.0
    return SimTag(epc, antenna, rssi)


# ----------------------------------------------------------------- server


def _wall_us() -> int:
    return time.time_ns() // 1000


class _Connection:
    """One client session: its socket, its ROSpecs and what they have seen."""

    def __init__(self, sim: LlrpReaderSimulator, sock: socket.socket) -> None:
        self.sim = sim
        self.sock = sock
        self.buffer = b""
        self.rospecs: dict[int, RoSpec] = {}
        self.active: set[int] = set()
        self.enabled: set[int] = set()
        self.pending: dict[int, dict[tuple[bytes, int], Sighting]] = {}
        self.aispec_started: dict[int, float] = {}
        self.keepalive_s = 0.0
        self.next_keepalive = 0.0
        self.next_round = 0.0
        self.closed = False

    # -- I/O
    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def serve(self) -> None:
        self.send(encode_connection_event(self.sim.next_id(), self.sim.clock(), CONNECTION_SUCCESS))
        while not self.closed and not self.sim.stopping.is_set():
            readable, _, _ = select.select([self.sock], [], [], _POLL_S)
            if readable:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return
                self.buffer += chunk
                self._drain()
            now = time.monotonic()
            if self.keepalive_s and now >= self.next_keepalive:
                self.next_keepalive = now + self.keepalive_s
                self.send(encode_message(MessageType.KEEPALIVE, self.sim.next_id()))
            if self.active and now >= self.next_round:
                self.next_round = now + self.sim.round_s
                self._inventory_round(now)

    def _drain(self) -> None:
        while len(self.buffer) >= HEADER.size:
            version, kind, length, msg_id = decode_header(self.buffer)
            if len(self.buffer) < length:
                return
            body, self.buffer = self.buffer[HEADER.size : length], self.buffer[length:]
            if version != LLRP_VERSION:
                self._error(msg_id, STATUS_UNSUPPORTED_VERSION, f"version {version}")
                continue
            self.sim.received.append(kind)
            self._handle(kind, msg_id, body)

    def _respond(self, kind: int, msg_id: int, status: bytes | None = None) -> None:
        self.send(encode_message(kind, msg_id, status or llrp_status()))

    def _error(self, msg_id: int, code: int, description: str) -> None:
        self._respond(MessageType.ERROR_MESSAGE, msg_id, llrp_status(code, description))

    # -- messages
    def _handle(self, kind: int, msg_id: int, body: bytes) -> None:
        m = MessageType
        if kind == m.GET_READER_CAPABILITIES:
            self.send(
                encode_message(
                    m.GET_READER_CAPABILITIES_RESPONSE,
                    msg_id,
                    encode_capabilities(self.sim.antennas),
                )
            )
        elif kind == m.GET_READER_CONFIG:
            self.send(encode_message(m.GET_READER_CONFIG_RESPONSE, msg_id, self._config()))
        elif kind == m.SET_READER_CONFIG:
            for param, value in iter_params(body[1:]):
                if param == ParamType.KEEPALIVE_SPEC:
                    trigger, interval_ms = struct.unpack_from("!BI", value)
                    self.keepalive_s = interval_ms / 1000 if trigger == 1 else 0.0
                    self.next_keepalive = time.monotonic() + self.keepalive_s
            self._respond(m.SET_READER_CONFIG_RESPONSE, msg_id)
        elif kind == m.ADD_ROSPEC:
            specs = [parse_rospec(v) for p, v in iter_params(body) if p == ParamType.ROSPEC]
            if len(specs) != 1 or specs[0].rospec_id == 0 or specs[0].rospec_id in self.rospecs:
                self._respond(
                    m.ADD_ROSPEC_RESPONSE, msg_id, llrp_status(STATUS_A_INVALID, "ROSpecID")
                )
                return
            self.rospecs[specs[0].rospec_id] = specs[0]
            self._respond(m.ADD_ROSPEC_RESPONSE, msg_id)
        elif kind in _ROSPEC_OPS:
            (rospec_id,) = struct.unpack_from("!I", body)
            ids = list(self.rospecs) if rospec_id == 0 else [rospec_id]
            if any(i not in self.rospecs for i in ids):
                self._respond(_ROSPEC_OPS[kind], msg_id, llrp_status(STATUS_A_INVALID, "ROSpecID"))
                return
            for i in ids:
                self._rospec_op(kind, i)
            self._respond(_ROSPEC_OPS[kind], msg_id)
        elif kind == m.DELETE_ACCESSSPEC:
            (spec_id,) = struct.unpack_from("!I", body)  # none exist: only 0 ("all") is valid
            status = (
                llrp_status() if spec_id == 0 else llrp_status(STATUS_A_INVALID, "AccessSpecID")
            )
            self._respond(m.DELETE_ACCESSSPEC_RESPONSE, msg_id, status)
        elif kind == m.CLOSE_CONNECTION:
            self._respond(m.CLOSE_CONNECTION_RESPONSE, msg_id)
            self.closed = True
        elif kind in (m.KEEPALIVE_ACK, m.ENABLE_EVENTS_AND_REPORTS):
            pass  # neither has a response (§13.2.5.2, §13.2.6.4)
        else:
            self._error(msg_id, STATUS_UNSUPPORTED_MESSAGE, f"message type {kind}")

    def _config(self) -> bytes:
        # Identification (218): u8 IDType (1 = EPC), u8v ReaderID (u16 count + bytes).
        ident = tlv(ParamType.IDENTIFICATION, b"\x01" + struct.pack("!H", 4) + b"VSIM")
        # AntennaProperties (221): bit 7 AntennaConnected, u16 AntennaID, s16 gain (cdBi).
        antennas = b"".join(
            tlv(ParamType.ANTENNA_PROPERTIES, struct.pack("!BHh", 0x80, p, 600))
            for p in range(1, self.sim.antennas + 1)
        )
        keepalive = tlv(
            ParamType.KEEPALIVE_SPEC,
            struct.pack("!BI", 1 if self.keepalive_s else 0, int(self.keepalive_s * 1000)),
        )
        return llrp_status() + ident + antennas + keepalive

    def _rospec_op(self, kind: int, rospec_id: int) -> None:
        m = MessageType
        spec = self.rospecs[rospec_id]
        if kind == m.ENABLE_ROSPEC:
            self.enabled.add(rospec_id)
            if spec.start_immediate:
                self._start(rospec_id)
        elif kind == m.START_ROSPEC and rospec_id in self.enabled:
            self._start(rospec_id)
        elif kind in (m.STOP_ROSPEC, m.DISABLE_ROSPEC, m.DELETE_ROSPEC):
            if rospec_id in self.active:
                self.active.discard(rospec_id)
                if spec.report_trigger != REPORT_NONE:  # the ROSpec (and its AISpec) ended
                    self._report(spec)
            if kind != m.STOP_ROSPEC:
                self.enabled.discard(rospec_id)
            if kind == m.DELETE_ROSPEC:
                del self.rospecs[rospec_id]
                self.pending.pop(rospec_id, None)

    def _start(self, rospec_id: int) -> None:
        self.active.add(rospec_id)
        self.aispec_started[rospec_id] = time.monotonic()
        self.pending.setdefault(rospec_id, {})

    def _inventory_round(self, now: float) -> None:
        at = self.sim.clock()
        tags = self.sim.tags_snapshot()
        for rospec_id in sorted(self.active):
            spec = self.rospecs[rospec_id]
            seen = self.pending.setdefault(rospec_id, {})
            ports = set(spec.antennas)
            for tag in tags:
                if 0 not in ports and tag.antenna not in ports:  # AntennaID 0 = all (§16.2.4.2)
                    continue
                if tag.antenna > self.sim.antennas or self.sim.rng.random() >= self.sim.read_rate:
                    continue
                rssi = max(-128, min(127, round(tag.rssi_dbm + self.sim.rng.gauss(0, 1.5))))
                key = (tag.epc_bytes, tag.antenna)
                s = seen.get(key)
                if s is None:
                    seen[key] = Sighting(key[0], tag.antenna, rssi, at, at)
                else:
                    s.count += 1
                    s.last_seen_us = at
                    s.peak_rssi = max(s.peak_rssi, rssi)
            if spec.report_trigger == REPORT_NONE:
                continue
            if spec.report_n and len(seen) >= spec.report_n:
                self._report(spec)
                continue
            started = self.aispec_started[rospec_id]
            ended = (
                spec.aispec_stop == AISPEC_STOP_DURATION
                and (now - started) * 1000 >= spec.aispec_duration_ms
            ) or (
                spec.aispec_stop == AISPEC_STOP_TAG_OBSERVATION
                and (
                    (spec.aispec_tags and len(seen) >= spec.aispec_tags)
                    or (
                        spec.aispec_duration_ms
                        and (now - started) * 1000 >= spec.aispec_duration_ms
                    )
                )
            )
            if ended and spec.report_trigger == REPORT_END_OF_AISPEC:
                self._report(spec)
                self.aispec_started[rospec_id] = now  # a Null ROSpec stop: the AISpec runs again
            elif ended:
                self.aispec_started[rospec_id] = now

    def _report(self, spec: RoSpec) -> None:
        seen = self.pending.get(spec.rospec_id)
        if not seen:
            return
        sightings = list(seen.values())
        seen.clear()
        self.send(encode_ro_access_report(self.sim.next_id(), sightings, spec))
        self.sim.count_report(len(sightings))


_ROSPEC_OPS = {
    MessageType.DELETE_ROSPEC: MessageType.DELETE_ROSPEC_RESPONSE,
    MessageType.START_ROSPEC: MessageType.START_ROSPEC_RESPONSE,
    MessageType.STOP_ROSPEC: MessageType.STOP_ROSPEC_RESPONSE,
    MessageType.ENABLE_ROSPEC: MessageType.ENABLE_ROSPEC_RESPONSE,
    MessageType.DISABLE_ROSPEC: MessageType.DISABLE_ROSPEC_RESPONSE,
}


class LlrpReaderSimulator:
    """A TCP LLRP reader on ``host:port`` (port 0: any free one, see :attr:`port`)."""

    def __init__(
        self,
        tags: Iterable[SimTag],
        *,
        host: str = "127.0.0.1",
        port: int = DEFAULT_PORT,
        antennas: int = 4,
        round_s: float = 0.1,
        read_rate: float = 1.0,
        seed: int = 1,
        clock: Callable[[], int] = _wall_us,
    ) -> None:
        """``round_s``: time between inventory rounds — 100 ms is the order of one Gen2
        inventory round of a few dozen tags in session 2; ``read_rate``: the chance a
        tag in the field answers in a round; ``clock``: the reader's UTC clock in µs."""
        self.antennas = antennas
        self.round_s = round_s
        self.read_rate = read_rate
        self.rng = random.Random(seed)
        self.clock = clock
        self.stopping = threading.Event()
        #: Message types received from clients, latest last (for tests and debugging).
        self.received: deque[int] = deque(maxlen=1000)
        self.reports = 0
        self.tag_reports = 0
        self.connections = 0
        self._tags = tuple(tags)
        self._lock = threading.Lock()
        self._ids = 0
        self._current: _Connection | None = None
        self._server = socket.create_server((host, port), reuse_port=False)
        self._server.settimeout(_POLL_S)
        self._thread = threading.Thread(target=self._accept_loop, name="llrp-sim", daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.getsockname()[1])

    def start(self) -> LlrpReaderSimulator:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        self._thread.join(timeout=5)
        self._server.close()

    def __enter__(self) -> LlrpReaderSimulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def set_tags(self, tags: Iterable[SimTag]) -> None:
        with self._lock:
            self._tags = tuple(tags)

    def tags_snapshot(self) -> tuple[SimTag, ...]:
        with self._lock:
            return self._tags

    def next_id(self) -> int:
        with self._lock:
            self._ids = self._ids % 0xFFFFFFFF + 1
            return self._ids

    def count_report(self, tags: int) -> None:
        with self._lock:
            self.reports += 1
            self.tag_reports += tags

    @property
    def connected(self) -> bool:
        return self._current is not None

    def drop_connections(self) -> None:
        """End the current connection without ``CLOSE_CONNECTION`` or any event, as a
        reader rebooting or losing its network does; the listener stays up."""
        conn = self._current
        if conn is None:
            return
        conn.closed = True
        with suppress(OSError):
            conn.sock.shutdown(socket.SHUT_RDWR)

    def _accept_loop(self) -> None:
        threads: list[threading.Thread] = []
        while not self.stopping.is_set():
            try:
                sock, _addr = self._server.accept()
            except TimeoutError:
                continue
            except OSError:
                break
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            # A client that stops reading must not block the reader forever.
            sock.settimeout(_SEND_TIMEOUT_S)
            if self._current is not None:
                self._refuse(sock)
                continue
            conn = _Connection(self, sock)
            self._current = conn
            self.connections += 1
            thread = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            thread.start()
            threads.append(thread)
        for thread in threads:
            thread.join(timeout=2)

    def _refuse(self, sock: socket.socket) -> None:
        with sock, suppress(OSError):
            sock.sendall(
                encode_connection_event(self.next_id(), self.clock(), CONNECTION_CLIENT_EXISTS)
            )

    def _serve(self, conn: _Connection) -> None:
        log.info("LLRP client connected", extra={"port": self.port})
        try:
            conn.serve()
        except (OSError, LlrpError, struct.error) as exc:
            log.info("LLRP connection ended", extra={"port": self.port, "reason": str(exc)})
        finally:
            self._current = None
            with suppress(OSError):
                conn.sock.close()

"""LLRP tag reports in sllurp's TagReportData dict shape (WIRE-FORMATS §3)."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest

from gateway.adapters import AdapterError, parse
from gateway.adapters.llrp import LlrpAdapter
from gateway.reads import RfidRead, Skipped

# sllurp 3.x: scalars, hexlified-bytes EPC, EPC-96 copied to EPC, µs timestamps.
SLLURP_3 = {
    "EPC-96": b"300833b2ddd9014000000000",
    "EPC": b"300833b2ddd9014000000000",
    "AntennaID": 1,
    "PeakRSSI": -53,
    "ChannelIndex": 7,
    "FirstSeenTimestampUTC": 1_700_000_000_000_000,
    "LastSeenTimestampUTC": 1_700_000_000_500_000,
    "TagSeenCount": 3,
}


def test_sllurp_3_scalars_and_bytes_epc_s3() -> None:
    (read,) = LlrpAdapter().parse_reports([SLLURP_3], reader="speedway-r420")
    assert read == RfidRead(
        epc="300833B2DDD9014000000000",  # type: ignore[arg-type]
        antenna=1,
        rssi_dbm=-53.0,
        timestamp=datetime(2023, 11, 14, 22, 13, 20, 500000, tzinfo=UTC),
        reader="speedway-r420",
        seen_count=3,
    )


def test_old_sllurp_one_tuples_str_epc_and_year_2000_clock_s3() -> None:
    # sllurp issues #76/#118/#134: 1-tuples, str EPCs, a reader without NTP (Jan 2000).
    old = {"EPC-96": "300833b2ddd9014000000000", "AntennaID": (2,), "PeakRSSI": (-61,),
           "LastSeenTimestampUTC": (946_684_800_123_456,), "TagSeenCount": (1,)}  # fmt: skip
    (read,) = LlrpAdapter().parse_reports(old)
    assert isinstance(read, RfidRead)
    assert (read.antenna, read.rssi_dbm, read.seen_count) == (2, -61.0, 1)
    assert read.timestamp == datetime(2000, 1, 1, 0, 0, 0, 123456, tzinfo=UTC)
    assert read.clock_suspect


def test_impinj_peak_rssi_is_centi_dbm_and_preferred_s3() -> None:
    (read,) = LlrpAdapter().parse_reports([{**SLLURP_3, "ImpinjPeakRSSI": -5325}])
    assert isinstance(read, RfidRead) and read.rssi_dbm == -53.25


def test_json_shapes_through_parse_s3() -> None:
    record = {"EPC": "E2801160600002", "AntennaID": [1], "PeakRSSI": -40}
    for shape in (
        [record],
        record,
        {"TagReportData": [record]},
        {"RO_ACCESS_REPORT": {"TagReportData": [record]}},
    ):
        (read,) = parse("llrp", orjson.dumps(shape))
        assert isinstance(read, RfidRead) and read.epc == "E2801160600002"


def test_empty_report_is_skipped() -> None:
    assert isinstance(parse("llrp", b"[]")[0], Skipped)


@pytest.mark.parametrize(
    ("reports", "reason"),
    [
        ([{"AntennaID": 1}], "has no EPC"),
        ([{"EPC": b"\xff\x00"}], "not hexlified ASCII"),
        ([{"EPC": b"30zz"}], "not hexadecimal"),
        ([{"EPC": "3008", "AntennaID": "one"}], "expected an integer"),
        ([{"EPC": "3008", "LastSeenTimestampUTC": 10**30}], "out of range"),
        (["3008"], "expected an object"),
        (42, "expected a list"),
    ],
)
def test_malformed_reports_are_rejected(reports: object, reason: str) -> None:
    with pytest.raises(AdapterError, match=reason):
        LlrpAdapter().parse_reports(reports)

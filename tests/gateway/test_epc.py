"""SGTIN-96/198 decoding against GS1 TDS worked examples (WIRE-FORMATS §4)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.epc import DECODE_CACHE_SIZE, EpcError, EpcInfo, decode_epc, gtin_check_digit

# partition → (company prefix bits, digits, indicator+item ref bits, digits); TDS §14.5.1 table.
PARTITIONS = {0: (40, 12, 4, 1), 1: (37, 11, 7, 2), 2: (34, 10, 10, 3), 3: (30, 9, 14, 4),
              4: (27, 8, 17, 5), 5: (24, 7, 20, 6), 6: (20, 6, 24, 7)}  # fmt: skip


def encode_sgtin96(filter_: int, partition: int, company: int, item: int, serial: int) -> str:
    """An independent SGTIN-96 encoder, written from the TDS bit layout (not epcpy)."""
    cp_bits, _, ir_bits, _ = PARTITIONS[partition]
    value = 0x30
    for field, width in (
        (filter_, 3),
        (partition, 3),
        (company, cp_bits),
        (item, ir_bits),
        (serial, 38),
    ):
        value = (value << width) | field
    return f"{value:024X}"


def test_tds_e3_sgtin96_worked_example_s4() -> None:
    info = decode_epc("3074257BF7194E4000001A85")
    assert info.as_dict() == {
        "epc": "3074257BF7194E4000001A85",
        "scheme": "sgtin-96",
        "gtin": "80614141123458",
        "company_prefix": "0614141",
        "item_reference": "812345",
        "serial": "6789",
        "filter": 3,
        "partition": 5,
        "uri": "urn:epc:id:sgtin:0614141.812345.6789",
        "tag_uri": "urn:epc:tag:sgtin-96:3.0614141.812345.6789",
    }


def test_disputed_ui_decode_is_wrong_s4_1() -> None:
    # §4 "Where sources disagree" 1: a 7-digit prefix has a 6-digit item reference.
    assert decode_epc("3034257BF7194E4000001DE6").uri == "urn:epc:id:sgtin:0614141.812345.7654"


def test_inconsistent_java_fixture_decodes_the_hex_s4_2() -> None:
    info = decode_epc("300000000000040000000001")
    assert (info.company_prefix, info.item_reference, info.serial) == ("000000000001", "0", "1")


@pytest.mark.parametrize(
    "hex_",
    [
        "3674257BF6B7A659B2C2BF100000000000000000000000000000",  # 52 digits (208 bits)
        "3674257BF6B7A659B2C2BF1000000000000000000000000000",  # 50 digits (200 bits)
    ],
)
def test_tds_e3_sgtin198_both_lengths_s4_3(hex_: str) -> None:
    info = decode_epc(hex_)
    assert info.scheme == "sgtin-198"
    assert info.tag_uri == "urn:epc:tag:sgtin-198:3.0614141.712345.32a%2Fb"
    assert info.uri == "urn:epc:id:sgtin:0614141.712345.32a%2Fb"  # 712345, not TDS's typo (§4.4)
    assert (info.gtin, info.serial) == ("70614141123451", "32a/b")


@pytest.mark.parametrize(
    ("digits", "check"), [("0846632485751", 5), ("084663228621", 0), ("8061414112345", 8)]
)
def test_gtin_check_digit_s4(digits: str, check: int) -> None:
    assert gtin_check_digit(digits) == check


@pytest.mark.parametrize(
    "hex_",
    [
        "E2801160600002",
        "E2C4AB0012345678",
        "AD9900000000000000000001",
        "8A450224",
        "99990829000000000000000400",
    ],
)
def test_non_sgtin_epcs_are_kept_opaque_s4_6(hex_: str) -> None:
    info = decode_epc(hex_)
    assert (info.epc, info.scheme, info.gtin, info.uri) == (hex_, "unknown", None, None)


@pytest.mark.parametrize(
    ("hex_", "reason"),
    [
        ("307C257BF7194E4000001A85", "partition 7"),
        ("3078257BF7194E4000001A85", "does not decode"),  # partition 6: item ref overflows 7 digits
        ("3074257BF7194E4000001A", "needs 96 bits"),
        ("3074257BF7194E4000001A850001", "non-zero bits after"),
        ("3674257BF6B7A640000000000000000000000000000000000000", "empty serial"),
        ("3674257BF6B7A67080C400000000000000000000000000000000", "after the serial's terminator"),
        ("30ZZ", "not hexadecimal"),
        ("307", "odd number"),
        ("", "empty"),
    ],
)
def test_invalid_epcs_are_rejected(hex_: str, reason: str) -> None:
    with pytest.raises(EpcError, match=reason):
        decode_epc(hex_)


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_sgtin96_round_trip(data: st.DataObject) -> None:
    partition = data.draw(st.integers(0, 6), label="partition")
    _, cp_digits, _, ir_digits = PARTITIONS[partition]
    filter_ = data.draw(st.integers(0, 7), label="filter")
    company = data.draw(st.integers(0, 10**cp_digits - 1), label="company")
    item = data.draw(st.integers(0, 10**ir_digits - 1), label="item")
    serial = data.draw(st.integers(0, 2**38 - 1), label="serial")
    info = decode_epc(encode_sgtin96(filter_, partition, company, item, serial))
    cp, ir = f"{company:0{cp_digits}d}", f"{item:0{ir_digits}d}"
    assert (info.filter, info.partition, info.serial) == (filter_, partition, str(serial))
    assert (info.company_prefix, info.item_reference) == (cp, ir)
    assert info.uri == f"urn:epc:id:sgtin:{cp}.{ir}.{serial}"
    body = ir[0] + cp + ir[1:]
    assert info.gtin == body + str(gtin_check_digit(body))


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="0123456789abcdefABCDEF", max_size=64) | st.text(max_size=30))
def test_arbitrary_text_never_crashes(text: str) -> None:
    try:
        info = decode_epc(text)
    except EpcError as exc:
        assert str(exc)
    else:
        assert info.scheme in ("sgtin-96", "sgtin-198", "unknown")


@settings(max_examples=300, deadline=None)
@given(
    st.binary(min_size=12, max_size=26).map(lambda b: (b"\x30" if b[0] % 2 else b"\x36") + b[1:])
)
def test_random_sgtin_headers_never_crash(raw: bytes) -> None:
    try:
        decode_epc(raw.hex())
    except EpcError as exc:
        assert str(exc)


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(["3074257BF7194E4000001A85", "3074257bf7194e4000001a85", "E2801160600002"])
    | st.binary(min_size=12, max_size=26)
    .map(lambda b: (b"\x30" if b[0] % 2 else b"\x36") + b[1:])
    .map(bytes.hex)
    | st.text(max_size=12)
)
def test_the_decode_cache_answers_as_the_decoder_does(raw: str) -> None:
    # decode_epc remembers answers per string; the answer must be the uncached one,
    # the first time (a miss) and the second (a hit), rejections included.
    def answer(decode: Callable[[str], EpcInfo]) -> object:
        try:
            return decode(raw)
        except EpcError as exc:
            return str(exc)

    expected = answer(decode_epc.__wrapped__)
    assert answer(decode_epc) == expected
    assert answer(decode_epc) == expected


def test_the_decode_cache_is_bounded() -> None:
    assert decode_epc.cache_info().maxsize == DECODE_CACHE_SIZE

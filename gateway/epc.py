"""EPC binary → SGTIN identity (GS1 EPC Tag Data Standard, SGTIN-96 and SGTIN-198).

Decoding follows TDS §14.5.1 (SGTIN-96: header ``0x30``, 3-bit filter, 3-bit
partition, company prefix + indicator/item reference per the partition table,
38-bit integer serial) and the SGTIN-198 variant (header ``0x36``, 140-bit serial
of 7-bit ASCII, zero-terminated, URI-reserved characters %-escaped). Worked
examples: TDS Annex E.3, reproduced in WIRE-FORMATS §4 and the tests.

The field arithmetic is ``epcpy`` (nedap/retail-epcpy), checked against those
examples. What epcpy does not do, or does differently, is done here; see
``docs/epc.md``:

* it drops the **filter** value on decode (its pure identity has none), so the
  filter and partition are read from bits 8–13 here;
* an unknown header raises ``KeyError`` instead of its ``ConvertException``, so the
  header is dispatched here before epcpy is called;
* for SGTIN-198 it keeps decoding characters after the zero terminator
  (``a\\0b`` → ``ab``), which TDS §14.3.2 forbids, so the terminator rule is
  checked here.

Anything without an SGTIN header is a valid EPC of scheme ``unknown``: it stays an
opaque tag (TID-like ``E280…`` factory EPCs, 32-bit EPCs; WIRE-FORMATS §4.6).

:func:`decode_epc` remembers its answers per hex string (an LRU,
:data:`DECODE_CACHE_SIZE`): decoding is a pure function of the string, a store
sees the same tags all day, and one SGTIN decode through epcpy costs tens of
microseconds. Rejections are not remembered (an exception is never cached).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Any, Literal
from urllib.parse import unquote

from epcpy.epc_schemes.sgtin import SGTIN, SGTINFilterValue
from epcpy.utils.common import ConvertException

from vitrine.contracts.ids import Epc, Gtin, IdError, normalise_epc

__all__ = [
    "DECODE_CACHE_SIZE",
    "EpcError",
    "EpcInfo",
    "Scheme",
    "decode_epc",
    "gtin_check_digit",
    "try_decode_epc",
]

Scheme = Literal["sgtin-96", "sgtin-198", "unknown"]

_SGTIN_96_HEADER = "30"
_SGTIN_198_HEADER = "36"
_SGTIN_96_BITS = 96
_SGTIN_198_BITS = 198
#: Bits 58… are the serial: 8 header + 3 filter + 3 partition + 44 (CP + IR), TDS §14.5.1.
_SERIAL_START = 58
_CHAR_BITS = 7
#: Decoded EPCs remembered. The pipeline decodes once per item fact (arrival,
#: move, departure) and ``vitrine readers parse`` once per read. Facts come from
#: the tags that keep changing state — fitting rooms, tills, restocking — a few
#: hundred to a few thousand in a store's day; 4,096 entries hold those, and at
#: ~1 KB an entry (an ``EpcInfo`` of short strings, measured) cost ~4 MB.
DECODE_CACHE_SIZE = 4_096


class EpcError(ValueError):
    """An EPC that is not hex, or has an SGTIN header but no valid SGTIN behind it."""


@dataclass(frozen=True, slots=True)
class EpcInfo:
    """What an EPC says. SGTIN fields are ``None`` for scheme ``unknown``.

    ``item_reference`` is the indicator digit followed by the item reference, as in
    the pure identity URI; ``serial`` is the plain serial (``32a/b``), while ``uri``
    and ``tag_uri`` carry it %-escaped (``32a%2Fb``).
    """

    epc: Epc
    scheme: Scheme
    gtin: Gtin | None = None
    company_prefix: str | None = None
    item_reference: str | None = None
    serial: str | None = None
    filter: int | None = None
    partition: int | None = None
    uri: str | None = None
    tag_uri: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def gtin_check_digit(digits: str) -> int:
    """GS1 mod-10: from the rightmost data digit weights 3,1,3,…; (10 − sum mod 10) mod 10."""
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(digits)))
    return (10 - total % 10) % 10


def try_decode_epc(epc: str) -> EpcInfo | None:
    """:func:`decode_epc`, or ``None`` where it would raise (for optional enrichment)."""
    try:
        return decode_epc(epc)
    except EpcError:
        return None


@lru_cache(maxsize=DECODE_CACHE_SIZE)
def decode_epc(raw: str) -> EpcInfo:
    """Decode an EPC given as hex. Raises :class:`EpcError` with the reason if invalid.

    Remembered per ``raw`` (module docstring); the :class:`EpcInfo` returned is
    frozen, so sharing it between callers is safe.
    """
    try:
        epc = normalise_epc(raw)
    except IdError as exc:
        raise EpcError(str(exc)) from None
    header = epc[:2]
    if header == _SGTIN_96_HEADER:
        return _decode_sgtin(epc, "sgtin-96", _SGTIN_96_BITS)
    if header == _SGTIN_198_HEADER:
        return _decode_sgtin(epc, "sgtin-198", _SGTIN_198_BITS)
    return EpcInfo(epc=epc, scheme="unknown")


def _decode_sgtin(epc: Epc, scheme: Literal["sgtin-96", "sgtin-198"], size: int) -> EpcInfo:
    bits = format(int(epc, 16), f"0{len(epc) * 4}b")
    if len(bits) < size:
        raise EpcError(f"{scheme} needs {size} bits, EPC {epc} has {len(bits)}")
    if "1" in bits[size:]:
        # Whole-word padding is fine (SGTIN-198 is printed as 50 or 52 hex digits,
        # WIRE-FORMATS §4.3); anything else after the scheme's bits is not SGTIN.
        raise EpcError(f"{scheme} EPC {epc} has non-zero bits after bit {size}")
    filter_value = int(bits[8:11], 2)
    partition = int(bits[11:14], 2)
    if partition == 7:
        raise EpcError(f"{scheme} EPC {epc} has partition 7, which TDS leaves invalid")
    if scheme == "sgtin-198":
        _check_string_serial(epc, bits[_SERIAL_START:size])
    try:
        sgtin = SGTIN.from_binary(bits[:size])
        coding = (
            SGTIN.BinaryCodingScheme.SGTIN_96
            if scheme == "sgtin-96"
            else SGTIN.BinaryCodingScheme.SGTIN_198
        )
        tag_uri = sgtin.tag_uri(coding, SGTINFilterValue(str(filter_value)))
        uri: str = sgtin.epc_uri
        gtin: str = sgtin.gtin()
    except (ConvertException, ValueError, KeyError, IndexError) as exc:
        message = getattr(exc, "message", None) or str(exc)
        raise EpcError(f"{scheme} EPC {epc} does not decode: {message}") from None
    company_prefix, item_reference, escaped_serial = uri.removeprefix("urn:epc:id:sgtin:").split(
        ".", 2
    )
    return EpcInfo(
        epc=epc,
        scheme=scheme,
        gtin=Gtin(gtin),
        company_prefix=company_prefix,
        item_reference=item_reference,
        serial=unquote(escaped_serial),
        filter=filter_value,
        partition=partition,
        uri=uri,
        tag_uri=tag_uri,
    )


def _check_string_serial(epc: Epc, serial_bits: str) -> None:
    """TDS §14.3.2 (String decoding): at least one character, and after the first
    all-zero 7-bit group every further group must be zero too."""
    groups = [serial_bits[i : i + _CHAR_BITS] for i in range(0, len(serial_bits), _CHAR_BITS)]
    zero = "0" * _CHAR_BITS
    if groups[0] == zero:
        raise EpcError(f"sgtin-198 EPC {epc} has an empty serial")
    if zero in groups and any("1" in g for g in groups[groups.index(zero) :]):
        raise EpcError(f"sgtin-198 EPC {epc} has characters after the serial's terminator")

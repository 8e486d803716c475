"""SGTIN-96 EPCs for the simulated stock, through ``epcpy`` (GS1 EPC Tag Data Standard).

GS1 TDS §14.5.1 (SGTIN-96): header ``0x30``, filter, partition from the company
prefix length, company prefix, indicator + item reference, 38-bit serial
(WIRE-FORMATS §4). Retail items carry filter 1 ("point of sale item").
"""

from __future__ import annotations

from epcpy.epc_schemes.sgtin import SGTIN, SGTINFilterValue

__all__ = ["POS_ITEM_FILTER", "gtin_of_epc", "sgtin96_hex"]

#: TDS Table 10-3: filter 1 is "point of sale (POS) trade item", what a garment's tag is.
POS_ITEM_FILTER = 1

_FILTERS = {f.value: f for f in SGTINFilterValue}


def sgtin96_hex(gtin: str, serial: int, company_prefix_length: int, filter_value: int = 1) -> str:
    """Upper-case hex of the SGTIN-96 tag encoding of ``gtin`` + ``serial``."""
    if not 0 <= serial < 2**38:
        raise ValueError(f"serial {serial} does not fit SGTIN-96's 38 bits")
    sgtin = SGTIN.from_gtin_plus_serial(gtin, str(serial), company_prefix_length)
    text: str = sgtin.hex(
        binary_coding_scheme=SGTIN.BinaryCodingScheme.SGTIN_96,
        filter_value=_FILTERS[str(filter_value)],
    )
    return text.upper()


def gtin_of_epc(epc_hex: str) -> str:
    """GTIN-14 of an SGTIN EPC (for checks and ground truth)."""
    gtin: str = SGTIN.from_hex(epc_hex).gtin()
    return gtin

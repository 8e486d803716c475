from __future__ import annotations

import pytest

from vitrine.contracts.app_token import AppBeacon, rotating_token, token_of, window_of
from vitrine.contracts.ids import IdError, normalise_epc, normalise_mac


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("3074257bf7194e4000001a85", "3074257BF7194E4000001A85"),
        ("0x8a450224", "8A450224"),
        ("30 74 25 7b", "3074257B"),
    ],
)
def test_epc_is_upper_hex(raw: str, expected: str) -> None:
    assert normalise_epc(raw) == expected


@pytest.mark.parametrize("raw", ["", "xyz", "abc", "G0"])
def test_bad_epcs_are_refused(raw: str) -> None:
    with pytest.raises(IdError):
        normalise_epc(raw)


def test_mac_forms_agree() -> None:
    assert normalise_mac("AA:BB:CC:00:11:22") == normalise_mac("aabbcc001122") == "aabbcc001122"
    with pytest.raises(IdError):
        normalise_mac("aa:bb")


def test_rotating_token_changes_per_window_and_splits_into_major_minor() -> None:
    secret = b"install-secret"
    assert rotating_token(secret, 1) != rotating_token(secret, 2)
    assert token_of(secret, 900 * 5 + 10) == rotating_token(secret, window_of(900 * 5 + 10))
    beacon = AppBeacon.for_token("FDA50693-A4E2-4FB1-AFCF-C6EB07647825", 0x12345678)
    assert (beacon.major, beacon.minor, beacon.token) == (0x1234, 0x5678, 0x12345678)

"""The pure parts: tokens, the resume decision, the sequencer, the rate limiter, settings."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mobile_api.settings import MobileApiSettings
from mobile_api.stream import Sequencer, plan_resume
from mobile_api.tokens import TokenError, TokenSigner
from mobile_api.ws import TokenBucket
from vitrine.runtime.settings import SettingsError


def test_tokens_are_refused_when_forged_expired_or_of_another_type() -> None:
    now = [1_000.0]
    signer = TokenSigner(b"k" * 32, lambda: now[0])
    token = signer.issue("access", "p1", 60, "i1")
    assert signer.verify(token, "access").sub == "p1"
    with pytest.raises(TokenError):
        signer.verify(token, "refresh")
    with pytest.raises(TokenError):
        TokenSigner(b"other", lambda: now[0]).verify(token, "access")
    with pytest.raises(TokenError):
        signer.verify(token.replace(".", "x.", 1), "access")
    now[0] += 61
    with pytest.raises(TokenError, match="expired"):
        signer.verify(token, "access")


@given(
    st.one_of(st.none(), st.integers(0, 50)),
    st.integers(0, 50),
    st.one_of(st.none(), st.integers(1, 50)),
)
def test_resume_never_leaves_a_silent_gap(
    last_seq: int | None, last: int, first_retained: int | None
) -> None:
    if first_retained is not None and first_retained > last:
        first_retained = None
    decision = plan_resume(last_seq, last, first_retained)
    if decision.kind == "replay":
        assert last_seq is not None and decision.start == last_seq <= last
        # Every message after last_seq is still held (or there is none).
        assert last_seq == last or (first_retained is not None and first_retained <= last_seq + 1)
    else:
        assert decision.start == last


def test_sequencer_skips_duplicates_and_asks_to_fill_gaps() -> None:
    seq = Sequencer(last=3)
    assert [seq.classify(s) for s in (2, 3, 4, 6, None)] == ["skip", "skip", "send", "fill", "fill"]


def test_token_bucket_allows_a_burst_then_the_rate() -> None:
    now = [0.0]
    bucket = TokenBucket(2.0, lambda: now[0])
    assert [bucket.take() for _ in range(5)] == [True] * 4 + [False]
    now[0] += 0.5
    assert bucket.take() and not bucket.take()


def test_placeholder_secrets_are_refused_outside_local_mode() -> None:
    with pytest.raises(SettingsError, match="mobile_secret_key"):
        MobileApiSettings(mode="production", mobile_identity_secret="a-real-one").validate_for_run()
    MobileApiSettings(mode="local").validate_for_run()

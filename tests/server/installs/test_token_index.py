"""The app-token index resolves like the old scan of every install, refuses collisions,
forgets an erased install at once, and keeps only the windows that can be current."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlmodel import Session, col, select

from server.installs.token_index import KEEP_WINDOWS, hint_of, resolve_install
from server.models import AppInstall, AppTokenHint, ShopperProfile
from server.privacy.service import erase_profile
from vitrine.contracts.app_token import DEFAULT_PERIOD_S, rotating_token, window_of

PERIOD = DEFAULT_PERIOD_S
#: A Tuesday afternoon; any time works, a fixed one keeps failures reproducible.
T0 = datetime(2026, 3, 10, 15, 7, tzinfo=UTC)
#: Two test-made secrets whose tokens collide in window ``COLLISION_WINDOW``
#: (found by a birthday search over ``collision-test-<n>``; 0xcedcc40d).
COLLIDING = (
    b"collision-test-" + (28955).to_bytes(8, "big"),
    b"collision-test-" + (122609).to_bytes(8, "big"),
)
COLLISION_WINDOW = 1_990_000


def old_scan(session: Session, token_hex: str, at: datetime, period_s: int) -> AppInstall | None:
    """The resolution before the index (every install, three windows each), for reference."""
    try:
        token = int(token_hex, 16)
    except ValueError:
        return None
    window = window_of(at.timestamp(), period_s)
    for install in session.exec(select(AppInstall)):
        if any(
            rotating_token(install.secret, w) == token for w in (window, window - 1, window + 1)
        ):
            return install
    return None


def _installs(session: Session, secrets_: list[bytes]) -> list[AppInstall]:
    rows = [AppInstall(secret=s) for s in secrets_]
    session.add_all(rows)
    session.flush()
    return rows


def _hints(session: Session) -> list[AppTokenHint]:
    return list(session.exec(select(AppTokenHint)))


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    secrets_=st.lists(st.binary(min_size=16, max_size=64), min_size=0, max_size=12, unique=True),
    picks=st.lists(
        st.tuples(
            st.integers(min_value=0, max_value=11),
            st.integers(min_value=-3, max_value=3),
            st.integers(min_value=0, max_value=2**32 - 1),
        ),
        min_size=1,
        max_size=6,
    ),
    offset_s=st.integers(min_value=0, max_value=30 * 86_400),
    period_s=st.sampled_from([60, PERIOD]),
)
def test_resolves_like_the_scan_of_every_install(
    session: Session,
    secrets_: list[bytes],
    picks: list[tuple[int, int, int]],
    offset_s: int,
    period_s: int,
) -> None:
    """Tokens of installs in and out of the accepted windows, and random ones, in any order."""
    nested = session.begin_nested()
    try:
        installs = _installs(session, secrets_)
        at = T0 + timedelta(seconds=offset_s)
        for index, skew, random_token in picks:
            if installs:
                install = installs[index % len(installs)]
                token = rotating_token(install.secret, window_of(at.timestamp(), period_s) + skew)
            else:
                token = random_token
            for token_hex in (f"{token:08x}", f"{random_token:08x}"):
                expected = old_scan(session, token_hex, at, period_s)
                got = resolve_install(session, token_hex, at, period_s)
                assert (got.id if got else None) == (expected.id if expected else None)
            # A later install is found too, in windows already indexed.
            (late,) = _installs(session, [secrets.token_bytes(32)])
            installs.append(late)
            late_hex = f"{rotating_token(late.secret, window_of(at.timestamp(), period_s)):08x}"
            resolved = resolve_install(session, late_hex, at, period_s)
            assert resolved is not None and resolved.id == late.id
    finally:
        nested.rollback()


def test_a_colliding_token_is_refused_not_guessed(session: Session) -> None:
    a, b = _installs(session, list(COLLIDING))
    token = rotating_token(a.secret, COLLISION_WINDOW)
    assert token == rotating_token(b.secret, COLLISION_WINDOW)  # the premise
    at = datetime.fromtimestamp(COLLISION_WINDOW * PERIOD + 1, UTC)
    # The old scan named whichever install the database listed first.
    assert old_scan(session, f"{token:08x}", at, PERIOD) is not None
    assert resolve_install(session, f"{token:08x}", at, PERIOD) is None
    # Indexed now: refused on the index's path too, and each install's other
    # windows still resolve to it.
    assert resolve_install(session, f"{token:08x}", at, PERIOD) is None
    later = at + timedelta(seconds=PERIOD)
    for install in (a, b):
        other = rotating_token(install.secret, COLLISION_WINDOW + 1)
        found = resolve_install(session, f"{other:08x}", later, PERIOD)
        assert found is not None and found.id == install.id


def test_garbage_tokens_resolve_to_nothing(session: Session) -> None:
    _installs(session, [secrets.token_bytes(32)])
    for token_hex in ("", "zz", "-1", "1" * 9, "0x12"):
        assert resolve_install(session, token_hex, T0, PERIOD) is None


def test_rows_hold_a_hint_never_the_token(session: Session) -> None:
    (install,) = _installs(session, [secrets.token_bytes(32)])
    window = window_of(T0.timestamp(), PERIOD)
    token = rotating_token(install.secret, window)
    assert resolve_install(session, f"{token:08x}", T0, PERIOD) is not None
    rows = {(h.token_window, h.hint) for h in _hints(session) if h.install_id == install.id}
    assert rows == {
        (w, hint_of(rotating_token(install.secret, w))) for w in (window - 1, window, window + 1)
    }
    assert all(hint < 2**20 for _, hint in rows)


def test_erasure_removes_the_index_rows_at_once(session: Session) -> None:
    profile = ShopperProfile()
    session.add(profile)
    session.flush()
    (install,) = _installs(session, [secrets.token_bytes(32)])
    install.profile_id = profile.id
    session.add(install)
    session.flush()
    token_hex = f"{rotating_token(install.secret, window_of(T0.timestamp(), PERIOD)):08x}"
    assert resolve_install(session, token_hex, T0, PERIOD) is not None
    assert any(h.install_id == install.id for h in _hints(session))

    report = erase_profile(session, profile.id)

    assert report.deleted["app_token_hints"] == 3
    left = session.exec(
        select(sa.func.count())
        .select_from(AppTokenHint)
        .where(AppTokenHint.install_id == install.id)
    ).one()
    assert left == 0
    assert resolve_install(session, token_hex, T0, PERIOD) is None


def test_erasing_the_install_row_cascades_to_its_rows(session: Session) -> None:
    """Whatever deletes an install (not only the erasure service), its rows go with it."""
    (install,) = _installs(session, [secrets.token_bytes(32)])
    token_hex = f"{rotating_token(install.secret, window_of(T0.timestamp(), PERIOD)):08x}"
    assert resolve_install(session, token_hex, T0, PERIOD) is not None
    session.execute(sa.delete(AppInstall).where(col(AppInstall.id) == install.id))
    assert not [h for h in _hints(session) if h.install_id == install.id]


def test_a_new_window_drops_windows_that_can_no_longer_be_current(session: Session) -> None:
    (install,) = _installs(session, [secrets.token_bytes(32)])
    first = window_of(T0.timestamp(), PERIOD)
    for step in range(8):
        at = T0 + timedelta(seconds=step * PERIOD)
        token = rotating_token(install.secret, first + step)
        found = resolve_install(session, f"{token:08x}", at, PERIOD)
        assert found is not None and found.id == install.id
    newest = first + 7
    windows = sorted(h.token_window for h in _hints(session) if h.install_id == install.id)
    # Windows are indexed (and old ones dropped) on a miss: the last miss was at
    # step 6 (window ``newest + 1`` was never needed), which indexed ``newest``
    # and kept KEEP_WINDOWS windows behind the oldest it accepted (``newest - 2``).
    assert windows == list(range(newest - 2 - KEEP_WINDOWS, newest + 1))

"""Resolving an app's rotating BLE token to its install, without recomputing every install.

The companion app advertises ``rotating_token(secret, window)``
(``vitrine.contracts.app_token``); only the server, which holds the secrets,
can tell whose it is. The contract accepts the fact's window and its two
neighbours (a phone's clock may be off by up to a period), so a token is
checked against three windows.

Recomputing every install's three tokens for every app fact made the ingest
O(installs) per fact. Instead ``app_token_hints`` keeps, per install and per
window the consumer has needed, the top :data:`HINT_BITS` bits of the
install's token in that window:

- **hit**: the rows of the three windows whose hint matches (indexed lookup) are
  the candidates; each candidate's token is recomputed from its secret, so a
  hint can narrow a search but never decide it;
- **miss**: one query compares each window's row count with the number of
  installs; a window with fewer rows (a new window, an install enrolled since —
  by the phone API, the admin route or anyone) gets its missing installs found
  by an anti-join, hashed once, written, and checked. In steady state an
  unknown token costs that one counting query and no token is computed; when
  a new window starts every install is hashed once for it (one HMAC each) and
  the rows of windows that can no longer be current are dropped
  (:data:`KEEP_WINDOWS`).

There is no cache to invalidate: the table is in the fact's transaction, so
every process sees the same index, and an install's rows are deleted with it
(``ON DELETE CASCADE``): an erased shopper stops resolving at the commit that
erases them. An install's secret never changes (``POST /v1/admin/installs``
answers 409 to another secret), so an install only "rotates" by window.

Collisions: tokens are 32 bits, so two installs can advertise the same token
in the accepted windows. The old scan returned whichever install the database
listed first (no ``ORDER BY``: unspecified). Now a token that matches more than
one install is **refused** (``None``: the device counts as anonymous footfall
for that window): attributing one shopper's presence to another would show the
wrong context to staff and write a visit into the wrong profile, while a
refusal costs one window's recognition. With 10,000 installs the chance that a
given token also matches another install is about 3 * 10,000 / 2**32 ≈ 7e-6.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col, select

from server.models import AppInstall, AppTokenHint
from vitrine.contracts.app_token import DEFAULT_PERIOD_S, rotating_token, window_of

__all__ = ["HINT_BITS", "KEEP_WINDOWS", "accepted_windows", "hint_of", "resolve_install"]

log = logging.getLogger(__name__)

_Upsert = postgresql.Insert | sqlite.Insert

#: Bits of the token kept as the hint. 20 of 32: a hint value is shared by
#: 4,096 tokens, so a row never names the token an install advertised, while
#: a lookup at 10,000 installs finds about 10,000 / 2**20 ≈ 0.01 wrong
#: candidates per window (about one at a million installs) to rule out by HMAC.
HINT_BITS = 20
#: Windows kept behind the oldest accepted one (45 min at the default 15 min
#: period), so that facts replayed after a short consumer or broker outage do
#: not re-index every install; older rows are deleted.
KEEP_WINDOWS = 3
#: The contract's clock-skew allowance: the fact's window and one on each side.
SKEW_WINDOWS = 1


def hint_of(token: int) -> int:
    """The indexed part of a 32-bit token: its top :data:`HINT_BITS` bits."""
    return token >> (32 - HINT_BITS)


def accepted_windows(at: datetime, period_s: int = DEFAULT_PERIOD_S) -> tuple[int, ...]:
    """The windows a token seen at ``at`` may belong to: this one first, then its neighbours."""
    window = window_of(at.timestamp(), period_s)
    return (window, *(window + d for s in range(1, SKEW_WINDOWS + 1) for d in (-s, s)))


def resolve_install(
    session: Session, token_hex: str, at: datetime, period_s: int = DEFAULT_PERIOD_S
) -> AppInstall | None:
    """The one install advertising ``token_hex`` around ``at``; ``None`` if none or several.

    Writes index rows into ``session`` when it has to (the caller commits).
    """
    try:
        token = int(token_hex, 16)
    except ValueError:
        return None
    if not 0 <= token < 1 << 32:
        return None
    windows = accepted_windows(at, period_s)
    matches = _indexed_matches(session, token, windows, period_s)
    if not matches:
        matches = _index_missing(session, token, windows, period_s)
    if len(matches) > 1:
        # The count only: no token, no install id (docs/privacy.md).
        log.warning(
            "app token matches several installs: left unresolved", extra={"n": len(matches)}
        )
        return None
    if not matches:
        return None
    return session.get(AppInstall, next(iter(matches)))


def _indexed_matches(
    session: Session, token: int, windows: Iterable[int], period_s: int
) -> set[str]:
    rows = session.exec(
        select(AppInstall.id, AppInstall.secret, AppTokenHint.token_window)
        .join(AppTokenHint, col(AppTokenHint.install_id) == col(AppInstall.id))
        .where(
            AppTokenHint.period_s == period_s,
            col(AppTokenHint.token_window).in_(list(windows)),
            AppTokenHint.hint == hint_of(token),
        )
    ).all()
    return {
        install_id for install_id, secret, window in rows if rotating_token(secret, window) == token
    }


def _index_missing(
    session: Session, token: int, windows: tuple[int, ...], period_s: int
) -> set[str]:
    """Index the installs with no row for one of ``windows``; the ones among them matching."""
    matches: set[str] = set()
    rows: list[dict[str, int | str]] = []
    for window in _incomplete(session, windows, period_s):
        indexed = sa.exists().where(
            col(AppTokenHint.install_id) == col(AppInstall.id),
            col(AppTokenHint.period_s) == period_s,
            col(AppTokenHint.token_window) == window,
        )
        for install_id, secret in session.exec(
            select(AppInstall.id, AppInstall.secret).where(~indexed)
        ):
            advertised = rotating_token(secret, window)
            if advertised == token:
                matches.add(install_id)
            rows.append(
                {
                    "install_id": install_id,
                    "period_s": period_s,
                    "token_window": window,
                    "hint": hint_of(advertised),
                }
            )
    if rows:
        _insert_ignoring_duplicates(session, rows)
        _drop_stale(session, min(windows), period_s)
        log.debug("app token windows indexed", extra={"rows": len(rows), "windows": len(windows)})
    return matches


def _incomplete(session: Session, windows: tuple[int, ...], period_s: int) -> list[int]:
    """The windows with fewer rows than there are installs (one query of counts).

    Rows only exist for installs (foreign key, cascade), so equal counts mean
    every install is indexed: a miss on a complete window (an unknown token)
    costs this one query, with no row fetched and no token computed.
    """
    per_window = (
        select(sa.func.count())
        .select_from(AppTokenHint)
        .where(AppTokenHint.period_s == period_s, AppTokenHint.token_window == window)
        .scalar_subquery()
        for window in windows
    )
    installs = select(sa.func.count()).select_from(AppInstall).scalar_subquery()
    counts = session.execute(sa.select(installs, *per_window)).one()
    return [w for w, n in zip(windows, counts[1:], strict=True) if n < counts[0]]


def _insert_ignoring_duplicates(session: Session, rows: list[dict[str, int | str]]) -> None:
    # Another consumer may index the same window at the same time: its rows are
    # the same (derived from the same secrets), so a duplicate is simply skipped.
    table = AppTokenHint.__table__  # type: ignore[attr-defined]
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        insert: Callable[[sa.Table], _Upsert] = postgresql.insert
    elif dialect == "sqlite":
        insert = sqlite.insert
    else:  # pragma: no cover - the two supported backends (docs/database.md)
        raise NotImplementedError(dialect)
    session.execute(insert(table).on_conflict_do_nothing(), rows)


def _drop_stale(session: Session, oldest: int, period_s: int) -> None:
    """Rows of windows that can no longer be accepted, and of another rotation period."""
    session.execute(
        sa.delete(AppTokenHint).where(
            sa.or_(
                col(AppTokenHint.period_s) != period_s,
                col(AppTokenHint.token_window) < oldest - KEEP_WINDOWS,
            )
        )
    )

"""Upsert an app install, link it to its shopper's profile, record the app's consents.

The retailer's companion app has its own backend; when a shopper signs in on a
phone, that backend tells Vitrine the install (and the secret keying its
rotating BLE token), who the shopper is, and what they agreed to. From then on
the gateway's ``shopper_entered`` for that phone resolves to the profile
(``server.ingest.repository.resolve_install``).

Idempotent: a repeat of the same registration changes nothing and appends no
consent history; a consent that differs from the current answer is a new
decision and is appended (GDPR Art. 7(1)). An install id is bound to its
secret for life: a different secret is a conflict (re-enrol as a new install).
"""

from __future__ import annotations

import hmac
import logging
from datetime import datetime

from sqlmodel import Session

from server.errors import Conflict
from server.installs.schemas import InstallRegistered, InstallRegistration
from server.models import AppInstall, Consent, ConsentEvent
from server.profiles import repository as profiles_repository
from server.profiles.service import resolve_profile

__all__ = ["CONSENT_SOURCE", "register_install"]

log = logging.getLogger(__name__)

#: ``consent_events.source`` of answers given in the companion app.
CONSENT_SOURCE = "app"


def register_install(
    session: Session, body: InstallRegistration, *, now: datetime
) -> InstallRegistered:
    """Upsert the install, link it to the keys' profile, apply changed consents; commits."""
    install_id = str(body.install_id)
    secret = bytes.fromhex(body.secret)
    install = session.get(AppInstall, install_id)
    if install is not None and not hmac.compare_digest(install.secret, secret):
        raise Conflict("this install is registered with another secret")
    profile_id = resolve_profile(session, body.keys, now).profile_id
    created = install is None
    if install is None:
        install = AppInstall(id=install_id, secret=secret, profile_id=profile_id, created_at=now)
        session.add(install)
    elif install.profile_id != profile_id:
        # Another shopper signed in on this phone: the install follows them (as a login does).
        install.profile_id = profile_id
        session.add(install)
    at = body.occurred_at or now
    current = {c.purpose: c for c in profiles_repository.consents_of(session, profile_id)}
    changes = 0
    for purpose, granted in body.consents.items():
        row = current.get(purpose)
        if row is not None and row.granted == granted:
            continue
        if row is None:
            row = Consent(profile_id=profile_id, purpose=purpose, granted=granted, updated_at=at)
        else:
            row.granted, row.updated_at = granted, at
        session.add(row)
        session.add(
            ConsentEvent(
                profile_id=profile_id,
                purpose=purpose,
                granted=granted,
                source=CONSENT_SOURCE,
                # The shopper decided in the app; the backend only relays it.
                actor="shopper",
                occurred_at=at,
            )
        )
        changes += 1
    session.commit()
    log.info("app install registered", extra={"new_install": created, "consent_changes": changes})
    consents = {c.purpose: c.granted for c in profiles_repository.consents_of(session, profile_id)}
    return InstallRegistered(
        install_id=install_id,
        profile_id=profile_id,
        created=created,
        consents=consents,
        consent_changes=changes,
    )

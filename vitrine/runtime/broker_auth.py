"""Per-store broker credentials and ACLs for a production Mosquitto.

``deploy/mosquitto.conf`` allows anonymous clients, which only local development
may do (QUALITY.md, "Security"). A real store runs the same configuration with
``allow_anonymous false``, a ``password_file`` and an ``acl_file``; this module
writes all three from the store layout files, so the ACL names exactly the
topics each reader, scanner and gateway of that layout uses:

* a store's gateway writes only under ``vitrine/v1/<its store>/`` (facts, dead
  letters, health, its own state topic) and reads only its store's reader and
  scanner topics;
* a reader writes only its own vendor topic(s); an ESPresense scanner only its
  own room's topics;
* the server reads the facts, dead letters, health and gateway states of the
  listed stores and writes their ``out/`` streams;
* mobile_api reads ``out/shopper/#`` of the listed stores;
* an optional monitor reads ``$SYS/#`` and nothing else.

Anything not granted is denied: with an ``acl_file`` Mosquitto refuses every
topic no rule names (mosquitto.conf(5), ``acl_file``). Mosquitto 2.0 answers a
SUBSCRIBE to a filter the client may not read with success, but checks read
access on every message it would deliver, so nothing of another store reaches it
(``tests/security/test_broker_acl.py`` proves it, wildcards included).

Passwords are random (``secrets.token_urlsafe``), kept in ``credentials.json``
(mode 0600) so that re-running the command keeps them, and hashed into
``passwd`` by ``mosquitto_passwd -U`` (never on a command line); ``passwd`` is
0640, group ``mosquitto``, because the broker reads it after dropping root.
"""

from __future__ import annotations

import contextlib
import grp
import os
import secrets
import shutil
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from vitrine.contracts.layout import StoreLayout
from vitrine.contracts.topics import NAMESPACE
from vitrine.runtime.broker import DEFAULT_CONFIG

__all__ = [
    "BrokerAuthError",
    "BrokerUser",
    "render_acl",
    "render_secured_config",
    "store_users",
    "write_broker_auth",
]

#: Bytes of randomness per password: 24 bytes → 32 URL-safe characters, far past
#: guessing, and free of characters that need escaping in an mqtt:// URL.
PASSWORD_BYTES = 24

SERVER_USER = "server"
MOBILE_API_USER = "mobile-api"
MONITOR_USER = "monitor"


class BrokerAuthError(RuntimeError):
    """The credentials could not be written (e.g. no ``mosquitto_passwd``)."""


@dataclass(frozen=True, slots=True)
class BrokerUser:
    """One broker login and the topics it may read and write."""

    username: str
    read: tuple[str, ...] = ()
    write: tuple[str, ...] = ()
    readwrite: tuple[str, ...] = field(default=())


def gateway_username(store: str, gateway_id: str) -> str:
    return f"gateway.{store}.{gateway_id}"


def reader_username(store: str, reader_id: str) -> str:
    return f"reader.{store}.{reader_id}"


def scanner_username(store: str, scanner_id: str) -> str:
    return f"scanner.{store}.{scanner_id}"


def store_users(layout: StoreLayout, gateway_ids: Sequence[str]) -> list[BrokerUser]:
    """The gateway(s), readers and scanners of one store, each with its own topics."""
    store = str(layout.store.id)
    base = f"{NAMESPACE}/{store}"
    prefix = layout.espresense_prefix.rstrip("/")
    vendor_topics: list[str] = []
    users: list[BrokerUser] = []
    for reader in layout.readers:
        topics = tuple(t for t in (reader.topic, reader.management_topic) if t)
        vendor_topics.extend(topics)
        users.append(BrokerUser(reader_username(store, reader.id), write=topics))
    for scanner in layout.scanners:
        users.append(
            BrokerUser(
                scanner_username(store, scanner.id),
                write=(f"{prefix}/devices/+/{scanner.room}",),
                # ESPresense publishes its telemetry and reads its settings here.
                readwrite=(f"{prefix}/rooms/{scanner.room}/#",),
            )
        )
    if layout.scanners:
        vendor_topics += [f"{prefix}/devices/#", f"{prefix}/rooms/#"]
    for gw in gateway_ids:
        users.insert(
            0,
            BrokerUser(
                gateway_username(store, gw),
                read=tuple(dict.fromkeys(vendor_topics)),
                write=(
                    f"{base}/facts/+",
                    f"{base}/deadletter/gateway",
                    f"{base}/health/#",
                ),
                # Its retained online/offline state and last will, no other gateway's.
                readwrite=(f"{base}/gateway/{gw}/state",),
            ),
        )
    return users


def backend_users(stores: Iterable[str], *, monitor: bool) -> list[BrokerUser]:
    """The server and mobile_api, limited to the listed stores; optionally a monitor."""
    stores = list(stores)
    server = BrokerUser(
        SERVER_USER,
        read=tuple(
            t
            for s in stores
            for t in (
                f"{NAMESPACE}/{s}/facts/+",
                f"{NAMESPACE}/{s}/deadletter/+",
                f"{NAMESPACE}/{s}/health/#",
                f"{NAMESPACE}/{s}/gateway/+/state",
            )
        ),
        write=tuple(f"{NAMESPACE}/{s}/out/#" for s in stores),
    )
    mobile = BrokerUser(
        MOBILE_API_USER, read=tuple(f"{NAMESPACE}/{s}/out/shopper/#" for s in stores)
    )
    users = [server, mobile]
    if monitor:
        users.append(BrokerUser(MONITOR_USER, read=("$SYS/#",)))
    return users


def render_acl(users: Sequence[BrokerUser]) -> str:
    """Mosquitto ``acl_file`` text: one ``user`` block per login (mosquitto.conf(5))."""
    lines = [
        "# Generated by `vitrine broker credentials`; do not edit, re-run it.",
        "# Anything not granted here is denied. No `pattern` rule: nobody gets a",
        "# topic by the shape of their name.",
    ]
    for user in users:
        lines += ["", f"user {user.username}"]
        lines += [f"topic read {t}" for t in user.read]
        lines += [f"topic write {t}" for t in user.write]
        lines += [f"topic readwrite {t}" for t in user.readwrite]
    return "\n".join(lines) + "\n"


def render_secured_config(
    password_file: Path, acl_file: Path, source: Path = DEFAULT_CONFIG
) -> str:
    """``source`` with ``allow_anonymous false`` and the password and ACL files."""
    out: list[str] = []
    for line in source.read_text().splitlines():
        if line.split(" ", 1)[0] == "allow_anonymous":
            out += [
                "allow_anonymous false",
                f"password_file {password_file}",
                f"acl_file {acl_file}",
            ]
        else:
            out.append(line)
    return "\n".join(out) + "\n"


def _passwd_binary() -> str:
    found = shutil.which("mosquitto_passwd") or (
        "/usr/bin/mosquitto_passwd" if Path("/usr/bin/mosquitto_passwd").exists() else None
    )
    if found is None:
        raise BrokerAuthError("no `mosquitto_passwd` (apt-get install mosquitto)")
    return found


def write_broker_auth(
    layouts: Sequence[StoreLayout],
    out: Path,
    *,
    gateway_ids: Sequence[str] = ("gw1",),
    monitor: bool = True,
    config_source: Path = DEFAULT_CONFIG,
    config_dir: Path | None = None,
) -> dict[str, str]:
    """Write ``passwd``, ``acl``, ``mosquitto.conf`` and ``credentials.json`` into ``out``.

    Returns username → password. Passwords already in ``out/credentials.json``
    are kept. ``config_dir`` is where the broker will find the files (e.g. the
    path inside a container); it defaults to ``out``.
    """
    _check_disjoint(layouts)
    users = [u for layout in layouts for u in store_users(layout, gateway_ids)]
    users += backend_users((str(lay.store.id) for lay in layouts), monitor=monitor)
    names = [u.username for u in users]
    if len(set(names)) != len(names):
        raise BrokerAuthError("two logins share a name: store, reader or scanner ids repeat")
    out.mkdir(parents=True, exist_ok=True)
    creds_path = out / "credentials.json"
    known: dict[str, str] = {}
    if creds_path.exists():
        known = {str(k): str(v) for k, v in orjson.loads(creds_path.read_bytes()).items()}
    creds = {n: known.get(n) or secrets.token_urlsafe(PASSWORD_BYTES) for n in names}
    _write_private(creds_path, orjson.dumps(creds, option=orjson.OPT_INDENT_2))
    passwd = out / "passwd"
    _write_private(passwd, "".join(f"{n}:{p}\n" for n, p in creds.items()).encode())
    done = subprocess.run(
        [_passwd_binary(), "-U", str(passwd)], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        passwd.unlink(missing_ok=True)
        raise BrokerAuthError(f"mosquitto_passwd failed: {done.stderr.strip()}")
    _broker_readable(passwd)
    (out / "acl").write_text(render_acl(users))
    where = config_dir or out
    (out / "mosquitto.conf").write_text(
        render_secured_config(where / "passwd", where / "acl", config_source)
    )
    return creds


def _check_disjoint(layouts: Sequence[StoreLayout]) -> None:
    """Two stores on one broker must not share a vendor topic or ESPresense prefix:
    each store's gateway would read the other's readers."""
    owner: dict[str, str] = {}
    for layout in layouts:
        store = str(layout.store.id)
        topics = {t for r in layout.readers for t in (r.topic, r.management_topic) if t}
        if layout.scanners:
            topics.add(layout.espresense_prefix.rstrip("/") + "/#")
        for topic in topics:
            other = owner.setdefault(topic, store)
            if other != store:
                raise BrokerAuthError(
                    f"stores {other} and {store} both use the vendor topic {topic!r}; "
                    "give each store's readers and scanners their own topic prefix"
                )


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    path.chmod(0o600)


def _broker_readable(path: Path) -> None:
    """Hashes only, but still not world-readable: 0640, group ``mosquitto`` when we can.

    Mosquitto started as root drops to the ``mosquitto`` user before it reads the
    password file (mosquitto.conf(5), ``user``), so that user's group must read it.
    """
    path.chmod(0o640)
    if os.geteuid() == 0:
        with contextlib.suppress(KeyError):  # no such group: the operator sets ownership
            os.chown(path, -1, grp.getgrnam("mosquitto").gr_gid)

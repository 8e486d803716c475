"""The server process's settings: one object, built in ``main()``/``create_app()``.

Environment variables carry the ``VITRINE_`` prefix (``VITRINE_DATABASE_URL``,
``VITRINE_HTTP_PORT``, ``VITRINE_SECRET_KEY``…); nothing else in the server reads
``os.environ`` (STYLE.md, "One Settings class per process").
"""

from __future__ import annotations

from pydantic import SecretStr

from vitrine.runtime.http_limits import RateText
from vitrine.runtime.settings import CommonSettings

__all__ = ["DEFAULT_DATABASE_URL", "ServerSettings"]

#: The embedded default: one SQLite file under ``var/`` of the working directory,
#: so that ``vitrine`` runs with no database server (ARCHITECTURE.md, "State").
#: The directory is created when the engine is made (:func:`server.db.make_engine`).
DEFAULT_DATABASE_URL = "sqlite:///var/vitrine.db"


class ServerSettings(CommonSettings):
    #: SQLAlchemy URL. ``sqlite:///path`` (default) or
    #: ``postgresql+psycopg://user:password@host/db`` for production.
    database_url: str = DEFAULT_DATABASE_URL
    http_host: str = "127.0.0.1"
    http_port: int = 8000
    #: Signs tokens and webhooks. The placeholder is refused outside local mode.
    secret_key: SecretStr = SecretStr("local-dev-secret")

    # HTTP limits (docs/security.md, "HTTP limits"): rates per caller — the
    # verified token's subject, else the client address — in ``limits`` notation.
    #: ``POST /v1/events`` per ingest token. A tracker relay batches (Segment up
    #: to 500 KB a request), so a few requests a second carry a busy shop; 100/s
    #: still admits one unbatched request per page view at a mid-size shop's peak.
    http_rate_ingest: RateText = "100/second"
    #: ``/v1/admin/…`` per admin: a console or a script (an import is one request);
    #: 10/s on average leaves a script room and stops a runaway loop in a minute.
    http_rate_admin: RateText = "600/minute"
    #: Everything else (staff screens, analytics, profiles, web pages) per caller:
    #: a staff screen refreshes a few lists every few seconds; 10/s is far above that.
    http_rate_api: RateText = "600/minute"
    #: Where counts live: ``memory://`` is per process; several server instances
    #: need one shared storage (``redis://host:6379``, with the ``redis`` package).
    http_rate_storage: str = "memory://"
    #: 64 KiB for a JSON body (an offer, a webhook, a pickup order are ~1 KiB);
    #: the bulk routes keep their own larger limits (events 1 MiB, layouts 2 MiB,
    #: catalogue 32 MiB; see ``server.app``).
    http_max_body_bytes: int = 64 * 1024

    def secrets_to_check(self) -> dict[str, SecretStr | str | None]:
        return {"secret_key": self.secret_key}

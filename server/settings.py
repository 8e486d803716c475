"""The server process's settings: one object, built in ``main()``/``create_app()``.

Environment variables carry the ``VITRINE_`` prefix (``VITRINE_DATABASE_URL``,
``VITRINE_HTTP_PORT``, ``VITRINE_SECRET_KEY``…); nothing else in the server reads
``os.environ`` (STYLE.md, "One Settings class per process").
"""

from __future__ import annotations

from pydantic import SecretStr

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

    def secrets_to_check(self) -> dict[str, SecretStr | str | None]:
        return {"secret_key": self.secret_key}

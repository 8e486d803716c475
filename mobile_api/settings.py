"""The mobile_api process's settings: one object, built in ``main()``/``create_app()``.

Environment variables carry the ``VITRINE_`` prefix (``VITRINE_DATABASE_URL``,
``VITRINE_MOBILE_SECRET_KEY``, ``VITRINE_MOBILE_ALLOWED_ORIGINS``…); nothing
else in mobile_api reads ``os.environ`` (STYLE.md, "One Settings class per process").
"""

from __future__ import annotations

from pydantic import SecretStr

from server.settings import DEFAULT_DATABASE_URL
from vitrine.contracts.app_token import DEFAULT_PERIOD_S
from vitrine.runtime.http_limits import RateText
from vitrine.runtime.settings import CommonSettings

__all__ = ["MobileApiSettings"]


class MobileApiSettings(CommonSettings):
    #: The server's database (SQLite file by default, PostgreSQL in production).
    database_url: str = DEFAULT_DATABASE_URL
    mobile_http_host: str = "127.0.0.1"
    #: 8100: beside the server's 8000 (docker-compose.yml publishes it).
    mobile_http_port: int = 8100
    #: Signs access and refresh tokens. The placeholder is refused outside local mode.
    mobile_secret_key: SecretStr = SecretStr("local-dev-secret")
    #: Shared with the online store's sign-in: it signs the identity assertion that
    #: ``POST /v1/auth/login`` accepts (see docs/mobile-api.md). Refused as placeholder.
    mobile_identity_secret: SecretStr = SecretStr("local-dev-secret")
    #: Origins a browser may open the WebSocket from (exact ``scheme://host[:port]``).
    #: A native app sends no ``Origin``; a browser always does (RFC 6455 §4.1, item 8).
    mobile_allowed_origins: tuple[str, ...] = ()
    #: 15 minutes: short enough that a stolen token is soon useless, long enough
    #: that a phone refreshes a few times per visit rather than per screen.
    mobile_access_ttl_s: int = 900
    #: 30 days: a shopper stays signed in between store visits.
    mobile_refresh_ttl_s: int = 30 * 24 * 3600
    #: 64 KiB: the largest frame a phone sends is an auth frame (~1 KiB); uvicorn's
    #: default cap is 16 MiB (QUALITY.md fact 6). Passed to uvicorn as ``ws_max_size``.
    mobile_ws_max_frame_bytes: int = 64 * 1024
    #: Frames a phone may send per second (token bucket, burst = 2 × rate): a phone
    #: sends an auth frame and pongs; 10/s is far above honest use.
    mobile_ws_rate_per_s: float = 10.0
    #: Messages queued for one connection before it counts as stuck and is dropped
    #: (it resumes from its last seq): a visit's worth of guidance, a few KiB each.
    mobile_ws_queue_size: int = 256
    #: Seconds between pings; a connection that misses two pongs is closed.
    mobile_ws_ping_interval_s: float = 20.0
    #: Seconds a new connection has to send its auth frame.
    mobile_ws_auth_timeout_s: float = 10.0
    #: How far back a reconnecting phone can resume; older than this → ``reset``.
    #: One day covers a phone that lost signal for a whole visit.
    mobile_resume_retention_s: int = 24 * 3600
    # HTTP limits (docs/security.md, "HTTP limits"), in ``limits`` notation.
    #: ``/v1/installs``, ``/v1/auth/…`` and the ``/phone`` page per client address
    #: (no token yet). A store's guest Wi-Fi puts every phone behind one address:
    #: 200 phones refreshing every 15 min and a few dozen sign-ins an hour are
    #: under 1/s; 2/s on average leaves room and stops a credential-stuffing loop.
    mobile_rate_public: RateText = "120/minute"
    #: Every other ``/v1`` route per signed-in shopper: a phone sends a sighting
    #: when it ranges a new beacon and reads a few screens, well under 1/s;
    #: 5/s on average is far above honest use and stops a runaway client.
    mobile_rate_phone: RateText = "300/minute"
    #: Where counts live: ``memory://`` is per process; several instances behind
    #: a load balancer need a shared one (``redis://host:6379``).
    mobile_rate_storage: str = "memory://"
    #: 16 KiB: the largest body a phone sends is a sign-in (a 2 KiB identity
    #: assertion) or a help request (500 characters, ≤ 2 KiB of UTF-8).
    mobile_http_max_body_bytes: int = 16 * 1024
    #: Period of the app's rotating BLE token (``vitrine.contracts.app_token``).
    app_token_period_s: int = DEFAULT_PERIOD_S

    def secrets_to_check(self) -> dict[str, SecretStr | str | None]:
        return {
            "mobile_secret_key": self.mobile_secret_key,
            "mobile_identity_secret": self.mobile_identity_secret,
        }

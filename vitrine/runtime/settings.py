"""The settings every process shares; each process subclasses :class:`CommonSettings`.

One Settings object per process, built in ``main()``/``create_app()`` and passed
down (STYLE.md): nothing else reads ``os.environ``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["PLACEHOLDER_SECRETS", "CommonSettings", "SettingsError"]

#: Values that must never reach production: the documented defaults.
PLACEHOLDER_SECRETS = frozenset({"", "changeme", "change-me", "local-dev-secret", "secret"})


class SettingsError(RuntimeError):
    """A configuration that must not run (placeholder secret outside local mode, …)."""


class CommonSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="VITRINE_", extra="ignore")

    #: ``local``: development and the demo (anonymous MQTT, placeholder secrets
    #: accepted). ``production``: everything must be configured for real.
    mode: Literal["local", "production"] = "local"
    mqtt_url: str = "mqtt://127.0.0.1:1883"
    log_level: str = "INFO"
    log_format: Literal["json", "text"] = "json"
    #: Port of the ops endpoint (/healthz, /readyz, /metrics); 0 picks a free one.
    ops_port: int = 0
    ops_host: str = "127.0.0.1"

    def secrets_to_check(self) -> dict[str, SecretStr | str | None]:
        """Subclasses list their secrets here; checked by :meth:`validate_for_run`."""
        return {}

    def validate_for_run(self) -> None:
        """Refuse to start with placeholder secrets outside local mode (QUALITY.md, Security)."""
        if self.mode == "local":
            return
        bad = []
        for name, value in self.secrets_to_check().items():
            text = value.get_secret_value() if isinstance(value, SecretStr) else value
            if text is None or text.strip().lower() in PLACEHOLDER_SECRETS:
                bad.append(name)
        if bad:
            raise SettingsError(
                f"refusing to start in {self.mode} mode with placeholder secrets: {', '.join(bad)}"
            )

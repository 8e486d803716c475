"""The gateway's settings: ``VITRINE_*`` environment variables or CLI options."""

from __future__ import annotations

from pathlib import Path

from vitrine.runtime.settings import CommonSettings

__all__ = ["GatewaySettings"]


class GatewaySettings(CommonSettings):
    #: Store layout file (YAML or JSON): zones, readers and their vendor topics, scanners.
    layout: Path | None = None
    #: This gateway's id: its MQTT client id, state topic and state file derive from it.
    gateway_id: str = "gw1"
    #: iBeacon proximity UUID the companion app advertises; devices with it pass
    #: through as the app's rotating token, all others are anonymous footfall.
    app_beacon_uuid: str | None = None
    #: Where the pipeline state file lives (``gateway-<id>.json``).
    state_dir: Path = Path("var")
    #: MQTT 5 receive maximum: QoS 1 messages in flight to us at once. A hint
    #: only: Mosquitto 2.0.11 sends a whole new window after each PUBACK
    #: (docs/gateway.md), so the intake queue below is the real bound.
    receive_maximum: int = 256
    #: Messages waiting for the worker. When full, paho's network thread waits
    #: (TCP backpressure) and the backlog stays in the broker's session queue;
    #: nothing is dropped. 10,000 is 5 s of an unbatched busy store (2,000 msg/s)
    #: and a few MiB of memory.
    intake_queue: int = 10_000
    #: How often the state file is rewritten (plus once at shutdown): bounds
    #: what a kill -9 forgets to half a minute of arrivals.
    state_interval_s: float = 30.0
    #: How often reader/scanner health is republished (retained).
    health_interval_s: float = 5.0
    #: Broker session kept while the gateway is away, so nothing published
    #: during a restart is lost (MQTT 5 session expiry).
    session_expiry_s: int = 3600

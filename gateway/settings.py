"""The gateway's settings: ``VITRINE_*`` environment variables or CLI options."""

from __future__ import annotations

from pathlib import Path

from pydantic import SecretStr

from vitrine.runtime.settings import CommonSettings

__all__ = ["GatewaySettings"]


class GatewaySettings(CommonSettings):
    #: Store layout file (YAML or JSON): zones, readers and their vendor topics, scanners.
    layout: Path | None = None
    #: … or the server's ``GET /v1/stores/{store}/layout`` URL: fetched at start,
    #: cached in ``state_dir``, refreshed without a restart (docs/gateway.md, "Layout").
    layout_url: str | None = None
    #: Bearer token for ``layout_url``: ``vitrine auth token --role gateway --store <store>``
    #: (``VITRINE_GATEWAY_SERVER_TOKEN``; never logged).
    gateway_server_token: SecretStr | None = None
    #: How often ``layout_url`` is polled (a conditional GET, 304 while unchanged).
    #: A layout changes when someone re-maps an antenna: within 30 s is prompt
    #: enough, and a few hundred gateways make a few cheap requests a second.
    layout_refresh_s: float = 30.0
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
    #: Checkpoint (group commit): a record (the facts produced since the last
    #: one, reader sequence numbers, digests of the inputs covered) is appended
    #: to the journal and fsynced as soon as the intake queue is empty (nothing
    #: more to batch), or once ``checkpoint_inputs`` inputs wait, or at the
    #: latest this long after the first input or timer fact not covered yet;
    #: only then are those facts published and those inputs acknowledged
    #: (docs/gateway.md, "State file"). An idle or lightly loaded gateway thus
    #: adds about one fsync (~1 ms quiet, ~6 ms loaded) to a fact's latency;
    #: this bound only matters while the queue never empties (a backlog), where
    #: it caps the fact latency and acknowledgement lag: 0.1 s is well inside
    #: "news within seconds".
    checkpoint_interval_s: float = 0.1
    #: ... or as soon as this many inputs wait for a checkpoint: bounds what a
    #: burst re-reads after a kill -9 (finding 2 in docs/reliability.md: 1,000+
    #: inputs unacknowledged before). 500 is ~0.06 s of the 1-read/message
    #: drain rate (8,900 msg/s): at most ~16 full checkpoints a second under a burst.
    checkpoint_inputs: int = 500
    #: How often the full snapshot is rewritten and the journal restarted (plus
    #: at start and shutdown). A restart republishes the journal's facts (the
    #: ingest drops those it has by event_id), so this bounds that replay to
    #: 10 s of facts; a 20,000-item state takes ~70 ms to encode (measured),
    #: 0.7 % of the worker at this cadence, too slow for every checkpoint.
    state_interval_s: float = 10.0
    #: How often reader/scanner health is republished (retained).
    health_interval_s: float = 5.0
    #: Broker session kept while the gateway is away, so nothing published
    #: during a restart is lost (MQTT 5 session expiry).
    session_expiry_s: int = 3600

    def secrets_to_check(self) -> dict[str, SecretStr | str | None]:
        return {"gateway_server_token": self.gateway_server_token} if self.layout_url else {}

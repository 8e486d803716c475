"""Settings of ``vitrine server ingest``: the server's, plus the consumer's own."""

from __future__ import annotations

from pydantic import Field

from server.settings import ServerSettings

__all__ = ["IngestSettings"]


class IngestSettings(ServerSettings):
    #: Worker threads; a store's facts always go to the same one (in order).
    ingest_workers: int = 1
    #: The MQTT client id: the broker keeps this session's queue while we are away,
    #: so two ingest processes on one database must use different ids.
    ingest_client_id: str = "vitrine-server-ingest"
    #: Facts applied per transaction at most (server.ingest.consumer.BATCH_MAX);
    #: 1 applies each fact in its own transaction.
    ingest_batch_max: int = Field(default=200, ge=1, le=1000)
    #: Online views considered at arrival (days); see server.engine.EngineSettings.
    view_window_days: int = 30

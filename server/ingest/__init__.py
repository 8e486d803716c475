"""The fact consumer: store facts from the bus → engine → database → outbox.

See :mod:`server.ingest.consumer` (MQTT, ack after commit),
:mod:`server.ingest.service` (one fact, one transaction) and
:mod:`server.ingest.repository` (context loading, consent where facts enter).
"""

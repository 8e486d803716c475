"""Staff alerts and tasks: list a store's open work, claim, acknowledge, close.

The engine creates them (``server.ingest``); live pushes to staff screens go
through the outbox on ``out/staff/{kind}``. These routes are the REST side.
"""

"""Alembic migration scripts (driven by :mod:`server.migrate`)."""

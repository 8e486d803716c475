"""Stores and their layouts: ``vitrine store import FILE`` / ``POST /v1/admin/stores/import``."""

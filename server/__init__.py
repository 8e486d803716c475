"""Vitrine server."""

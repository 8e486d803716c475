"""Vitrine gateway."""

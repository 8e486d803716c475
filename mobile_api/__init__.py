"""Vitrine mobile_api."""

"""Vitrine firmware_sim."""

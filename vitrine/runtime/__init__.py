"""Operational plumbing shared by every process: settings, logs, ops endpoints, MQTT."""

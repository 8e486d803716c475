"""Signed, retried webhooks of profile interactions for a CRM/CDP (docs/server-api.md)."""

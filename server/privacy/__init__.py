"""A shopper's data: export (JSON), erasure, and the retention purge (docs/privacy.md)."""

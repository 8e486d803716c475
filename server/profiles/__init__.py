"""Shopper profiles: identity resolution (aliases, anonymous → known merge), timeline, consents."""

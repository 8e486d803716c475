"""App installs registered by the retailer's own app backend (``POST /v1/admin/installs``)."""

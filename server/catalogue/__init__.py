"""The catalogue: products and variants imported from CSV or JSON, tagged items from a stock file.

``vitrine catalogue import FILE`` / ``POST /v1/admin/catalogue/import`` and
``vitrine catalogue import-stock FILE`` / ``POST /v1/admin/catalogue/stock``.
Lookups used by online events (sku, online ids, GTIN) live in
:mod:`server.catalogue.repository`.
"""

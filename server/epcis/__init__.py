"""EPCIS 2.0 JSON export of item observations per store and period (WIRE-FORMATS §6)."""

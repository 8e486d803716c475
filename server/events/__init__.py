"""Online e-commerce events in: Segment, GA4, Shopify Web Pixels and the native format.

Pure normalisers (:func:`normalise`, :func:`normalise_each`) and the
``vitrine views`` command group (:mod:`server.events.cli`). Formats and field
mappings are documented in ``docs/online-events.md``.
"""

from server.events.model import (
    EVENT_TYPES,
    PLATFORMS,
    EventRejected,
    EventType,
    NormalisedEvent,
    NormalisedProduct,
    Outcome,
    Platform,
    Rejected,
    Skipped,
)
from server.events.normalise import FORMATS, Format, detect_platform, normalise, normalise_each

__all__ = [
    "EVENT_TYPES",
    "FORMATS",
    "PLATFORMS",
    "EventRejected",
    "EventType",
    "Format",
    "NormalisedEvent",
    "NormalisedProduct",
    "Outcome",
    "Platform",
    "Rejected",
    "Skipped",
    "detect_platform",
    "normalise",
    "normalise_each",
]

"""Turn any supported online-event payload into :class:`NormalisedEvent` values.

Entry points (pure: no I/O, no clock, no framework):

- :func:`normalise_each` — one :data:`Outcome` per input event (normalised,
  skipped or rejected), never raises; for a CLI or a batch endpoint that keeps
  the good events of a batch with a bad one in it.
- :func:`normalise` — the events only; raises :class:`EventRejected` on the
  first malformed event and drops the skipped ones.

Accepted input: a decoded JSON value that is one event object, a batch envelope
(Segment ``{"batch": [...]}``, a GA4 Measurement Protocol body with
``events[]``), a gtag command array ``["event", name, params]``, or an array of
any of these. ``fmt="auto"`` picks the platform from each object's shape.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import Literal, get_args

from server.events._fields import JsonObject, as_array, at, describe
from server.events.ga4 import is_gtag_command, looks_like_ga4, parse_ga4, parse_gtag
from server.events.model import EventRejected, NormalisedEvent, Outcome, Platform, Rejected
from server.events.native import looks_like_native, parse_native
from server.events.segment import looks_like_segment, parse_segment
from server.events.shopify import looks_like_shopify, parse_shopify

__all__ = ["FORMATS", "Format", "detect_platform", "normalise", "normalise_each"]

Format = Literal["auto", "segment", "ga4", "shopify", "native"]
FORMATS: tuple[Format, ...] = get_args(Format)

_PARSERS: dict[Platform, Callable[[JsonObject, str], Sequence[Outcome]]] = {
    "segment": parse_segment,
    "ga4": parse_ga4,
    "shopify": parse_shopify,
    "native": parse_native,
}
#: How many of an unrecognised object's keys a rejection names: enough to see
#: what was sent, short enough for one stderr line.
_KEYS_SHOWN = 8


def detect_platform(obj: JsonObject) -> Platform | None:
    """The platform whose documented shape ``obj`` has, or ``None``.

    Order matters: Segment and native both use ``type`` (``"track"`` vs
    ``"product_viewed"``); Shopify events carry ``clientId`` and ``data``;
    GA4 is last because a dataLayer push is the loosest shape (any ``event``).
    """
    if looks_like_segment(obj):
        return "segment"
    if looks_like_native(obj):
        return "native"
    if looks_like_shopify(obj):
        return "shopify"
    if looks_like_ga4(obj):
        return "ga4"
    return None


def normalise_each(value: object, fmt: Format = "auto") -> list[Outcome]:
    """Every event in ``value`` as normalised, skipped or rejected, in input order."""
    return _walk(value, fmt, where="", top=True)


def normalise(value: object, fmt: Format = "auto") -> list[NormalisedEvent]:
    """The product views and purchases in ``value``.

    Raises:
        EventRejected: an event (or the whole value) is malformed.
    """
    events = []
    for outcome in normalise_each(value, fmt):
        if isinstance(outcome, Rejected):
            raise EventRejected(outcome.reason)
        if isinstance(outcome, NormalisedEvent):
            events.append(outcome)
    return events


def _walk(value: object, fmt: Format, *, where: str, top: bool) -> list[Outcome]:
    if isinstance(value, list):
        if fmt in ("auto", "ga4") and is_gtag_command(value):
            return _guard(lambda: parse_gtag(value, where))
        if not top:
            return [Rejected(f"{where}: nested arrays are not accepted")]
        outcomes: list[Outcome] = []
        for i, item in enumerate(value):
            outcomes.extend(_walk(item, fmt, where=f"[{i}]", top=False))
        return outcomes
    if not isinstance(value, Mapping):
        return [
            Rejected(f"{where or 'input'}: expected a JSON object or array, got {describe(value)}")
        ]
    platform = detect_platform(value) if fmt == "auto" else fmt
    if platform is None:
        keys = ", ".join(describe(k) for k in sorted(value)[:_KEYS_SHOWN]) or "none"
        return [
            Rejected(
                f"{where or 'event'}: not a Segment, GA4, Shopify or native event (keys: {keys})"
            )
        ]
    if platform == "segment" and "batch" in value:
        return _segment_batch(value, where)
    parser = _PARSERS[platform]
    return _guard(lambda: parser(value, where))


def _segment_batch(envelope: JsonObject, where: str) -> list[Outcome]:
    batch_where = at(where, "batch")
    try:
        messages = as_array(envelope["batch"], batch_where)
    except EventRejected as error:
        return [Rejected(error.reason)]
    outcomes: list[Outcome] = []
    for i, message in enumerate(messages):
        item_where = f"{batch_where}[{i}]"
        if not isinstance(message, Mapping):
            outcomes.append(Rejected(f"{item_where}: expected an object, got {describe(message)}"))
            continue
        outcomes.extend(_guard(partial(parse_segment, message, item_where)))
    return outcomes


def _guard(parse: Callable[[], Sequence[Outcome]]) -> list[Outcome]:
    try:
        return list(parse())
    except EventRejected as error:
        return [Rejected(error.reason)]

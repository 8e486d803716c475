"""``vitrine views``: see what Vitrine understands of an online-event payload."""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path
from typing import cast

import orjson
import typer

from server.events.model import NormalisedEvent, Outcome, Rejected, Skipped
from server.events.normalise import Format, normalise_each

__all__ = ["views_app"]


class FormatChoice(StrEnum):
    """``--format`` values; the same names as :data:`server.events.normalise.FORMATS`."""

    auto = "auto"
    segment = "segment"
    ga4 = "ga4"
    shopify = "shopify"
    native = "native"


views_app = typer.Typer(
    name="views",
    help="Online product views and purchases (Segment, GA4, Shopify, native).",
    no_args_is_help=True,
)


@views_app.callback()
def _views() -> None:
    """Online product views and purchases (Segment, GA4, Shopify, native)."""


@views_app.command("parse")
def parse_command(
    source: str = typer.Argument(..., metavar="FILE|-", help="A JSON or NDJSON file; - for stdin."),
    fmt: FormatChoice = typer.Option(
        FormatChoice.auto,
        "--format",
        help="The payload's platform; auto tells them apart by shape.",
    ),
) -> None:
    """Print each event as one normalised JSON line.

    Skipped events (page views, …) are reported on stderr as ``skipped: <why>``;
    malformed ones as ``rejected: <why>``, and the exit status is then 1. Prices
    and revenue are printed as decimal strings, so ``"49.90"`` keeps its digits.
    """
    raw = _read(source)
    rejected = False
    for prefix, outcome in _outcomes(raw, cast(Format, str(fmt.value))):
        if isinstance(outcome, NormalisedEvent):
            sys.stdout.write(orjson.dumps(outcome.to_json_dict()).decode() + "\n")
        elif isinstance(outcome, Skipped):
            sys.stderr.write(f"skipped: {prefix}{outcome.reason}\n")
        else:
            rejected = True
            sys.stderr.write(f"rejected: {prefix}{outcome.reason}\n")
    sys.stdout.flush()
    if rejected:
        raise typer.Exit(1)


def _read(source: str) -> bytes:
    if source == "-":
        return sys.stdin.buffer.read()
    try:
        return Path(source).read_bytes()
    except OSError as error:
        sys.stderr.write(f"error: cannot read {source}: {error.strerror}\n")
        raise typer.Exit(2) from None


def _outcomes(raw: bytes, fmt: Format) -> list[tuple[str, Outcome]]:
    """One JSON document, or NDJSON (one document per non-blank line)."""
    try:
        document = orjson.loads(raw)
    except orjson.JSONDecodeError as whole_error:
        lines = [(n, line) for n, line in enumerate(raw.splitlines(), 1) if line.strip()]
        if len(lines) < 2 or not _is_json(lines[0][1]):
            return [("", Rejected(f"input is neither JSON nor NDJSON: {whole_error}"))]
        results: list[tuple[str, Outcome]] = []
        for number, line in lines:
            prefix = f"line {number}: "
            try:
                value = orjson.loads(line)
            except orjson.JSONDecodeError as error:
                results.append((prefix, Rejected(f"invalid JSON: {error}")))
                continue
            results.extend((prefix, outcome) for outcome in normalise_each(value, fmt))
        return results
    return [("", outcome) for outcome in normalise_each(document, fmt)]


def _is_json(line: bytes) -> bool:
    try:
        orjson.loads(line)
    except orjson.JSONDecodeError:
        return False
    return True

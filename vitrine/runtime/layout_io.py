"""Load a :class:`~vitrine.contracts.layout.StoreLayout` from a YAML or JSON file.

The gateway, the server's ``store import`` and the simulator read the same file;
this is the one place that does the I/O. ``.json`` files are parsed as JSON,
anything else as YAML (a superset of JSON).
"""

from __future__ import annotations

from pathlib import Path

import orjson
import yaml
from pydantic import ValidationError

from vitrine.contracts.layout import StoreLayout

__all__ = ["LayoutFileError", "load_layout", "parse_layout"]


class LayoutFileError(ValueError):
    """A layout file that cannot be read or does not validate; the message says why."""


def parse_layout(text: str | bytes, *, json: bool = False, source: str = "layout") -> StoreLayout:
    try:
        data = orjson.loads(text) if json else yaml.safe_load(text)
    except (orjson.JSONDecodeError, yaml.YAMLError) as exc:
        raise LayoutFileError(f"{source}: not valid {'JSON' if json else 'YAML'}: {exc}") from None
    if not isinstance(data, dict):
        raise LayoutFileError(f"{source}: the document must be a mapping")
    try:
        return StoreLayout.model_validate(data)
    except ValidationError as exc:
        raise LayoutFileError(f"{source}: {exc}") from None


def load_layout(path: str | Path) -> StoreLayout:
    """Read and validate a layout file; raises :class:`LayoutFileError`."""
    path = Path(path)
    try:
        text = path.read_bytes()
    except OSError as exc:
        raise LayoutFileError(f"{path}: cannot read: {exc.strerror}") from None
    return parse_layout(text, json=path.suffix.lower() == ".json", source=str(path))

"""Store layout and catalogue files: malformed input gets a clear, typed error.

Issue #10 ("Bad input"): every surface, layout and catalogue files included,
answers malformed input with a clear error. Property-based: byte mutations and
structural mutations of the shipped sample files (``firmware_sim/data``) and of
a catalogue CSV. The oracle is the same for each: the parser returns a valid
object or raises its typed error with a message — never another exception.
"""

from __future__ import annotations

import csv
import io
from typing import Any

import orjson
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from firmware_sim.store import SampleFiles
from server.catalogue.service import ImportRejected, parse_catalogue
from server.stores.service import parse_layout as server_parse_layout
from vitrine.contracts.layout import StoreLayout
from vitrine.runtime.layout_io import LayoutFileError, parse_layout

FILES = SampleFiles()
LAYOUT_TEXT = FILES.layout.read_bytes()
LAYOUT_DOC: dict[str, Any] = yaml.safe_load(LAYOUT_TEXT)
CATALOGUE_TEXT = FILES.catalogue.read_bytes()
CATALOGUE_DOC: dict[str, Any] = orjson.loads(CATALOGUE_TEXT)

EXAMPLES = settings(
    max_examples=150, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)


def _catalogue_csv(doc: dict[str, Any]) -> bytes:
    out = io.StringIO()
    columns = ["product_id", "title", "brand", "category", "url", "sku", "gtin", "size", "colour",
               "price", "currency"]  # fmt: skip
    writer = csv.DictWriter(out, columns, extrasaction="ignore")
    writer.writeheader()
    for product in doc["products"]:
        for variant in product["variants"]:
            writer.writerow({**product, **variant})
    return out.getvalue().encode()


CATALOGUE_CSV = _catalogue_csv(CATALOGUE_DOC)


@st.composite
def byte_mutations(draw: st.DrawFn, original: bytes) -> bytes:
    data = bytearray(original)
    for _ in range(draw(st.integers(1, 8))):
        if not data:
            break
        at = draw(st.integers(0, len(data) - 1))
        match draw(st.sampled_from(["flip", "insert", "delete", "truncate"])):
            case "flip":
                data[at] = draw(st.integers(0, 255))
            case "insert":
                data[at:at] = draw(st.binary(min_size=1, max_size=8))
            case "delete":
                del data[at : at + draw(st.integers(1, 16))]
            case "truncate":
                del data[at:]
    return bytes(data)


JUNK = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(),
    st.text(max_size=20), st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
)  # fmt: skip


@st.composite
def structural_mutations(draw: st.DrawFn, original: Any) -> Any:
    """Replace, drop or duplicate one node somewhere in a JSON-like document."""
    doc = orjson.loads(orjson.dumps(original))
    node = doc
    for _ in range(draw(st.integers(0, 4))):
        children = list(node.items()) if isinstance(node, dict) else list(enumerate(node))
        children = [(k, v) for k, v in children if isinstance(v, dict | list) and v]
        if not children:
            break
        node = draw(st.sampled_from(children))[1]
    if isinstance(node, dict) and node:
        key = draw(st.sampled_from(sorted(node)))
        match draw(st.sampled_from(["replace", "drop", "rename"])):
            case "replace":
                node[key] = draw(JUNK)
            case "drop":
                del node[key]
            case "rename":
                node[key + draw(st.text(min_size=1, max_size=3))] = node.pop(key)
    elif isinstance(node, list) and node:
        at = draw(st.integers(0, len(node) - 1))
        match draw(st.sampled_from(["replace", "drop", "duplicate"])):
            case "replace":
                node[at] = draw(JUNK)
            case "drop":
                del node[at]
            case "duplicate":
                node.append(node[at])
    return doc


def _layout_outcome(content: bytes) -> StoreLayout | str:
    try:
        layout = parse_layout(content)
    except LayoutFileError as error:
        assert str(error).startswith("layout: ")
        with_server = _server_layout_outcome(content)
        assert with_server == str(error), "the server must refuse what the gateway refuses"
        return str(error)
    assert isinstance(layout, StoreLayout)
    assert _server_layout_outcome(content) == layout
    return layout


def _server_layout_outcome(content: bytes) -> StoreLayout | str:
    try:
        return server_parse_layout(content)
    except ImportRejected as error:
        return error.problems[0]


def _catalogue_outcome(content: bytes, fmt: str) -> None:
    try:
        records = parse_catalogue(content, "csv" if fmt == "csv" else "json")
    except ImportRejected as error:
        assert error.problems and all(isinstance(p, str) and p for p in error.problems)
        return
    assert all(record.variants for record in records)


def test_the_sample_files_parse() -> None:
    assert isinstance(_layout_outcome(LAYOUT_TEXT), StoreLayout)
    _catalogue_outcome(CATALOGUE_TEXT, "json")
    assert len(parse_catalogue(CATALOGUE_CSV, "csv")) == len(CATALOGUE_DOC["products"])


@EXAMPLES
@given(byte_mutations(LAYOUT_TEXT))
def test_a_byte_mutated_layout_is_parsed_or_refused_clearly(content: bytes) -> None:
    _layout_outcome(content)


@EXAMPLES
@given(structural_mutations(LAYOUT_DOC))
def test_a_structurally_mutated_layout_is_parsed_or_refused_clearly(doc: Any) -> None:
    _layout_outcome(orjson.dumps(doc))


@EXAMPLES
@given(byte_mutations(CATALOGUE_TEXT))
def test_a_byte_mutated_json_catalogue_is_parsed_or_refused_clearly(content: bytes) -> None:
    _catalogue_outcome(content, "json")


@EXAMPLES
@given(structural_mutations(CATALOGUE_DOC))
def test_a_structurally_mutated_json_catalogue_is_parsed_or_refused_clearly(doc: Any) -> None:
    _catalogue_outcome(orjson.dumps(doc), "json")


@EXAMPLES
@given(byte_mutations(CATALOGUE_CSV))
def test_a_byte_mutated_csv_catalogue_is_parsed_or_refused_clearly(content: bytes) -> None:
    _catalogue_outcome(content, "csv")

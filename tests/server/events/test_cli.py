"""``vitrine views parse``: stdout lines, stderr reasons, exit status."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from server.events.cli import views_app
from tests.server.events.payloads import (
    GA4_DATALAYER_VIEW_ITEM,
    SEGMENT_PAGE_VIEWED,
    SEGMENT_PRODUCT_VIEWED,
    SHOPIFY_PRODUCT_VIEWED,
)

runner = CliRunner()


def _lines(text: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in text.splitlines()]


def test_a_json_document_prints_one_line_per_event(tmp_path: Path) -> None:
    source = tmp_path / "batch.json"
    source.write_text(json.dumps({"batch": [SEGMENT_PRODUCT_VIEWED, SEGMENT_PAGE_VIEWED]}))

    result = runner.invoke(views_app, ["parse", str(source)])

    assert result.exit_code == 0, result.output
    [line] = _lines(result.stdout)
    assert line == {
        "platform": "segment",
        "event_type": "product_viewed",
        "event_id": "ajs-test-message-0001",
        "shopper_keys": ["userId:test-user-0001", "anonymousId:test-anon-0001"],
        "event_time": "2024-05-01T10:15:00Z",
        "products": [
            {
                "product_id": "507f1f77bcf86cd799439011",
                "variant_id": None,
                "sku": "G-32",
                "name": "Monopoly: 3rd Edition",
                "variant": "200 pieces",
                "price": "18.99",
                "quantity": 1,
                "currency": "USD",
            }
        ],
        "order_id": None,
        "revenue": None,
        "pickup_store": None,
    }
    assert result.stderr == (
        "skipped: batch[1]: Segment track 'Page Viewed' is not a product view or purchase\n"
    )


def test_ndjson_on_stdin_keeps_good_lines_around_a_bad_one() -> None:
    bad = dict(GA4_DATALAYER_VIEW_ITEM, ecommerce={"items": [{"item_id": "A", "price": "€5"}]})
    text = "\n".join(
        [
            json.dumps(SHOPIFY_PRODUCT_VIEWED),
            "",
            json.dumps(bad),
            "{not json",
            json.dumps(GA4_DATALAYER_VIEW_ITEM),
        ]
    )

    result = runner.invoke(views_app, ["parse", "-"], input=text)

    assert result.exit_code == 1
    assert [line["platform"] for line in _lines(result.stdout)] == ["shopify", "ga4"]
    assert result.stderr.splitlines() == [
        "rejected: line 3: ecommerce.items[0].price: '€5' is not a decimal number",
        "rejected: line 4: invalid JSON: "
        + result.stderr.splitlines()[1].split("invalid JSON: ")[1],
    ]
    assert result.stderr.splitlines()[1].startswith("rejected: line 4: invalid JSON: ")


def test_garbage_input_is_rejected() -> None:
    result = runner.invoke(views_app, ["parse", "-"], input="<html>")
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.startswith("rejected: input is neither JSON nor NDJSON: ")


def test_format_option_is_checked() -> None:
    result = runner.invoke(views_app, ["parse", "--format", "amplitude", "-"], input="{}")
    assert result.exit_code == 2
    assert "amplitude" in result.stderr


def test_forced_format() -> None:
    result = runner.invoke(
        views_app, ["parse", "--format", "native", "-"], input=json.dumps(SEGMENT_PRODUCT_VIEWED)
    )
    assert result.exit_code == 1
    assert result.stderr == "rejected: event: unknown field 'anonymousId'\n"


def test_missing_file_is_a_usage_error(tmp_path: Path) -> None:
    result = runner.invoke(views_app, ["parse", str(tmp_path / "nope.json")])
    assert result.exit_code == 2
    assert "cannot read" in result.stderr


def test_the_installed_vitrine_command(tmp_path: Path) -> None:
    source = tmp_path / "view.json"
    source.write_text(json.dumps(SHOPIFY_PRODUCT_VIEWED))
    done = subprocess.run(
        [str(Path(sys.executable).parent / "vitrine"), "views", "parse", str(source)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    [line] = _lines(done.stdout)
    assert line["shopper_keys"] == ["shopify_client_id:test-shopify-client-0001"]
    assert line["products"][0]["currency"] == "CNY"  # type: ignore[index]


def test_format_choices_match_the_normaliser() -> None:
    from server.events import FORMATS
    from server.events.cli import FormatChoice

    assert tuple(FormatChoice) == FORMATS

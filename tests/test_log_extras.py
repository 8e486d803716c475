"""No ``extra=`` key in a log call may name a LogRecord attribute.

``logging`` raises ``KeyError("Attempt to overwrite 'created' in LogRecord")``
for such a call, but only when the level is enabled: a route that logged
``extra={"created": …}`` at INFO answered 500 in the demo and passed every test
run below INFO. This scans the source, so it holds at every level.
"""

from __future__ import annotations

import ast
import logging
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("vitrine", "gateway", "server", "mobile_api", "firmware_sim", "bench")
#: Every attribute a fresh LogRecord has, plus the two ``Formatter`` adds.
RESERVED = set(vars(logging.LogRecord("n", 0, "p", 0, "m", None, None))) | {"message", "asctime"}


def _extra_keys(tree: ast.AST) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        for keyword in node.keywords:
            if keyword.arg == "extra" and isinstance(keyword.value, ast.Dict):
                for key in keyword.value.keys:
                    if isinstance(key, ast.Constant) and isinstance(key.value, str):
                        found.append((node.lineno, key.value))
    return found


def test_no_log_extra_overwrites_a_record_attribute() -> None:
    clashes = [
        f"{path.relative_to(ROOT)}:{line}: {key}"
        for package in PACKAGES
        for path in sorted((ROOT / package).rglob("*.py"))
        for line, key in _extra_keys(ast.parse(path.read_text(), str(path)))
        if key in RESERVED
    ]
    assert clashes == []


def test_the_scan_finds_a_clash() -> None:
    tree = ast.parse('log.info("x", extra={"created": 1, "fine": 2})')
    assert [key for _, key in _extra_keys(tree) if key in RESERVED] == ["created"]

"""A queue checker: join what was sent (ground truth) with what came out, by key.

Like Jepsen's queue checker: every key sent must come out (``lost`` if not),
nothing may come out that was not sent (``unexpected``), and each key should
come out once (``duplicated`` counts the extra copies). Keys are whatever
identifies one effect in the test: an EPC's arrival, a fact's ``event_id``, an
event's stream ``seq``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Iterable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Verdict", "check"]


@dataclass(frozen=True, slots=True)
class Verdict:
    """The join of ``expected`` and ``observed`` keys."""

    expected: int
    observed: int
    lost: frozenset[Any] = field(default_factory=frozenset)
    unexpected: frozenset[Any] = field(default_factory=frozenset)
    #: key -> extra copies beyond the first
    duplicated: dict[Any, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """Exactly once: nothing lost, nothing unexpected, nothing twice."""
        return not (self.lost or self.unexpected or self.duplicated)

    def summary(self) -> str:
        def few(keys: Iterable[Any]) -> list[Any]:
            return sorted(keys, key=repr)[:5]

        return (
            f"expected={self.expected} observed={self.observed} lost={len(self.lost)} "
            f"{few(self.lost)} unexpected={len(self.unexpected)} {few(self.unexpected)} "
            f"duplicated={sum(self.duplicated.values())} {few(self.duplicated)}"
        )


def check(expected: Iterable[Hashable], observed: Iterable[Hashable]) -> Verdict:
    """Count lost, unexpected and duplicated keys (``expected`` must not repeat a key)."""
    want = list(expected)
    if len(set(want)) != len(want):
        raise ValueError("expected keys repeat: the ground truth must name each effect once")
    wanted = set(want)
    got = Counter(observed)
    return Verdict(
        expected=len(want),
        observed=sum(got.values()),
        lost=frozenset(k for k in want if k not in got),
        unexpected=frozenset(k for k in got if k not in wanted),
        duplicated={k: n - 1 for k, n in got.items() if n > 1},
    )

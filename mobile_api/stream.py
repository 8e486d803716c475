"""Per-shopper delivery to the phones connected to *this* instance.

:class:`Hub` maps a shopper to their local connections; the MQTT intake calls
:meth:`Hub.dispatch` on the event loop. Each :class:`Connection` has a bounded
queue: when it is full the phone is stuck, so it is marked dropped (it will be
closed and resume from its last seq) and nobody else waits for it.

:class:`Sequencer` is the pure core of "every missed message exactly once, in
order": it compares each live message's seq with the last one sent and says
whether to skip it (a duplicate, or already replayed from the outbox), send it,
or first fill the gap from the outbox.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Literal

__all__ = ["Connection", "Hub", "ResumeDecision", "Sequencer", "plan_resume"]


@dataclass(slots=True, eq=False)
class Connection:
    """One phone's connection; identity-hashed so the hub can hold it in a set."""

    shopper: str
    queue: asyncio.Queue[tuple[int | None, bytes]]
    dropped: asyncio.Event = field(default_factory=asyncio.Event)

    @classmethod
    def make(cls, shopper: str, size: int) -> Connection:
        return cls(shopper, asyncio.Queue(maxsize=size))

    def offer(self, seq: int | None, payload: bytes) -> None:
        if self.dropped.is_set():
            return
        try:
            self.queue.put_nowait((seq, payload))
        except asyncio.QueueFull:
            self.dropped.set()


@dataclass(slots=True)
class Hub:
    _by_shopper: dict[str, set[Connection]] = field(default_factory=dict)

    def register(self, connection: Connection) -> None:
        self._by_shopper.setdefault(connection.shopper, set()).add(connection)

    def unregister(self, connection: Connection) -> None:
        conns = self._by_shopper.get(connection.shopper)
        if conns is not None:
            conns.discard(connection)
            if not conns:
                del self._by_shopper[connection.shopper]

    def dispatch(self, shopper: str, seq: int | None, payload: bytes) -> None:
        for connection in tuple(self._by_shopper.get(shopper, ())):
            connection.offer(seq, payload)

    def count(self) -> int:
        return sum(len(c) for c in self._by_shopper.values())


Action = Literal["skip", "send", "fill"]


@dataclass(slots=True)
class Sequencer:
    """The last seq sent on one connection, and what to do with the next one."""

    last: int

    def classify(self, seq: int | None) -> Action:
        if seq is None:
            return "fill"  # an event without seq: read the stream from the outbox
        if seq <= self.last:
            return "skip"
        return "send" if seq == self.last + 1 else "fill"


@dataclass(frozen=True, slots=True)
class ResumeDecision:
    kind: Literal["fresh", "replay", "reset"]
    #: Where the connection's sequencer starts after the decision.
    start: int


def plan_resume(last_seq: int | None, last: int, first_retained: int | None) -> ResumeDecision:
    """What a (re)connecting phone gets, given what the outbox still holds.

    - no ``last_seq``: a fresh start at the stream's end (state comes from REST);
    - every message after ``last_seq`` still retained: replay them;
    - otherwise (some were purged or are past retention, or ``last_seq`` is from
      the future, e.g. after an erase): an explicit ``reset``.
    """
    if last_seq is None:
        return ResumeDecision("fresh", last)
    if last_seq == last:
        return ResumeDecision("replay", last_seq)
    if last_seq > last or first_retained is None or first_retained > last_seq + 1:
        return ResumeDecision("reset", last)
    return ResumeDecision("replay", last_seq)

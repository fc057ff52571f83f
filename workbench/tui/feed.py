"""The bridge from trainer events (any thread) to the UI: a buffered sink plus coalesced wake-ups.

The trainer calls `EventFeed.sink(event)` from its worker thread. The event goes into a locked
buffer and a `FeedReady` message is posted; a queued `FeedReady` is replaced by a newer one
(`can_replace`), so however fast the trainer logs, the UI loop handles at most one wake-up per
frame and drains every buffered event in order: no curve point is lost, no message piles up,
and the trainer never waits on the UI (no `call_from_thread`).
"""

from __future__ import annotations

import threading
from typing import Any, Callable

from textual.message import Message

from lvm_core.events import Event


class FeedReady(Message):
    """Events are waiting in `feed`; handlers call `feed.drain()`."""

    def __init__(self, feed: "EventFeed") -> None:
        super().__init__()
        self.feed = feed

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, FeedReady) and message.feed is self.feed


class EventFeed:
    """A thread-safe event buffer whose `sink` is handed to the trainer (or a file tail)."""

    def __init__(self, post: Callable[[Message], Any], source: str = "train") -> None:
        self._post = post
        self._lock = threading.Lock()
        self._events: list[Event | dict[str, Any]] = []
        self.source = source
        self.posted = 0

    def sink(self, event: Event | dict[str, Any]) -> None:
        """Buffer one event (an Event, or a JSON record read back from a run directory)."""
        with self._lock:
            self._events.append(event)
        self.posted += 1
        self._post(FeedReady(self))

    def drain(self) -> list[dict[str, Any]]:
        """Every buffered event, oldest first, as JSON records (the shape metrics.jsonl holds)."""
        with self._lock:
            events, self._events = self._events, []
        return [e.to_json() if isinstance(e, Event) else e for e in events]

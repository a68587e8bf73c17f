"""What the bridge hands a browser: :class:`Event` and its kinds, the bridge's counters
(:class:`Tally`), and how an event waits in an outbox (packed as bytes, counted against its
bound).
"""

from __future__ import annotations

import enum
import logging
import threading
import time
from typing import NamedTuple

from ._outbox import Ending

__all__ = ["Event", "EventKind", "Tally"]

log = logging.getLogger("hotconfig.bridge")


class EventKind(enum.StrEnum):
    MESSAGE = "message"  # data: the message exactly as published
    GAP = "gap"  # data: {"channel", "from", "to"}: the indexes that never arrived
    IDLE = "idle"  # data: {"channel", "idle_timeout", "next"}: no message, and no done, in time
    # data: {"channel", "recovered": false, "reason", "epoch", "offset"}: what was missed cannot
    # be replayed (see ._recovery); the event's id is where the subscription now stands
    RECOVERY = "recovery"


class Event(NamedTuple):
    """One thing for the browser. ``final``: the last of its stream (``done`` or ``idle``).

    ``id``: the event id on a replayable channel (``"{epoch}:{offset}"``), None elsewhere.
    """

    kind: EventKind
    channel: str
    data: str
    key: str | None = None
    final: bool = False
    id: str | None = None


_COUNTERS = (
    *("messages", "delivered", "dropped_slow", "gaps", "out_of_order", "done", "idle"),
    *("replayed", "unrecovered", "replay_errors", "stray", "unparsed"),
)

# Seconds during which more warnings of one kind are DEBUG lines, summed up in the next one.
_QUIET = 10.0


class Tally:
    """The bridge's counters, incremented from the reader thread and from every loop, and its
    warnings about what it drops or cannot do, each kind said once and then quietly."""

    __slots__ = ("_lock", "_told", "counts")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.counts: dict[str, int] = dict.fromkeys(_COUNTERS, 0)
        self._told: dict[str, tuple[float, int]] = {}  # kind: (last WARNING, DEBUG since)

    def add(self, name: str, amount: int = 1) -> None:
        with self._lock:
            self.counts[name] += amount

    def warn(self, kind: str, message: str, *args: object) -> None:
        """Log ``message`` as a WARNING, unless one of this ``kind`` was less than 10 s ago:
        then as DEBUG, counted in the next WARNING. Bad input from a flood of publishes, or a
        failure met by every browser, writes a line every 10 s, not one per message."""
        now = time.monotonic()
        with self._lock:
            last, quieted = self._told.get(kind, (now - _QUIET, 0))
            loud = now - last >= _QUIET
            self._told[kind] = (now, 0) if loud else (last, quieted + 1)
        if not loud:
            log.debug(message, *args)
        elif quieted:
            log.warning(message + " (and %d more since the last such warning)", *args, quieted)
        else:
            log.warning(message, *args)

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self.counts)


# An item waits in the outbox as bytes: a kind tag, the channel's length (4 bytes) and the
# channel (a Redis channel name may hold any byte, NUL included), the coalescing key (JSON, so
# never a raw NUL; empty for none), NUL, the event id (ours; empty for none), NUL, the payload.
# The outbox counts these bytes against the bound; a pattern subscription needs each item's
# channel, an SSE writer its key and id.
_TAGS = {
    EventKind.MESSAGE: b"m",
    EventKind.GAP: b"g",
    EventKind.IDLE: b"i",
    EventKind.RECOVERY: b"r",
}
_KINDS = {tag[0]: kind for kind, tag in _TAGS.items()}
_FINAL_ENDING = {EventKind.IDLE: Ending.IDLE, EventKind.RECOVERY: Ending.SHUTDOWN}


def _pack(kind: EventKind, channel: str, data: bytes, key: str = "", event_id: str = "") -> bytes:
    name = channel.encode()
    return b"%s%s%s%s\0%s\0%s" % (
        _TAGS[kind],
        len(name).to_bytes(4, "little"),
        name,
        key.encode(),
        event_id.encode(),
        data,
    )


def _unpack(item: bytes) -> Event:
    kind = _KINDS[item[0]]
    end = 5 + int.from_bytes(item[1:5], "little")
    key, _, rest = item[end:].partition(b"\0")
    event_id, _, data = rest.partition(b"\0")
    text = data.decode("utf-8", "replace")
    channel = item[5:end].decode()
    return Event(kind, channel, text, key.decode() or None, False, event_id.decode() or None)

"""The bridge's channels: the names a browser may ask for, and the delivery class of each.

A channel name (or a pattern) comes from a browser's URL: :func:`check_channel` refuses, before
``authorize`` sees it, one that is empty, longer than :data:`MAX_CHANNEL_BYTES` in UTF-8, or
holds a control character (NUL, CR, LF, any of U+0000-U+001F, and U+007F), which Redis would
take but which would reach logs, keys and every adapter's ``authorize`` as they are.

Delivery classes, chosen per channel pattern (the first matching pattern wins):

:class:`Ephemeral`
    latest wins: a message replaces a still-unsent one with the same ``key`` field, so a slow
    browser gets the newest state of each widget, never a backlog.
:class:`Sequenced`
    the ``index`` field orders the messages: a skipped index becomes a ``gap`` event, an index
    already passed is dropped, a message with ``done: true`` ends the stream after it, and a
    stream that hears nothing for ``idle_timeout`` seconds ends with an ``idle`` event.
:class:`Replayable`
    kept in a capped history by :class:`~._history.ReplayPublisher`: each event has an
    id (``"{epoch}:{offset}"``), and a subscription started from one (``Last-Event-ID``), or
    one whose bridge reconnected, gets exactly the messages it missed, or a ``recovery`` event
    saying it cannot (:mod:`hotconfig.bridge._recovery`).

A channel with no class is forwarded as published, in order.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Final

from ._history import Replayable

__all__ = [
    "MAX_CHANNEL_BYTES",
    "Delivery",
    "Ephemeral",
    "Replayable",
    "Sequenced",
    "check_channel",
    "delivery_for",
]

# The longest channel name (or pattern) a browser may ask for, in UTF-8 bytes.
MAX_CHANNEL_BYTES: Final = 1024
_CONTROL = re.compile("[\x00-\x1f\x7f]").search


@dataclass(frozen=True, slots=True)
class Ephemeral:
    """Latest-wins coalescing by the JSON field ``key``."""

    key: str = "widgetId"


@dataclass(frozen=True, slots=True)
class Sequenced:
    """Messages ordered by the JSON field ``index`` (from ``first``), ended by ``done: true``."""

    index: str = "index"
    done: str = "done"
    idle_timeout: float = 30.0
    first: int = 0

    def __post_init__(self) -> None:
        if self.idle_timeout <= 0:
            raise ValueError(f"idle_timeout must be positive, got {self.idle_timeout}")


Delivery = Ephemeral | Sequenced | Replayable


def delivery_for(classes: Mapping[str, Delivery], channel: str) -> Delivery | None:
    """The class of the first pattern (``fnmatch`` syntax, case-sensitive) matching ``channel``."""
    for pattern, delivery in classes.items():
        if fnmatchcase(channel, pattern):
            return delivery
    return None


def check_channel(name: str) -> str:
    """``name`` if a browser may ask for it; else a :class:`ValueError` that says why (an
    adapter answers 400 with it)."""
    if not name:
        raise ValueError("a channel name is required, e.g. /sse/ai:stream:sess-abc")
    try:
        size = len(name.encode("utf-8"))
    except UnicodeEncodeError:
        raise ValueError("a channel name must be UTF-8 text: it holds a lone surrogate") from None
    if size > MAX_CHANNEL_BYTES:
        raise ValueError(
            f"a channel name may have at most {MAX_CHANNEL_BYTES} bytes in UTF-8, this one has "
            f"{size}: {name[:40]!r}..."
        )
    control = _CONTROL(name)
    if control is not None:
        raise ValueError(
            f"a channel name may not hold control characters (NUL, CR, LF, ...): {name[:80]!r} "
            f"holds {control[0]!r} at {control.start()}"
        )
    return name

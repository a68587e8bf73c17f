"""The bridge's delivery classes, chosen per channel pattern (the first matching pattern wins).

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

from collections.abc import Mapping
from dataclasses import dataclass
from fnmatch import fnmatchcase

from ._history import Replayable

__all__ = ["Delivery", "Ephemeral", "Replayable", "Sequenced", "delivery_for"]


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

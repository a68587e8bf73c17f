"""Stored values the model refused, remembered so that each is reported once.

The store keeps a value the model refused, so every resync meets it again: it is counted and
signalled once, not at every reconnect. Bounded, so that a stream of rejected values cannot
grow memory (the oldest is forgotten first).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, Final

__all__ = ["Refused"]

_MAX: Final = 10_000
_SHOWN: Final = 200  # characters of a value's repr that tell one refused value from another


class Refused:
    """(scope, key) -> the value last reported as refused there."""

    __slots__ = ("_reported", "limit")

    def __init__(self, limit: int = _MAX) -> None:
        self.limit = limit
        # Ordered, to forget the oldest in O(1) (a dict's front costs a scan past its deleted).
        self._reported: OrderedDict[tuple[str, str], str] = OrderedDict()

    def first(self, scope: str, key: str, value: Any) -> bool:
        """Record a refused value; False if this value was reported there already."""
        slot, shown = (scope, key), repr(value)[:_SHOWN]
        reported = self._reported
        if reported.get(slot) == shown:
            return False
        reported.pop(slot, None)
        if len(reported) >= self.limit:
            reported.popitem(last=False)
        reported[slot] = shown
        return True

    def __len__(self) -> int:
        return len(self._reported)

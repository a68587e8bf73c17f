"""A receiver that remembers what it was called with, for tests that wait on another thread."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

__all__ = ["Recorder"]


class Recorder:
    """Collects what a receiver is called with, in order; :meth:`wait_for` blocks until a call
    matches.

    Works as an ``on_change`` receiver (it records the :class:`~hotconfig.Change`) and as a
    blinker receiver: of ``signals.config_changed`` it records the ``change`` keyword, of any
    other signal the keywords as a dict (``{"reason", "error", "key"}`` of ``config_rejected``,
    ``{"old", "new"}`` of ``status_changed``). It is called on the listener thread (or whichever
    thread sends) and read on the test's.
    """

    def __init__(self) -> None:
        self._calls: list[Any] = []
        self._cond = threading.Condition()

    def __call__(self, *args: Any, **kwargs: Any) -> None:
        call = kwargs["change"] if "change" in kwargs else kwargs or args[-1]
        with self._cond:
            self._calls.append(call)
            self._cond.notify_all()

    @property
    def calls(self) -> list[Any]:
        """What was recorded so far, oldest first (a copy)."""
        with self._cond:
            return list(self._calls)

    def wait_for(self, predicate: Callable[[Any], object], timeout: float = 5.0) -> Any:
        """The first recorded call for which ``predicate`` is true, waiting up to ``timeout``."""
        found: list[Any] = []

        def match() -> bool:
            found[:] = [call for call in self._calls if predicate(call)][:1]
            return bool(found)

        with self._cond:
            assert self._cond.wait_for(match, timeout), f"no matching call in {self._calls}"
        return found[0]

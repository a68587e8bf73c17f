"""The change receivers of one client: who is called for which key, and how safely."""

from __future__ import annotations

import asyncio
import fnmatch
import inspect
import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from . import signals
from .signals import Change

__all__ = ["Receiver", "Receivers"]

log = logging.getLogger("hotconfig")

Receiver = Callable[[Change], Any]


class Receivers:
    """Receivers by fnmatch pattern, with the receivers of each key cached after its first change.

    ``dispatch`` runs on the listener thread: every receiver in turn, each isolated, then the
    module-level ``config_changed`` signal. fnmatch runs once per key, not once per change.
    """

    __slots__ = ("_cache", "_entries", "_lock", "_on_error")

    def __init__(self, on_error: Callable[[], None]) -> None:
        self._entries: list[tuple[str, Receiver]] = []
        self._cache: dict[str, tuple[Receiver, ...]] = {}
        self._lock = threading.Lock()
        self._on_error = on_error

    def add(self, pattern: str, receiver: Receiver, loop: asyncio.AbstractEventLoop | None) -> None:
        target = receiver
        if inspect.iscoroutinefunction(receiver):
            target = _on_loop(receiver, loop, self._on_error)
        with self._lock:
            self._entries.append((pattern, target))
            self._cache = {}  # a new dict, so a dispatch in progress keeps a consistent one

    def matching(self, key: str) -> tuple[Receiver, ...]:
        if not self._entries:
            return ()  # nothing to match, and nothing worth a cache entry per key
        cache = self._cache
        matched = cache.get(key)
        if matched is None:
            matched = tuple(fn for pat, fn in self._entries if fnmatch.fnmatchcase(key, pat))
            cache[key] = matched
        return matched

    def dispatch(self, change: Change) -> None:
        for receiver in self.matching(change.key):
            try:
                receiver(change)
            except Exception:
                self._on_error()
                log.exception("hotconfig: change receiver %r raised for %r", receiver, change.key)
        signals.send_isolated(signals.config_changed, change.key, self._on_error, change=change)


def _on_loop(
    receiver: Callable[[Change], Any],
    loop: asyncio.AbstractEventLoop | None,
    on_error: Callable[[], None],
) -> Receiver:
    """Wrap an ``async def`` receiver so the listener thread schedules it on ``loop``."""
    if loop is None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            raise TypeError(
                f"{receiver.__qualname__} is async: register it from a running event loop or "
                "pass on_change(pattern, loop=...)"
            ) from None
    target_loop = loop

    def done(future: Future[Any]) -> None:
        if not future.cancelled() and future.exception() is not None:
            on_error()
            log.error("hotconfig: async change receiver raised", exc_info=future.exception())

    def schedule(change: Change) -> None:
        asyncio.run_coroutine_threadsafe(receiver(change), target_loop).add_done_callback(done)

    return schedule

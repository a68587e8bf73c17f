"""Hearing that the server is stopping while streams are still open, without patching it.

uvicorn (and gunicorn's UvicornWorker, and ``uvicorn --reload``, whose supervisor sends
SIGTERM to the server process) handles SIGTERM and SIGINT by closing its sockets and then
*waiting for every open response to finish* before it runs the lifespan shutdown. An endless
event stream never finishes, so a lifespan hook alone comes too late: the server hangs until
its graceful-shutdown timeout, or forever. sse-starlette patches ``uvicorn.Server.handle_exit``
for this, which broke when uvicorn changed how it installs its handlers.

Here the server's own handler stays in charge. While streams may be open, one handler per
signal is put in front of whatever handler the server installed: it asks the event loop to end
the streams, then calls the server's handler unchanged. When the last watcher leaves, the
server's handler is put back. If the server installed no Python-level handler (the default
action would kill the process anyway), nothing is installed; nor outside the main thread,
where Python cannot install handlers (there the streams end with the lifespan, or when the
ASGI server reports ``http.disconnect``).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

__all__ = ["watch"]

log = logging.getLogger("hotconfig.fastapi")

_SIGNALS = (signal.SIGINT, signal.SIGTERM)
Handler = Callable[[int, FrameType | None], Any]


class _Watchers:
    """The callbacks to run on SIGINT/SIGTERM, each on its own event loop."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._callbacks: dict[int, tuple[asyncio.AbstractEventLoop, Callable[[], None]]] = {}
        self._previous: dict[int, Handler] = {}
        self._ids = itertools.count(1)

    def add(
        self, loop: asyncio.AbstractEventLoop, callback: Callable[[], None]
    ) -> Callable[[], None]:
        with self._lock:
            token = next(self._ids)
            self._callbacks[token] = (loop, callback)
            if len(self._callbacks) == 1:
                self._install()

        def remove() -> None:
            with self._lock:
                if self._callbacks.pop(token, None) is not None and not self._callbacks:
                    self._uninstall()

        return remove

    def _install(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        for signum in _SIGNALS:
            previous = signal.getsignal(signum)
            if callable(previous) and previous != self._handle:
                self._previous[signum] = previous
                signal.signal(signum, self._handle)

    def _uninstall(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        for signum, previous in list(self._previous.items()):
            # Someone else may have installed a handler after ours; theirs stays.
            if signal.getsignal(signum) == self._handle:
                signal.signal(signum, previous)
            del self._previous[signum]

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        """Called by Python in the main thread, between two bytecodes of whatever runs there."""
        for loop, callback in list(self._callbacks.values()):
            try:
                loop.call_soon_threadsafe(callback)
            except RuntimeError:  # that loop is closed: nothing left to end there
                continue
        previous = self._previous.get(signum)
        if previous is not None:
            previous(signum, frame)


_watchers = _Watchers()


def watch(callback: Callable[[], None]) -> Callable[[], None]:
    """Run ``callback`` on the running event loop when the process gets SIGINT or SIGTERM.

    Returns a function that stops watching. Call from the event loop's thread.
    """
    return _watchers.add(asyncio.get_running_loop(), callback)

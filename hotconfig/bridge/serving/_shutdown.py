"""Hearing that the process is asked to stop while event streams are open, without patching
the server.

Servers stop gracefully: uvicorn (also as gunicorn's ``UvicornWorker``, and under ``--reload``,
whose supervisor sends SIGTERM), Django's ASGI app under it, and gunicorn's threaded workers
all handle SIGTERM by waiting for every open response to finish before they exit. An event
stream never finishes by itself, so the server hangs until its graceful timeout, or forever.
sse-starlette patches ``uvicorn.Server.handle_exit`` for this, which broke when uvicorn
changed how it installs its handlers.

Here the server's own handler stays in charge. :func:`end_streams_on_signals` puts one handler
per signal (SIGTERM, SIGINT) in front of whatever Python handler the server installed: it asks
each open stream's event loop to end the stream (with the ``end`` frame), then calls the
server's handler unchanged. A stream that opens after the signal ends at once, so a browser
that reconnects to a worker on its way out is sent on to another.

Python installs handlers only on the main thread. An ASGI stream served on the main thread's
loop (uvicorn, gunicorn's UvicornWorker) installs it when it opens, after the server installed
its own. A WSGI server serves on other threads, so the adapters install it when they are made
on the main thread (a Flask blueprint imported by a gunicorn worker). Where nothing of the app
runs on a worker's main thread after the server set its handlers (gunicorn ``--preload``, a
Django project whose URLs load at the first request), call it from gunicorn's hook::

    # gunicorn.conf.py
    from hotconfig.bridge.serving import end_streams_on_signals


    def post_worker_init(worker):
        end_streams_on_signals()

If the server installed no Python handler (the default action kills the process anyway),
nothing is installed.
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

__all__ = ["end_streams_on_signals", "watch"]

log = logging.getLogger("hotconfig.bridge")

_SIGNALS = (signal.SIGINT, signal.SIGTERM)
Handler = Callable[[int, FrameType | None], Any]


class _Watchers:
    """The callbacks to run when the process is asked to stop, each on its own event loop."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._callbacks: dict[int, tuple[asyncio.AbstractEventLoop, Callable[[], None]]] = {}
        self._previous: dict[int, Handler] = {}
        self._ids = itertools.count(1)
        self.stopping = False

    def add(
        self, loop: asyncio.AbstractEventLoop, callback: Callable[[], None]
    ) -> Callable[[], None]:
        if self.stopping:  # opened on a process on its way out: end it at once
            loop.call_soon_threadsafe(callback)
            return _nothing
        with self._lock:
            token = next(self._ids)
            self._callbacks[token] = (loop, callback)

        def remove() -> None:
            with self._lock:
                self._callbacks.pop(token, None)

        return remove

    def install(self) -> bool:
        """Put :meth:`_handle` in front of the handlers found; on the main thread only."""
        if threading.current_thread() is not threading.main_thread():
            return False
        installed = False
        with self._lock:
            for signum in _SIGNALS:
                current = signal.getsignal(signum)
                if current == self._handle:
                    installed = True
                elif callable(current):
                    self._previous[signum] = current
                    signal.signal(signum, self._handle)
                    installed = True
        return installed

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        """Called by Python on the main thread, between two bytecodes of whatever runs there:
        it takes no lock (the code it interrupted may hold it) and only schedules work."""
        self.stopping = True
        for loop, callback in list(self._callbacks.values()):
            try:
                loop.call_soon_threadsafe(callback)
            except RuntimeError:  # that loop is closed: nothing left to end there
                continue
        previous = self._previous.get(signum)
        if previous is not None:
            previous(signum, frame)


def _nothing() -> None:
    return None


_watchers = _Watchers()


def end_streams_on_signals() -> bool:
    """From now on, SIGTERM and SIGINT end every open event stream of this process first.

    Call on the main thread, after the server installed its signal handlers (see the module
    docstring for where); idempotent. True when the handler is in place; False off the main
    thread, or when the server handles neither signal in Python.
    """
    return _watchers.install()


def watch(
    callback: Callable[[], None], loop: asyncio.AbstractEventLoop | None = None
) -> Callable[[], None]:
    """Run ``callback`` on ``loop`` (default: the running loop) when the process is asked to
    stop; at once if it already was. Returns a function that stops watching.

    On the main thread this also installs the handler (:func:`end_streams_on_signals`): the
    server has installed its own by the time a stream opens.
    """
    _watchers.install()
    return _watchers.add(loop or asyncio.get_running_loop(), callback)

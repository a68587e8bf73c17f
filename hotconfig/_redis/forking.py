"""Fork safety and exit: every live client follows on in a forked child with no
configuration, and is closed when the interpreter exits.

After ``os.fork()`` (gunicorn ``--preload``, multiprocessing's fork start method) only the
forking thread exists in the child. The parent's listener thread is gone, its sockets are
shared with the parent, and reading them would steal the parent's messages. Each client
therefore drops what it inherited, unread, and starts a listener of its own.

At exit (a gunicorn worker's SIGTERM ends in ``sys.exit``) each client still open is closed, so
that it leaves the fleet registry at once instead of lingering there until its entry expires.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import weakref
from typing import Protocol

__all__ = ["ForkAware", "track", "untrack"]

log = logging.getLogger("hotconfig.forking")

_LOCK_TIMEOUT = 1.0


class ForkAware(Protocol):
    def _writer_lock(self) -> threading.RLock: ...

    def _after_fork_in_child(self) -> None: ...

    def close(self) -> None: ...


_clients: weakref.WeakSet[ForkAware] = weakref.WeakSet()
_held: list[threading.RLock] = []


def track(client: ForkAware) -> None:
    _clients.add(client)


def untrack(client: ForkAware) -> None:
    _clients.discard(client)


def _before_fork() -> None:
    # Hold every client's writer lock so that the child never inherits a state caught in the
    # middle of an apply. Bounded: a receiver stuck for long must not hang os.fork().
    for client in list(_clients):
        lock = client._writer_lock()
        if lock.acquire(timeout=_LOCK_TIMEOUT):
            _held.append(lock)


def _after_fork_in_parent() -> None:
    while _held:
        _held.pop().release()


def _after_fork_in_child() -> None:
    # The forking thread is the one thread the child has, and it holds these: release them, so
    # that a lock the child goes on using (a fork from inside a receiver) is not left held.
    while _held:
        _held.pop().release()
    for client in list(_clients):
        try:
            client._after_fork_in_child()
        except Exception:
            log.exception("could not restart the listener after fork")


@atexit.register
def _close_at_exit() -> None:
    for client in list(_clients):
        try:
            client.close()
        except Exception:
            log.exception("could not close a client at exit")


os.register_at_fork(
    before=_before_fork, after_in_parent=_after_fork_in_parent, after_in_child=_after_fork_in_child
)

"""Fork safety and exit, for everything that holds a socket or a thread: the one mechanism.

After ``os.fork()`` (gunicorn ``--preload``, multiprocessing's fork start method) only the
forking thread exists in the child. The parent's threads are gone, its sockets are shared with
the parent, and reading them would steal the parent's messages. Each tracked object therefore
drops what it inherited, unread, and starts afresh in the child
(:meth:`ForkAware._after_fork_in_child`).

Objects are tracked with a :class:`Stage`, and the stages run in their order, whatever the
order in which their modules were imported: config clients first (a reporter or a bridge of the
child may read a client), then the fleet's reporters, then bridges, then the serving loops that
hand a bridge's events to web servers. At exit the order is reversed: what uses a client is
closed before the client, so that a reporter still says goodbye for its instance and leaves the
fleet registry at once instead of lingering there until its entry expires.

Before the fork, every object that has one holds its writer lock (:meth:`ForkAware._fork_lock`)
so that the child never inherits a state caught in the middle of an apply.
"""

from __future__ import annotations

import atexit
import enum
import logging
import os
import threading
import weakref
from typing import Protocol

__all__ = ["ForkAware", "Stage", "track", "untrack"]

log = logging.getLogger("hotconfig.forking")

_LOCK_TIMEOUT = 1.0


class Stage(enum.IntEnum):
    """The order in which tracked objects follow on in a forked child (and, reversed, close at
    exit)."""

    CLIENTS = 0
    REPORTERS = 1
    BRIDGES = 2
    SERVING = 3


class ForkAware(Protocol):
    def _fork_lock(self) -> threading.RLock | None:
        """A lock to hold across the fork (None: nothing to hold)."""
        ...

    def _after_fork_in_child(self) -> None: ...

    def close(self) -> None: ...


_tracked: dict[Stage, weakref.WeakSet[ForkAware]] = {stage: weakref.WeakSet() for stage in Stage}
_held: list[threading.RLock] = []


def track(owner: ForkAware, stage: Stage) -> None:
    _tracked[stage].add(owner)


def untrack(owner: ForkAware) -> None:
    for owners in _tracked.values():
        owners.discard(owner)


def _in_order(reverse: bool = False) -> list[tuple[Stage, ForkAware]]:
    stages = sorted(Stage, reverse=reverse)
    return [(stage, owner) for stage in stages for owner in list(_tracked[stage])]


def _before_fork() -> None:
    # Bounded: a receiver stuck for long must not hang os.fork().
    for _, owner in _in_order():
        lock = owner._fork_lock()
        if lock is not None and lock.acquire(timeout=_LOCK_TIMEOUT):
            _held.append(lock)


def _after_fork_in_parent() -> None:
    while _held:
        _held.pop().release()


def _after_fork_in_child() -> None:
    # The forking thread is the one thread the child has, and it holds these: release them, so
    # that a lock the child goes on using (a fork from inside a receiver) is not left held.
    while _held:
        _held.pop().release()
    for stage, owner in _in_order():
        try:
            owner._after_fork_in_child()
        except Exception:
            log.exception("could not start afresh after fork: %s (%s)", owner, stage.name.lower())


@atexit.register
def _close_at_exit() -> None:
    for stage, owner in _in_order(reverse=True):
        try:
            owner.close()
        except Exception:
            log.exception("could not close at exit: %s (%s)", owner, stage.name.lower())


os.register_at_fork(
    before=_before_fork, after_in_parent=_after_fork_in_parent, after_in_child=_after_fork_in_child
)

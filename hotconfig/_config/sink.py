"""The apply step's owner: everything that happens under a client's writer lock.

The listener (and ``testing.override``, and the client's own acknowledged writes) hand the
sink parsed messages and store snapshots; the sink applies them to the
:class:`~.state.ConfigState`, publishes the new snapshot into the client's read slots through
the one callable it was given, and then tells: rejections, change receivers, the module-level
signals, ``wait_for_version`` waiters, the last-known-good file. Data flows one way — the
sink never reads the network and never imports the client.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from .. import signals
from .._redis.keyspace import StoreSnapshot
from ..errors import InvalidValueError, RejectReason
from ..signals import Status
from .lastgood import LastKnownGood
from .receivers import Receivers, send_isolated
from .snapshot import Snapshot
from .state import ConfigState, Staged, Update
from .stats import Counters
from .wire import Entry, Message

__all__ = ["Sink"]

log = logging.getLogger("hotconfig.sink")


class Sink:
    """Applies changes to one client's state and tells everyone who listens, in that order.

    Every method that applies (:meth:`flush`, :meth:`resync`, :meth:`pin`, :meth:`apply_write`)
    takes the writer lock and runs receivers on the calling thread: the listener thread, or the
    thread calling ``testing.override`` or ``apply_write``. ``sender`` is the object the
    module-level signals name as sender.
    """

    def __init__(
        self,
        state: ConfigState,
        swap: Callable[[Snapshot], None],
        sender: object,
        lastgood: LastKnownGood | None = None,
    ) -> None:
        self.state = state
        self.counters = Counters()
        self.receivers = Receivers(self.counters)
        self.status = Status.STARTING
        # The store's version as the listener last read it (a resync or an anti-entropy poll);
        # None before the first read. The client's `lag` is this minus the applied version.
        self.store_version: int | None = None
        self._swap = swap
        self._sender = sender
        self._lastgood = lastgood
        self._rejections = _RejectionLog()
        # Start is not a change (DESIGN §5): what the listener loads before the client's start()
        # returns is the baseline, told to no receiver; from then on the process could have
        # served the old values, and every change is told. Set by the client, under the lock.
        self.serving = False
        self._in_flight: tuple[Update, int] | None = None  # what a fork mid-dispatch interrupted
        self._replay: Update | None = None
        self._init_locks()
        if lastgood is not None and (cached := lastgood.load()) is not None:
            try:
                state.resync(cached)
            except (TypeError, ValueError, AttributeError) as exc:
                log.warning("ignoring the cache file %s: %s", lastgood.path, exc)
        swap(state.snapshot)
        self._handled = state.version

    def _init_locks(self) -> None:
        self.lock = threading.RLock()  # the writer lock: one apply at a time
        self._version_cond = threading.Condition(threading.Lock())

    # -- what the listener calls (on its thread) ------------------------------------------------

    def stage(self, message: Message) -> Staged:
        """Queue a parsed message for the next :meth:`flush`; a duplicate is counted here."""
        staged = self.state.stage(message)
        if staged is Staged.DUPLICATE:
            self.counters.skipped += 1
        return staged

    def flush(self) -> None:
        """Apply everything staged in one swap, then tell."""
        with self.lock:
            update = self.state.commit()
            self.counters.applied += update.applied
            if update.snapshot is not None or update.rejected:
                self._publish(update, save=True, tell=self.serving)

    def resync(self, stored: StoreSnapshot) -> None:
        """Adopt the store's state (dropping anything staged), signalling only real changes."""
        with self.lock:
            update = self.state.resync(stored)
            self.store_version = stored.version
            self.counters.resyncs += 1
            self._publish(update, save=True, tell=self.serving)
            self.flush()  # raw messages read before the resync apply over the store's state

    def reject(
        self,
        reason: RejectReason,
        error: Exception,
        key: str | None = None,
        version: int | None = None,
    ) -> None:
        """Count, log and signal a message or value that was refused."""
        self.counters.rejected += 1
        self.counters.last_rejection = f"{reason}: {error}"
        self._rejections.log(reason, error)
        send_isolated(
            signals.config_rejected,
            self._sender,
            self.counters,
            reason=reason,
            error=error,
            key=key,
            version=version,
        )

    def set_status(self, status: Status) -> None:
        """Move to ``status`` and signal it; CLOSED is final."""
        old = self.status
        if old is status or old is Status.CLOSED:
            return
        self.status = status
        log.info("status %s -> %s", old, status)
        send_isolated(signals.status_changed, self._sender, self.counters, old=old, new=status)

    # -- what the client calls -----------------------------------------------------------------

    def pin(self, values: Mapping[str, Any], unset: Iterable[str] = ()) -> None:
        """Pin values above every scope (testing.override); raises if the model rejects one."""
        with self.lock:
            self._publish(self.state.pin(values, unset), save=False)

    def apply_write(self, version: int, entries: Iterable[Entry]) -> bool:
        """Apply a write of this process that the store acknowledged at ``version``, then tell
        as for any change, on the calling thread; False if the client had it already."""
        with self.lock:
            update = self.state.apply_write(version, entries)
            self._publish(update, save=False)
            return update.applied > 0

    def begin_serving(self) -> None:
        """The client's start() returned: from now on every change is told."""
        with self.lock:
            self.serving = True

    def pinned(self) -> dict[str, Any]:
        return self.state.pinned()

    def wait_for_version(self, version: int, timeout: float | None) -> bool:
        with self._version_cond:
            return self._version_cond.wait_for(lambda: self._handled >= version, timeout)

    def handled(self) -> int:
        """The last version whose receivers have all run."""
        return self._handled

    # -- the one path out ----------------------------------------------------------------------

    def _publish(self, update: Update, *, save: bool, tell: bool = True) -> None:
        """Swap in ``update``'s snapshot, report its rejections and, if ``tell``, run the
        receivers and signals of its changes (not for the baseline a process starts from)."""
        if self._replay is not None:
            replay, self._replay = self._replay, None
            self._publish(replay, save=False)
        if update.snapshot is not None:
            self._swap(update.snapshot)
        for error in update.rejected:
            self._reject_value(error)
        try:
            for index, change in enumerate(update.changes if tell else ()):
                self._in_flight = (update, index)  # what a child forked mid-dispatch must finish
                self.receivers.dispatch(change)
                send_isolated(signals.config_changed, change.key, self.counters, change=change)
        finally:
            self._in_flight = None
        if update.snapshot is not None:
            # After the receivers: wait_for_version(v) returning means v is fully handled.
            with self._version_cond:
                self._handled = update.snapshot.version
                self._version_cond.notify_all()
        if save and self._lastgood is not None and update.changes:
            self._lastgood.save(self.state.stored())

    def _reject_value(self, error: InvalidValueError) -> None:
        self.reject(RejectReason.INVALID_VALUE, error, key=error.key, version=error.version)

    # -- fork safety ---------------------------------------------------------------------------

    def after_fork_in_child(self, inside_receiver: bool) -> None:
        """Make the child's sink usable; finish what a fork interrupted.

        ``inside_receiver``: a receiver of this client forked, so the thread that runs it is
        the child's own thread and goes on running it, holding the writer lock until it
        returns: keep that lock (the next apply waits for it) and replay nothing. Otherwise
        the thread that held the lock is gone: fresh locks, and the receivers it had not run
        yet run at the next apply, before anything else.
        """
        self._version_cond = threading.Condition(threading.Lock())
        # The parent's connection is not the child's: until its own listener connects, the
        # child names none (a fleet would otherwise drop it when the parent dies).
        self.counters.connection_id = None
        if inside_receiver:
            return
        self._init_locks()
        if self._in_flight is not None:
            update, index = self._in_flight
            self._in_flight = None
            self._replay = Update(update.snapshot, update.changes[index:])


class _RejectionLog:
    """Each rejection is logged once, but a flood of them is not a flood of WARNINGs.

    The first of each reason is a WARNING; more of the same reason within ``quiet`` seconds
    are DEBUG and summed up in the next WARNING, so a hostile publisher cannot fill the log.
    """

    __slots__ = ("_last", "_quiet", "_suppressed")

    def __init__(self, quiet: float = 10.0) -> None:
        self._quiet = quiet
        self._last: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}

    def log(self, reason: str, error: Exception) -> None:
        now = time.monotonic()
        if now - self._last.get(reason, -self._quiet) < self._quiet:
            self._suppressed[reason] = self._suppressed.get(reason, 0) + 1
            log.debug("rejected a change (%s): %s", reason, error)
            return
        self._last[reason] = now
        more = self._suppressed.pop(reason, 0)
        tail = f" ({more} more {reason} rejections since the last report)" if more else ""
        log.warning("rejected a change (%s): %s%s", reason, error, tail)

"""HotConfig: the in-process cache that follows the changes channel."""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections.abc import Callable, Iterable, Mapping
from types import TracebackType
from typing import Any, Generic, TypeVar

from pydantic import BaseModel

from . import forking, signals
from .cache import LastKnownGood
from .errors import ClientClosedError, ConfigKeyError
from .layout import DEFAULT_CHANNEL, DEFAULT_NAMESPACE, Layout
from .listener import Listener, ListenerOptions
from .receivers import Receiver, Receivers
from .schema import Schema
from .signals import Status
from .snapshot import Snapshot
from .state import ConfigState, Update
from .stats import Counters, Stats
from .wire import DEFAULT_MAX_BYTES, DEFAULT_SCOPE, validate_scope

__all__ = ["HotConfig"]

log = logging.getLogger("hotconfig")

ModelT = TypeVar("ModelT", bound=BaseModel)
_MISSING: Any = object()
_CLOSE_TIMEOUT = 1.8


class HotConfig(Generic[ModelT]):
    """A live, read-only view of the configuration in Redis.

    Reads (:meth:`get`, ``[]``, ``in``, :attr:`settings`, :meth:`snapshot`) never lock and never
    touch the network: they read one immutable snapshot that the listener thread replaces whole.
    """

    __slots__ = (
        "__weakref__",
        "_closed",
        "_counters",
        "_handled",
        "_in_flight",
        "_lifecycle",
        "_listener",
        "_lkg",
        "_lock",
        "_options",
        "_receivers",
        "_redis_kwargs",
        "_replay",
        "_snapshot",
        "_state",
        "_status",
        "_values",
        "_version_cond",
        "channel",
        "layout",
        "scopes",
        "service",
        "settings",
        "url",
    )

    settings: ModelT
    """The typed settings (an instance of ``model``), replaced whole on every change; ``None``
    without a model. Keep a reference for a consistent view across fields."""

    def __init__(
        self,
        url: str | None = None,
        *,
        model: type[ModelT] | None = None,
        scopes: Iterable[str] = (DEFAULT_SCOPE,),
        service: str | None = None,
        channel: str = DEFAULT_CHANNEL,
        namespace: str = DEFAULT_NAMESPACE,
        cache_path: str | os.PathLike[str] | None = None,
        max_message_bytes: int = DEFAULT_MAX_BYTES,
        ping_interval: float = 1.0,
        liveness_timeout: float = 2.0,
        poll_interval: float = 5.0,
        socket_timeout: float = 2.0,
        backoff_max: float = 0.5,
        redis_kwargs: Mapping[str, Any] | None = None,
    ) -> None:
        self.url = url or os.environ.get("HOTCONFIG_URL") or "redis://localhost:6379/0"
        scopes = tuple(scopes)
        if not scopes:
            raise ValueError("scopes must name at least one scope, e.g. ('global',)")
        self.scopes = tuple(validate_scope(scope) for scope in scopes)
        self.service = service
        self.channel = channel
        self.layout = Layout(namespace)
        self._options = ListenerOptions(
            ping_interval=ping_interval,
            liveness_timeout=liveness_timeout,
            poll_interval=poll_interval,
            socket_timeout=socket_timeout,
            backoff_max=backoff_max,
            max_message_bytes=max_message_bytes,
        )
        self._redis_kwargs = dict(redis_kwargs or {})
        if service:
            self._redis_kwargs.setdefault(
                "client_name", f"hotconfig:{service}"[:64].replace(" ", "_")
            )
        self._state = ConfigState(Schema(model), self.scopes)
        self._counters = Counters()
        self._receivers = Receivers(self._receiver_failed)
        self._listener: Listener | None = None
        self._status = Status.STARTING
        self._closed = False
        self._in_flight: tuple[Update, int] | None = None
        self._replay: Update | None = None
        self._init_locks()
        self._lkg = LastKnownGood(cache_path) if cache_path is not None else None
        if self._lkg is not None and (cached := self._lkg.load()) is not None:
            try:
                self._state.resync(*cached)
            except (TypeError, ValueError, AttributeError) as exc:
                log.warning("hotconfig: ignoring the cache file %s: %s", cache_path, exc)
        self._swap(self._state.snapshot)
        self._handled = self._state.snapshot.version
        forking.track(self)

    def _init_locks(self) -> None:
        self._lock = threading.RLock()  # serialises writers: the listener and override()
        # start() and close() only: never held while receivers run, so close() stays prompt.
        self._lifecycle = threading.Lock()
        self._version_cond = threading.Condition(threading.Lock())

    # -- reads: lock-free, no network -----------------------------------------------------------

    def get(self, key: str, default: Any = None) -> Any:
        """The effective value of ``key`` (a model default counts), or ``default`` if unset."""
        try:
            return self._values[key]
        except KeyError:
            return default

    def __getitem__(self, key: str) -> Any:
        try:
            return self._values[key]
        except KeyError:
            raise ConfigKeyError(
                f"{key!r} is not set in any of the scopes {list(self.scopes)} and is not a field "
                "of the model; use config.get(key, default) for optional keys"
            ) from None

    def __contains__(self, key: object) -> bool:
        return key in self._values

    def snapshot(self) -> Snapshot:
        """The current immutable mapping of every effective value: one consistent view."""
        return self._snapshot

    @property
    def version(self) -> int:
        """The store version the current snapshot reflects (0 before any versioned write)."""
        return self._snapshot.version

    @property
    def status(self) -> Status:
        return self._status

    @property
    def stats(self) -> Stats:
        """A fresh read-only copy of the listener's counters."""
        return self._counters.view()

    def wait_for_version(self, version: int, timeout: float | None = None) -> bool:
        """Block until ``version`` is live and its change receivers have run; False on timeout."""
        with self._version_cond:
            return self._version_cond.wait_for(lambda: self._handled >= version, timeout)

    # -- change receivers ---------------------------------------------------------------------

    def on_change(
        self, pattern: str = "*", *, loop: asyncio.AbstractEventLoop | None = None
    ) -> Callable[[Receiver], Receiver]:
        """Register a receiver for changes of keys matching ``pattern`` (fnmatch, case-sensitive).

        Sync receivers are called on the listener thread, one at a time, after the new snapshot
        is live; one that raises is logged and counted and the others still run. An ``async def``
        receiver runs on ``loop`` (by default the loop running where it is registered).
        """

        def register(receiver: Receiver) -> Receiver:
            self._receivers.add(pattern, receiver, loop)
            return receiver

        return register

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self, timeout: float | None = 5.0) -> bool:
        """Start following the store; True once the first snapshot is live.

        Returns after ``timeout`` at the latest, serving model defaults or the last-known-good
        snapshot while the listener keeps retrying; the client goes LIVE by itself later.
        """
        with self._lifecycle:
            if self._closed:
                raise ClientClosedError("this client is closed; create a new HotConfig")
            if self._listener is None:
                self._listener = self._new_listener()
                self._listener.start()
            listener = self._listener
        return listener.ready.wait(timeout)

    def _new_listener(self) -> Listener:
        return Listener(
            url=self.url,
            redis_kwargs=self._redis_kwargs,
            channel=self.channel,
            layout=self.layout,
            state=self._state,
            counters=self._counters,
            options=self._options,
            publish=self._publish,
            reject=self._reject_message,
            set_status=self._set_status,
            write_lock=self._lock,
            name=f"hotconfig-listener-{self.service or os.getpid()}",
        )

    def close(self) -> None:
        """Stop the listener and close its connections; idempotent, returns within about 2 s."""
        with self._lifecycle:
            if self._closed:
                return
            self._closed = True
            listener, self._listener = self._listener, None
        if listener is not None and not listener.stop(_CLOSE_TIMEOUT):
            log.warning("hotconfig: the listener thread did not stop within %ss", _CLOSE_TIMEOUT)
        forking.untrack(self)
        self._set_status(Status.CLOSED)

    def __enter__(self) -> HotConfig[ModelT]:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"<HotConfig status={self._status.value} version={self.version} "
            f"scopes={list(self.scopes)} service={self.service!r}>"
        )

    # -- the writer side: swap, then signal ---------------------------------------------------

    def _swap(self, snapshot: Snapshot) -> None:
        # Three plain attribute writes: a reader of `settings` or `get` pays no property call.
        # A reader may see the new values a moment before the new settings; snapshot() is the
        # one consistent view.
        self._snapshot = snapshot
        self._values = snapshot._values
        self.settings = snapshot.settings

    def _publish(self, update: Update) -> None:
        """Called on the listener thread (or by override()) with each applied update."""
        if self._replay is not None:
            replay, self._replay = self._replay, None
            self._publish(replay)
        if update.snapshot is not None:
            self._swap(update.snapshot)
        for error in update.rejected:
            self._count_rejection("invalid_value", error)
            signals.send_isolated(
                signals.config_rejected,
                self,
                self._receiver_failed,
                reason="invalid_value",
                error=error,
                key=error.key,
            )
        try:
            for index, change in enumerate(update.changes):
                self._in_flight = (update, index)  # what a child forked mid-dispatch must finish
                self._receivers.dispatch(change)
        finally:
            self._in_flight = None
        if update.snapshot is not None:
            # After the receivers: wait_for_version(v) returning means v is fully handled.
            with self._version_cond:
                self._handled = update.snapshot.version
                self._version_cond.notify_all()
        if self._lkg is not None and update.changes and self._listener is not None:
            self._lkg.save(self._state)

    def _receiver_failed(self) -> None:
        self._counters.receiver_errors += 1

    def _count_rejection(self, reason: str, error: Exception) -> None:
        self._counters.rejected += 1
        self._counters.last_rejection = f"{reason}: {error}"
        log.warning("hotconfig: rejected a change (%s): %s", reason, error)

    def _reject_message(self, reason: str, error: Exception) -> None:
        """Called on the listener thread for a message that could not be parsed."""
        self._count_rejection(reason, error)
        signals.send_isolated(
            signals.config_rejected,
            self,
            self._receiver_failed,
            reason=reason,
            error=error,
            key=None,
        )

    def _set_status(self, status: Status) -> None:
        """Called on the listener thread, or by close(); CLOSED is final."""
        old = self._status
        if old is status or old is Status.CLOSED:
            return
        self._status = status
        log.info("hotconfig: status %s -> %s", old, status)
        signals.send_isolated(
            signals.status_changed, self, self._receiver_failed, old=old, new=status
        )

    def _pin(self, values: Mapping[str, Any], unset: Iterable[str] = ()) -> None:
        """Pin values above every scope (testing.override); raises if the model rejects one."""
        with self._lock:
            update = self._state.pin(values, unset)
            self._publish(update)

    def _pinned(self) -> dict[str, Any]:
        return self._state.pinned()

    # -- fork safety --------------------------------------------------------------------------

    def _writer_lock(self) -> threading.RLock:
        return self._lock

    def _after_fork_in_child(self) -> None:
        # The parent's listener thread does not exist here and its sockets belong to the
        # parent: reading them would steal its messages. Drop them unread (redis-py only
        # shuts a socket down in the process that opened it) and follow with a fresh listener.
        self._init_locks()
        listener, self._listener = self._listener, None
        if self._in_flight is not None:
            # os.fork() stopped waiting for receivers still running (see _before_fork); their
            # thread is gone here, so the new listener runs them again before anything else.
            update, index = self._in_flight
            self._in_flight = None
            self._replay = Update(self._snapshot, update.changes[index:])
        if listener is not None and not self._closed:
            self._status = Status.STARTING
            self._listener = self._new_listener()
            self._listener.start()

"""HotConfig: the in-process cache that follows the changes channel."""

from __future__ import annotations

import asyncio
import enum
import logging
import os
import threading
from collections.abc import Callable, Iterable, Mapping
from types import TracebackType
from typing import Any, Generic, Protocol

from pydantic import BaseModel
from typing_extensions import TypeVar

from ._config.lastgood import LastKnownGood
from ._config.listener import Listener
from ._config.options import (
    Connection,
    Timings,
    checked_channel,
    checked_scopes,
    checked_text,
    listener_options,
    regroup,
)
from ._config.receivers import Receiver
from ._config.schema import Schema
from ._config.sink import Sink
from ._config.snapshot import Getter, Snapshot
from ._config.state import ConfigState
from ._config.stats import Stats
from ._config.wire import DEFAULT_CHANNEL, DEFAULT_SCOPE, Entry, Limits
from ._config.written import checked
from ._redis import forking
from ._redis.connection import Target, resolve
from ._redis.keyspace import DEFAULT_NAMESPACE, Keyspace
from .errors import ClientClosedError, ConfigKeyError
from .security.signing import KeyRing
from .signals import Status

__all__ = ["Companion", "HotConfig"]

log = logging.getLogger(__name__)

# Without a model, settings is None and values are untyped JSON: HotConfig(url) is HotConfig[Any].
ModelT = TypeVar("ModelT", bound=BaseModel, default=Any)
_CLOSE_TIMEOUT = 1.8


class Companion(Protocol):
    """What runs alongside a client from outside the config path (:meth:`HotConfig.attach`),
    such as :class:`hotconfig.fleet.Reporter`: started with the client, closed with it."""

    def start(self) -> None: ...

    def close(self, timeout: float) -> None: ...


class _Lifecycle(enum.Enum):
    UNOPENED = "unopened"  # built: serving defaults or last-known-good, no listener yet
    OPENED = "opened"  # start() ran: a listener follows the store
    CLOSED = "closed"  # close() ran: final


class HotConfig(Generic[ModelT]):
    """A live, read-only view of the configuration in Redis.

    Reads (:meth:`get`, ``[]``, ``in``, :attr:`settings`, :meth:`snapshot`) never lock and never
    touch the network: they read one immutable snapshot that the listener thread replaces whole.
    """

    __slots__ = (
        "__weakref__",
        "_companions",
        "_health",
        "_lifecycle",
        "_lifecycle_lock",
        "_listener",
        "_mirrors",
        "_options",
        "_sink",
        "_snapshot",
        "_target",
        "_values",
        "channel",
        "get",
        "keyspace",
        "scopes",
        "service",
        "settings",
        "url",
    )

    get: Getter
    """``get(key, default=None, /)``: the effective value of ``key`` (a model default counts),
    or ``default`` if unset. The current snapshot's own ``dict.get``, swapped with it: a read
    costs what a dict lookup costs, hit or miss."""

    settings: ModelT
    """The typed settings (an instance of ``model``), replaced whole on every change; ``None``
    without a model. Keep a reference for a consistent view across fields."""

    def __init__(
        self,
        url: str | None = None,
        *,
        model: type[ModelT] | None = None,
        scopes: Iterable[str] | str = (DEFAULT_SCOPE,),
        service: str | None = None,
        channel: str = DEFAULT_CHANNEL,
        namespace: str = DEFAULT_NAMESPACE,
        cache_path: str | os.PathLike[str] | None = None,
        signing_keys: KeyRing | str | Mapping[str, bytes] | None = None,
        health: bool = True,
        timings: Timings | Mapping[str, Any] | None = None,
        limits: Limits | Mapping[str, Any] | None = None,
        connection: Connection | Mapping[str, Any] | None = None,
        **legacy: Any,
    ) -> None:
        """Follow the store at ``url`` (default: ``$HOTCONFIG_URL``, then localhost).

        ``health``: report this instance to the fleet (a :class:`hotconfig.fleet.Reporter`
        attached at :meth:`start`). ``timings``, ``limits`` and ``connection`` take a
        :class:`Timings`, :class:`Limits` or :class:`Connection` (or a mapping of its fields).
        ``legacy``: the flat keyword arguments of earlier releases (``poll_interval=``,
        ``redis_kwargs=``, ...), accepted for one release with a ``DeprecationWarning``.
        """
        grouped = regroup(legacy, timings, limits, connection)
        redis_options = dict(grouped.connection.redis_kwargs)
        service = checked_text("service", service, "billing")
        if type(health) is not bool:
            raise ValueError(f"health must be True or False, got {health!r:.40}")
        if service:
            redis_options.setdefault("client_name", f"hotconfig:{service}"[:64].replace(" ", "_"))
        self._target = Target(resolve(url), redis_options, sharded=grouped.connection.sharded)
        self.url = self._target.redacted
        """The Redis URL this client follows, with its password hidden."""
        self.scopes = checked_scopes(scopes)
        self.service = service
        self.channel = checked_channel(channel)
        self.keyspace = Keyspace(namespace)
        # Default: $HOTCONFIG_SIGNING_KEYS; with a ring, unsigned messages are refused.
        signing = KeyRing.resolve(signing_keys)
        self._options = listener_options(
            grouped, self._target, self.keyspace, self.channel, signing
        )
        self._listener: Listener | None = None
        self._lifecycle = _Lifecycle.UNOPENED
        self._lifecycle_lock = threading.Lock()  # start() and close(); never held by receivers
        self._companions: list[Companion] = []
        # The fleet reporter's options, attached at start(); None: this instance is not reported.
        self._health = {"framework": grouped.framework} if health else None
        lastgood = LastKnownGood(cache_path) if cache_path is not None else None
        state = ConfigState(Schema(model), self.scopes)
        self._mirrors: list[dict[str, Any]] = []
        self._sink = Sink(state, self._swap, self, lastgood)
        forking.track(self, forking.Stage.CLIENTS)

    # -- reads: lock-free, no network -----------------------------------------------------------

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
        return self._sink.status

    @property
    def lag(self) -> int | None:
        """Versions the store is ahead of this client, as the listener last read it; None
        while not LIVE (the store cannot be read) or before its first read. The listener reads
        the store's version when it connects and at every anti-entropy poll: the value is at
        most ``Timings.poll_interval`` old (5 s by default); a lag that outlives a poll is
        repaired by a resync."""
        seen = self._sink.store_version
        if seen is None or self._sink.status is not Status.LIVE:
            return None
        return max(0, seen - self._snapshot.version)

    @property
    def stats(self) -> Stats:
        """A fresh read-only copy of the listener's counters."""
        return self._sink.counters.view()

    @property
    def signing_keys(self) -> KeyRing | None:
        """The ring changes are verified (and health reports signed) with; None: no signing."""
        return self._options.signing

    def wait_for_version(self, version: int, timeout: float | None = None) -> bool:
        """Block until ``version`` is live and its change receivers have run; False on timeout."""
        return self._sink.wait_for_version(version, timeout)

    def apply_write(self, version: int, entries: Iterable[Entry]) -> bool:
        """Take a write this process made through :class:`ConfigStore` at once (read-your-writes,
        with or without a listener): ``version`` is what the store's write returned, ``entries``
        what it wrote. Each entry is taken unless this client holds ``version`` (or a later write
        of the key) already; receivers run for what changed, on the calling thread; no older
        message or snapshot undoes it; :attr:`version` stays the listener's. False: none taken.
        """
        return self._sink.apply_write(*checked(version, entries))

    async def wait_for_version_async(self, version: int, timeout: float | None = None) -> bool:
        """:meth:`wait_for_version` for ``async`` code: the event loop is never blocked."""
        if self._sink.handled() >= version:
            return True
        return await asyncio.to_thread(self._sink.wait_for_version, version, timeout)

    # -- change receivers ---------------------------------------------------------------------

    def on_change(
        self, pattern: str = "*", *, loop: asyncio.AbstractEventLoop | None = None
    ) -> Callable[[Receiver], Receiver]:
        """Register a receiver for changes of keys matching ``pattern`` (fnmatch, case-sensitive).

        A sync receiver is called on the listener thread (or on the thread calling
        ``testing.override`` or :meth:`apply_write`), one at a time, after the new snapshot is
        live; one that raises is logged and counted and the others still run. An ``async def``
        receiver runs on ``loop`` (by default the loop running where it is registered), and so
        does a sync one given ``loop=`` (called in a loop callback); while it is busy, its
        pending changes coalesce by key, the latest winning (``stats.coalesced`` counts them).
        """

        def register(receiver: Receiver) -> Receiver:
            self._sink.receivers.add(pattern, receiver, loop)
            return receiver

        return register

    def remove_receiver(self, receiver: Receiver, pattern: str | None = None) -> bool:
        """Unregister a receiver of :meth:`on_change` (only for ``pattern``, if given); True if
        it was registered. A change being dispatched meanwhile may still reach it once."""
        return self._sink.receivers.remove(receiver, pattern)

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self, timeout: float | None = 5.0) -> bool:
        """Start following the store; True once the first snapshot is live.

        Returns after ``timeout`` at the latest — at once if the server refuses this client
        (status MISCONFIGURED) — serving model defaults or the last-known-good snapshot while
        the listener keeps retrying; the client goes LIVE by itself later. Start is not a change:
        receivers run only for values that differ from what was served when this returned.
        """
        with self._lifecycle_lock:
            if self._lifecycle is _Lifecycle.CLOSED:
                raise ClientClosedError("this client is closed; create a new HotConfig")
            if self._listener is None:
                if self._health is not None:
                    self._companions.insert(0, _reporter(self, self._health))
                    self._health = None
                self._listener = self._new_listener()
                self._listener.start()
                for companion in self._companions:
                    companion.start()
                self._lifecycle = _Lifecycle.OPENED
            listener = self._listener
        # Settled: LIVE, or refused by the server (MISCONFIGURED), which no wait would mend.
        listener.settled.wait(timeout)
        self._sink.begin_serving()  # what loaded until now is the baseline, told to nobody
        return listener.ready.is_set()

    def attach(self, companion: Companion) -> None:
        """Run ``companion`` alongside this client: its ``start()`` is called by :meth:`start`
        (at once if the client is already started) and its ``close(timeout)`` by :meth:`close`,
        before the status moves to CLOSED; after ``os.fork()`` it restarts itself. E.g.
        ``config.attach(hotconfig.fleet.Reporter(config, framework="django"))``."""
        with self._lifecycle_lock:
            if self._lifecycle is _Lifecycle.CLOSED:
                raise ClientClosedError("this client is closed; attach to a new HotConfig")
            self._companions.append(companion)
            if self._lifecycle is _Lifecycle.OPENED:
                companion.start()

    def redis_client(self, **options: Any) -> Any:
        """A new redis-py client of the server this client follows: the same URL, password and
        connection options (``options``, redis-py's, win). For companions that talk to the
        same server, such as the fleet's reporter; the caller closes it."""
        return self._target.command_client(**options)

    def _new_listener(self) -> Listener:
        name = f"hotconfig-listener-{self.service or os.getpid()}"
        return Listener(self._sink, self._target, self.keyspace, self._options, name)

    def close(self) -> None:
        """Stop the listener and close its connections; idempotent, returns within about 2 s."""
        with self._lifecycle_lock:
            if self._lifecycle is _Lifecycle.CLOSED:
                return
            self._lifecycle = _Lifecycle.CLOSED
            listener, self._listener = self._listener, None
        if listener is not None and not listener.stop(_CLOSE_TIMEOUT):
            log.warning("the listener thread did not stop within %ss", _CLOSE_TIMEOUT)
        forking.untrack(self)
        for companion in self._companions:
            companion.close(timeout=0.5)
        self._sink.set_status(Status.CLOSED)

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
            f"<HotConfig {self.url} status={self.status.value} version={self.version} "
            f"scopes={list(self.scopes)} service={self.service!r}>"
        )

    # -- the read slots: written by the sink only ---------------------------------------------

    def _swap(self, snapshot: Snapshot) -> None:
        # Plain attribute writes: a reader of `settings` or `get` pays no property call. A
        # reader may see the new values a moment before the new settings; snapshot() is not.
        self._snapshot = snapshot
        self._values = values = snapshot._values
        self.get = get = values.get
        self.settings = snapshot.settings
        for namespace in self._mirrors:
            namespace["get"] = get

    def mirror_get(self, namespace: dict[str, Any], *, keep: bool = True) -> None:
        """Keep ``namespace["get"]`` this client's :attr:`get`, from now on, at every swap
        (``keep=False``: stop, and remove it). For a wrapper that must read as fast as the
        client, given its instance ``__dict__``, as ``hotconfig_django.config`` is."""
        self._mirrors[:] = [known for known in self._mirrors if known is not namespace]
        if keep:
            namespace["get"] = self.get
            self._mirrors.append(namespace)
        else:
            namespace.pop("get", None)

    # -- testing.override ---------------------------------------------------------------------

    def _pin(self, values: Mapping[str, Any], unset: Iterable[str] = ()) -> None:
        """Pin values above every scope (testing.override); raises if the model rejects one."""
        self._sink.pin(values, unset)

    def _pinned(self) -> dict[str, Any]:
        return self._sink.pinned()

    # -- fork safety --------------------------------------------------------------------------

    def _fork_lock(self) -> threading.RLock:
        return self._sink.lock

    def _after_fork_in_child(self) -> None:
        # The parent's listener thread does not exist here and its sockets belong to the
        # parent: reading them would steal its messages. Drop them unread (redis-py only
        # shuts a socket down in the process that opened it) and follow with a fresh listener.
        listener, self._listener = self._listener, None
        inside = listener is not None and threading.current_thread() is listener.thread
        self._sink.after_fork_in_child(inside_receiver=inside)
        self._lifecycle_lock = threading.Lock()
        if listener is not None:
            # Forked from one of its receivers, the old listener's thread lives on here: when
            # the receiver returns, it must stop without reading the parent's socket again.
            listener.abandon()
        if listener is not None and self._lifecycle is _Lifecycle.OPENED:
            self._sink.status = Status.STARTING
            self._listener = self._new_listener()
            self._listener.start()


def _reporter(config: HotConfig[Any], options: Mapping[str, Any]) -> Companion:
    # health=True: the fleet's reporter attaches like any companion. Imported here, at the
    # start() of a client that reports, so that the config path never loads the fleet package.
    from .fleet import Reporter

    return Reporter(config, **options)

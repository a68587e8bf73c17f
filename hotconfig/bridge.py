"""The channel bridge: Redis Pub/Sub channels to any number of browsers over one connection.

::

    bridge = hotconfig.bridge.Bridge(
        url,
        classes={"ai:stream:*": Sequenced(), "dashboard:refresh:*": Ephemeral("widgetId")},
    )
    async with bridge.subscribe("ai:stream:sess-abc") as subscription:  # on an event loop
        async for event in subscription:
            ...  # event.data is the message as published (see hotconfig.delivery)

One bridge per process holds ONE subscription connection, opened by a background thread on
the first :meth:`Bridge.subscribe`, whatever the number of browsers: each exact channel is
SUBSCRIBEd once while at least one browser follows it (PSUBSCRIBE only for patterns asked for
with ``pattern=True``). The thread hands each message to every subscriber's event loop with
``call_soon_threadsafe``; a browser that does not keep up fills its bounded outbox and is
dropped there, never slowing the thread or the others.

Like the config listener (:mod:`hotconfig.listener`), the connection never retries silently:
a PING with a token proves it alive, every fault surfaces, and the thread reconnects with
capped, jittered backoff and subscribes again to everything followed at that moment. Pub/Sub
is at-most-once: what is published while the connection is down is lost; a ``sequenced``
channel shows that loss as a ``gap`` event. A ``replayable`` channel (:mod:`hotconfig.replay`)
loses nothing that its history still holds: after each reconnect every subscription on one
catches up from its last offset (:mod:`hotconfig.recovery`), and a browser that comes back
with ``last_event_id`` gets exactly what it missed.

The bridge imports no web framework; adapters (``hotconfig_fastapi.bridge_router``) serve it.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import logging
import os
import random
import threading
import time
import uuid
import weakref
from collections.abc import Mapping
from typing import Any, NamedTuple

from .connection import Target, resolve
from .delivery import (
    Delivery,
    Ephemeral,
    Event,
    EventKind,
    Replayable,
    Sequenced,
    Subscription,
    Tally,
    delivery_for,
)
from .errors import ClientClosedError
from .listener import Heartbeat, LivenessError, Outage, misconfiguration
from .recovery import Authorize, Reason
from .replay import History, Position, ReplayPublisher
from .streams import Ending

__all__ = [
    "Bridge",
    "BridgeStats",
    "Delivery",
    "Ephemeral",
    "Event",
    "EventKind",
    "Position",
    "Reason",
    "ReplayPublisher",
    "Replayable",
    "Sequenced",
    "Subscription",
]

log = logging.getLogger("hotconfig.bridge")

_MAX_WAIT = 0.02  # the longest a read blocks: how soon a new channel is subscribed
_DRAIN_LIMIT = 10_000
_BACKOFF_BASE, _BACKOFF_MAX, _BACKOFF_RESET = 0.05, 1.0, 10.0


class BridgeStats(NamedTuple):
    """What the bridge did since it was made; ``subscribers`` and ``channels`` are now."""

    connected: bool
    subscribers: int
    channels: int  # exact channels subscribed for at least one browser
    patterns: int
    messages: int  # messages read from Redis
    delivered: int  # events queued for browsers (a message to 10 browsers counts 10)
    dropped_slow: int  # browsers dropped because their outbox overflowed
    gaps: int
    out_of_order: int  # sequenced messages dropped because their index was already passed
    done: int  # sequenced streams ended by their terminal message
    idle: int  # sequenced streams ended by the idle timeout
    reconnects: int
    last_error: str | None
    replayed: int = 0  # stored messages sent to catch a subscription up
    unrecovered: int = 0  # recovery events: what was missed could not be replayed
    replay_errors: int = 0  # history reads that failed (and were retried)


class Bridge:
    """One per process: see the module docstring. Thread-safe; subscribe from any event loop."""

    def __init__(
        self,
        url: str | None = None,
        *,
        classes: Mapping[str, Delivery] | None = None,
        max_bytes: int = 1 << 20,
        socket_timeout: float = 2.0,
        ping_interval: float = 1.0,
        name: str = "hotconfig-bridge",
    ) -> None:
        if max_bytes <= 0:
            raise ValueError(f"max_bytes must be positive, got {max_bytes}")
        self._target = Target(resolve(url))
        self._classes = dict(classes or {})
        self._max_bytes, self._socket_timeout = max_bytes, socket_timeout
        self._ping_interval, self._name = ping_interval, name
        self._tally = Tally()
        self._lock = threading.Lock()
        self._followed: dict[tuple[bool, str], set[Subscription]] = {}  # (pattern, name) → subs
        self._acknowledged: set[tuple[bool, str]] = set()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pid = os.getpid()
        self._pubsub: Any = None
        self._clients: tuple[Any, ...] = ()
        self._connected = False
        self._sessions = 0
        self._last_error: str | None = None
        self._private = f"hotconfig:bridge:{uuid.uuid4().hex[:16]}"
        self._history = History(self._target)
        atexit.register(_close_at_exit, weakref.ref(self))

    # -- the public side ------------------------------------------------------------------------

    def subscribe(
        self,
        channel: str,
        *,
        pattern: bool = False,
        last_event_id: str | None = None,
        authorize_replay: Authorize | None = None,
    ) -> Subscription:
        """Follow ``channel`` (a glob pattern with ``pattern=True``) for one browser.

        Call on the event loop that will iterate the subscription. Starts the bridge's thread
        on the first call. Raises :class:`~hotconfig.ClientClosedError` once closed. On a
        replayable channel, ``last_event_id`` resumes after that event (:meth:`resume_from`),
        and ``authorize_replay()`` (on this loop; may be async) is asked before stored messages
        are sent: anything but True ends the subscription with a ``recovery`` event.
        """
        if self._stop.is_set():
            raise ClientClosedError("this bridge is closed: make a new Bridge")
        subscription = Subscription(
            channel,
            pattern=pattern,
            classes=self._classes,
            max_bytes=self._max_bytes,
            tally=self._tally,
            release=self._release,
            start=None if pattern else self.resume_from(channel, last_event_id),
            history=self._history,
            authorize_replay=authorize_replay,
        )
        with self._lock:
            self._after_fork()
            self._followed.setdefault((pattern, channel), set()).add(subscription)
            if (pattern, channel) in self._acknowledged:
                subscription._acknowledged()
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                self._thread.start()
        return subscription

    def resume_from(self, channel: str, last_event_id: str | None) -> Position | None:
        """Where a subscription to ``channel`` with ``last_event_id`` starts; None: from now (no
        id, or not a replayable channel). :class:`ValueError` for a malformed id (an adapter
        answers 400 before anything is subscribed)."""
        replayable = isinstance(delivery_for(self._classes, channel), Replayable)
        return Position.parse(last_event_id) if replayable and last_event_id else None

    @property
    def stats(self) -> BridgeStats:
        counts = self._tally.snapshot()
        with self._lock:
            followed = [key for key, subs in self._followed.items() if subs]
            subscribers = sum(len(subs) for subs in self._followed.values())
        return BridgeStats(
            connected=self._connected,
            subscribers=subscribers,
            channels=sum(1 for pattern, _ in followed if not pattern),
            patterns=sum(1 for pattern, _ in followed if pattern),
            reconnects=max(0, self._sessions - 1),
            last_error=self._last_error,
            **counts,
        )

    def close(self, timeout: float = 5.0) -> None:
        """Stop the thread, close the connection, end every subscription (Ending.SHUTDOWN)."""
        self._stop.set()
        thread = self._thread
        deadline = time.monotonic() + timeout
        while thread is not None and thread.is_alive() and time.monotonic() < deadline:
            self._disconnect()  # wakes a thread blocked in a read
            thread.join(0.05)
        with self._lock:
            subscriptions = [sub for subs in self._followed.values() for sub in subs]
            self._followed.clear()
        for subscription in subscriptions:
            _call_soon(subscription, subscription._end, Ending.SHUTDOWN)
        self._history.close()

    def __enter__(self) -> Bridge:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _release(self, subscription: Subscription) -> None:
        """A subscription ended (called on its loop); the thread UNSUBSCRIBEs when none is left."""
        with self._lock:
            key = (subscription.pattern, subscription.channel)
            subs = self._followed.get(key)
            if subs is not None:
                subs.discard(subscription)
                if not subs:
                    del self._followed[key]

    def _after_fork(self) -> None:
        # In a child forked from a process with a running bridge, the thread is gone and the
        # socket is the parent's: start afresh (called under the lock).
        if self._pid != os.getpid():
            self._pid, self._thread, self._pubsub, self._clients = os.getpid(), None, None, ()
            self._followed = {}
            self._acknowledged = set()
            self._history = History(self._target)  # the parent's sockets stay the parent's

    # -- the thread -----------------------------------------------------------------------------

    def _run(self) -> None:
        outage = Outage(self._target)
        attempt = 0
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                self._session(outage)
            except BaseException as exc:  # the thread must never die unseen
                if self._stop.is_set():
                    break
                self._last_error = f"{type(exc).__name__}: {exc}"
                outage.failed(self._last_error, misconfiguration(exc))
            finally:
                self._teardown()
            if time.monotonic() - started > _BACKOFF_RESET:
                attempt = 0
            delay = min(_BACKOFF_MAX, _BACKOFF_BASE * 2.0**attempt) * random.uniform(0.5, 1.0)
            attempt += 1
            self._stop.wait(delay)

    def _session(self, outage: Outage) -> None:
        _, subscriber = self._target.listener_clients(self._socket_timeout)
        pubsub = subscriber.pubsub()  # type: ignore[no-untyped-call]
        with self._lock:
            self._pubsub, self._clients = pubsub, (subscriber,)
        # The private channel keeps the connection in Pub/Sub mode while no browser follows any.
        pubsub.subscribe(self._private)
        connection = pubsub.connection
        sent: set[tuple[bool, str]] = set()
        heartbeat = Heartbeat(self._ping_interval, self._socket_timeout, time.monotonic())
        self._sessions += 1
        self._connected = True
        outage.recovered()
        while not self._stop.is_set():
            self._sync(connection, sent)
            now = time.monotonic()
            if heartbeat.overdue(now) and not connection.can_read(timeout=0):
                raise LivenessError(f"no PONG within {self._socket_timeout}s")
            token = heartbeat.send_due(now)
            if token is not None:
                connection.send_command("PING", token)
            if connection.can_read(timeout=_MAX_WAIT):
                self._drain(connection, heartbeat)

    def _sync(self, connection: Any, sent: set[tuple[bool, str]]) -> None:
        """Send the (P)SUBSCRIBE and (P)UNSUBSCRIBE that make Redis follow what browsers do."""
        with self._lock:
            wanted = {key for key, subs in self._followed.items() if subs}
        for pattern in (False, True):
            add = sorted(name for p, name in wanted - sent if p is pattern)
            drop = sorted(name for p, name in sent - wanted if p is pattern)
            if add:
                connection.send_command("PSUBSCRIBE" if pattern else "SUBSCRIBE", *add)
            if drop:
                connection.send_command("PUNSUBSCRIBE" if pattern else "UNSUBSCRIBE", *drop)
        sent.clear()
        sent.update(wanted)

    def _drain(self, connection: Any, heartbeat: Heartbeat) -> None:
        for _ in range(_DRAIN_LIMIT):
            reply = connection.read_response(push_request=True)
            kind = reply[0]
            if kind == b"message":
                self._dispatch((False, reply[1].decode()), reply[1], reply[2])
            elif kind == b"pmessage":
                self._dispatch((True, reply[1].decode()), reply[2], reply[3])
            elif kind in (b"subscribe", b"psubscribe"):
                self._acknowledge((kind == b"psubscribe", reply[1].decode()), True)
            elif kind in (b"unsubscribe", b"punsubscribe") and reply[1] is not None:
                self._acknowledge((kind == b"punsubscribe", reply[1].decode()), False)
            elif kind == b"pong":
                heartbeat.answered(reply[1])
            if not connection.can_read(timeout=0):
                return

    def _acknowledge(self, key: tuple[bool, str], subscribed: bool) -> None:
        with self._lock:
            if not subscribed:
                self._acknowledged.discard(key)
                return
            self._acknowledged.add(key)
            subs = list(self._followed.get(key, ()))
        for subscription in subs:
            _call_soon(subscription, subscription._acknowledged)

    def _dispatch(self, key: tuple[bool, str], channel: bytes, data: bytes) -> None:
        self._tally.add("messages")
        with self._lock:
            subs = list(self._followed.get(key, ()))
        if not subs:
            return
        # One wake-up per event loop, not per browser: a thousand browsers on one loop cost
        # one call_soon_threadsafe.
        by_loop: dict[asyncio.AbstractEventLoop, list[Subscription]] = {}
        for subscription in subs:
            by_loop.setdefault(subscription.loop, []).append(subscription)
        name = channel.decode("utf-8", "replace")
        for loop, group in by_loop.items():
            try:
                loop.call_soon_threadsafe(_fan_out, group, name, data)
            except RuntimeError:  # the loop is closed: its browsers are gone
                for subscription in group:
                    self._release(subscription)

    def _disconnect(self) -> None:
        with self._lock:
            pubsub, clients = self._pubsub, self._clients
        try:
            if pubsub is not None and pubsub.connection is not None:
                pubsub.connection.disconnect()
            for client in clients:
                client.connection_pool.disconnect()
        except Exception:
            log.debug("error while closing the bridge's sockets", exc_info=True)

    def _teardown(self) -> None:
        self._connected = False
        with self._lock:
            pubsub, clients = self._pubsub, self._clients
            self._pubsub, self._clients = None, ()
            self._acknowledged.clear()
            followed = [sub for subs in self._followed.values() for sub in subs]
        for subscription in followed:  # subscribed again by the next session
            _call_soon(subscription, subscription.subscribed.clear)
        for closer in (pubsub, *clients):
            if closer is not None:
                try:
                    closer.close()
                except Exception:
                    log.debug("error while closing a connection", exc_info=True)


def _fan_out(subscriptions: list[Subscription], channel: str, data: bytes) -> None:
    """Hand one message to the subscriptions of one loop (called on that loop)."""
    for subscription in subscriptions:
        try:
            subscription._receive(channel, data)
        except Exception:  # one browser's bad state must not starve the others
            log.exception("error while delivering a message on %s", channel)


def _call_soon(subscription: Subscription, callback: Any, *args: Any) -> None:
    with contextlib.suppress(RuntimeError):  # the loop is closed: its browsers are gone
        subscription.loop.call_soon_threadsafe(callback, *args)


def _close_at_exit(ref: weakref.ref[Bridge]) -> None:
    bridge = ref()
    if bridge is not None:
        bridge.close(timeout=1.0)

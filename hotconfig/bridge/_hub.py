"""The channel bridge: Redis Pub/Sub channels to any number of browsers over one connection.

::

    bridge = hotconfig.bridge.Bridge(
        url,
        classes={"ai:stream:*": Sequenced(), "dashboard:refresh:*": Ephemeral("widgetId")},
    )
    async with bridge.subscribe("ai:stream:sess-abc") as subscription:  # on an event loop
        async for event in subscription:
            ...  # event.data is the message as published (see hotconfig.bridge._events)

One bridge per process holds ONE subscription connection, opened by a background thread on
the first :meth:`Bridge.subscribe`, whatever the number of browsers: each exact channel is
SUBSCRIBEd once while at least one browser follows it (PSUBSCRIBE only for patterns asked for
with ``pattern=True``). The thread hands each message to every subscriber's event loop with
``call_soon_threadsafe``; a browser that does not keep up fills its bounded outbox and is
dropped there, never slowing the thread or the others. In sharded mode on a Redis Cluster
(``sharded=True``, or ``?sharded=1`` in the URL) exact channels are SSUBSCRIBEd instead, on
the master serving each one's slot: one connection per such master
(:mod:`hotconfig.bridge._routing`), and one more for patterns if any is followed.

Like the config listener, a connection never retries silently (:mod:`hotconfig.bridge._links`):
a token PING and a probe message prove it alive, every fault surfaces, and it reconnects with
backoff (to the master Sentinel names now, or the slot's owner now) and subscribes again to
everything followed at that moment. Pub/Sub
is at-most-once: what is published while the connection is down is lost; a ``sequenced``
channel shows that loss as a ``gap`` event. A ``replayable`` channel (:mod:`._history`)
loses nothing that its history still holds: after each reconnect every subscription on one
catches up from its last offset (:mod:`._recovery`), and a browser that comes back
with ``last_event_id`` gets exactly what it missed.

The bridge imports no web framework; adapters (``hotconfig_fastapi.bridge_router``) serve it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

from .._redis import forking
from .._redis.connection import Target, resolve
from ..errors import ClientClosedError
from ._classes import Delivery, Replayable, check_channel, delivery_for
from ._delivery import Subscription
from ._events import Tally
from ._history import History, Position
from ._incoming import Incoming, read
from ._links import Key, Link, LinkOptions, Node
from ._outbox import Ending
from ._recovery import Authorize
from ._routing import Router

__all__ = ["Bridge", "BridgeStats"]

log = logging.getLogger("hotconfig.bridge")


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
    replay_errors: int = 0  # history reads that failed (retried, or given up if refused)
    connections: int = 0  # subscription connections open now (sharded: one per master, + patterns)
    sharded: bool = False  # exact channels are SSUBSCRIBEd on their slot's master
    stray: int = 0  # replayable messages dropped: their envelope names no place in the history
    unparsed: int = 0  # ephemeral or sequenced messages not JSON within the wire's limits


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
        probe_interval: float | None = None,
        check_interval: float = 5.0,
        sharded: bool | None = None,
        name: str = "hotconfig-bridge",
    ) -> None:
        """``sharded`` (None: the URL's ``?sharded=``) SSUBSCRIBEs exact channels on their
        slot's master, a :class:`ValueError` on anything but a cluster URL; publishers must
        then SPUBLISH (:class:`ReplayPublisher` does, given the same URL). ``probe_interval``:
        seconds between two delivery probes (None: 30 on Sentinel and Cluster, none on one
        server). ``check_interval``: seconds between two questions to the sentinels (where is
        the master?) on a Sentinel URL, and between two reads of the slot map when sharded."""
        if max_bytes <= 0:
            raise ValueError(f"max_bytes must be positive, got {max_bytes}")
        self._target = Target(resolve(url), sharded=sharded)
        self._classes = dict(classes or {})
        self._max_bytes, self._name = max_bytes, name
        self._options = LinkOptions.of(
            self._target, socket_timeout, ping_interval, probe_interval, check_interval
        )
        self._tally = Tally()
        self._lock = threading.Lock()
        self._followed: dict[Key, set[Subscription]] = {}
        self._acknowledged: dict[Key, Link] = {}  # acknowledged by Redis, on which link
        self._links: dict[Node | None, Link] = {}  # None: the classic link
        self._router: Router | None = None  # places followed channels on links
        self._stop = threading.Event()
        self._sessions = 0
        self._last_error: str | None = None
        self._history = History(self._target)
        forking.track(self, forking.Stage.BRIDGES)

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
        are sent: anything but True ends the subscription with a ``recovery`` event. A
        :class:`ValueError` for a channel name a browser may not ask for (:meth:`resume_from`).
        """
        if self._stop.is_set():
            raise ClientClosedError("this bridge is closed: make a new Bridge")
        check_channel(channel)
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
        key = (pattern, channel)
        with self._lock:
            subs = self._followed.setdefault(key, set())
            subs.add(subscription)
            first = len(subs) == 1
            if key in self._acknowledged:
                subscription._acknowledged()
            router = self._start_router()
        if first:
            router.changed(key)  # the first browser on this channel: subscribe it now
        return subscription

    def resume_from(self, channel: str, last_event_id: str | None) -> Position | None:
        """Where a subscription to ``channel`` with ``last_event_id`` starts; None: from now (no
        id, or not a replayable channel). :class:`ValueError` for a channel name a browser may
        not ask for (empty, a control character such as NUL, CR or LF, more than 1,024 bytes)
        and for a malformed id (an adapter answers 400 before anything is subscribed)."""
        check_channel(channel)
        replayable = isinstance(delivery_for(self._classes, channel), Replayable)
        return Position.parse(last_event_id) if replayable and last_event_id else None

    @property
    def stats(self) -> BridgeStats:
        counts = self._tally.snapshot()
        with self._lock:
            followed = [key for key, subs in self._followed.items() if subs]
            subscribers = sum(len(subs) for subs in self._followed.values())
            connections = sum(1 for link in self._links.values() if link.connected)
        return BridgeStats(
            connected=connections > 0,
            subscribers=subscribers,
            channels=sum(1 for pattern, _ in followed if not pattern),
            patterns=sum(1 for pattern, _ in followed if pattern),
            reconnects=self._sessions,
            last_error=self._last_error,
            connections=connections,
            sharded=self._target.sharded,
            **counts,
        )

    def close(self, timeout: float = 5.0) -> None:
        """Stop the threads, close the connections, end every subscription (Ending.SHUTDOWN)."""
        self._stop.set()
        forking.untrack(self)
        deadline = time.monotonic() + timeout
        with self._lock:
            router = self._router
        if router is not None:
            router.wake()
            router.thread.join(max(0.0, deadline - time.monotonic()))
        with self._lock:
            links = list(self._links.values())
        for link in links:
            link.stop(0)  # every link at once: closing its sockets wakes a blocked read
        for link in links:
            link.stop(max(0.0, deadline - time.monotonic()))
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
        key = (subscription.pattern, subscription.channel)
        with self._lock:
            subs = self._followed.get(key)
            if subs is None or subscription not in subs:
                return
            subs.discard(subscription)
            if subs:
                return
            del self._followed[key]
            router = self._router
        if router is not None:
            router.changed(key)  # the last browser left: unsubscribe it now

    # -- fork and exit (hotconfig._redis.forking) ----------------------------------------------

    def _fork_lock(self) -> None:
        return None

    def _after_fork_in_child(self) -> None:
        """In a child forked from a process with a running bridge, the threads are gone and
        the sockets are the parent's (left unread): start afresh, with no subscriber (the
        parent's browsers are the parent's)."""
        self._lock = threading.Lock()  # the child has one thread: whatever held it is gone
        self._links, self._router = {}, None
        self._followed, self._acknowledged = {}, {}
        self._history = History(self._target)

    def _start_router(self) -> Router:
        """The thread that places channels on links, started on the first subscription;
        called under the lock."""
        if self._router is None:
            refresh = self._options.master_check
            self._router = Router(self, self._target, self._stop, self._name, refresh)
            self._router.start()
        return self._router

    # -- the links' side (hotconfig.bridge._links.Hub), called on their threads ----------------

    def _connected(self, link: Link) -> None:
        if link.sessions > 1:
            with self._lock:
                self._sessions += 1
            self._history.reconnect()  # catch up from the master just connected to

    def _failed(self, link: Link, error: BaseException) -> None:
        self._last_error = f"{type(error).__name__}: {error}"
        if link.node is not None:
            with self._lock:  # route this link's channels again, by a fresh slot map
                router = self._router
            if router is not None:
                router.moved()

    def _acknowledge(self, link: Link, key: Key, subscribed: bool) -> None:
        with self._lock:
            if not subscribed:
                if self._acknowledged.get(key) is link:  # not if another link has it now
                    del self._acknowledged[key]
                return
            self._acknowledged[key] = link
            subs = list(self._followed.get(key, ()))
        for subscription in subs:
            _call_soon(subscription, subscription._acknowledged)

    def _lost(self, link: Link, keys: set[Key]) -> None:
        with self._lock:
            gone = [key for key in keys if self._acknowledged.get(key) in (link, None)]
            for key in gone:
                self._acknowledged.pop(key, None)
            followed = [sub for key in gone for sub in self._followed.get(key, ())]
        for subscription in followed:  # subscribed again by the next session
            _call_soon(subscription, subscription.subscribed.clear)

    def _dispatch(self, key: Key, channel: bytes, data: bytes) -> None:
        self._tally.add("messages")
        with self._lock:
            subs = list(self._followed.get(key, ()))
        if not subs:
            return
        # Read once, whatever the number of browsers: the class, the JSON fields it needs.
        message = read(self._classes, channel.decode("utf-8", "replace"), data, self._tally)
        # One wake-up per event loop, not per browser: a thousand browsers on one loop cost
        # one call_soon_threadsafe.
        by_loop: dict[asyncio.AbstractEventLoop, list[Subscription]] = {}
        for subscription in subs:
            by_loop.setdefault(subscription.loop, []).append(subscription)
        for loop, group in by_loop.items():
            try:
                loop.call_soon_threadsafe(_fan_out, group, message)
            except RuntimeError:  # the loop is closed: its browsers are gone
                for subscription in group:
                    self._release(subscription)

    # -- the router's side (hotconfig.bridge._routing.Routes), on its thread --------------------

    def _followed_among(self, keys: Iterable[Key]) -> set[Key]:
        with self._lock:
            return {key for key in keys if self._followed.get(key)}

    def _link(self, node: Node | None) -> Link | None:
        with self._lock:
            if self._stop.is_set():
                return None
            link = self._links.get(node)
            if link is None:
                persistent = node is None and not self._target.sharded  # classic mode's one
                link = Link(self, self._target, self._options, node, persistent, self._name)
                self._links[node] = link
                link.start()
            return link

    def _retire(self, link: Link) -> None:
        with self._lock:
            if self._links.get(link.node) is link:
                del self._links[link.node]
        link.stop(0)


def _fan_out(subscriptions: list[Subscription], message: Incoming) -> None:
    """Hand one message to the subscriptions of one loop (called on that loop)."""
    for subscription in subscriptions:
        try:
            subscription._receive(message)
        except Exception:  # one browser's bad state must not starve the others
            log.exception("error while delivering a message on %s", message.channel)


def _call_soon(subscription: Subscription, callback: Any, *args: Any) -> None:
    with contextlib.suppress(RuntimeError):  # the loop is closed: its browsers are gone
        subscription.loop.call_soon_threadsafe(callback, *args)

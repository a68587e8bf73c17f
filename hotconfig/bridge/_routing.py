"""Where each followed channel is subscribed: the bridge's :class:`Router` thread.

When the first browser follows a channel, or the last one lets it go, the bridge tells the
router (:meth:`Router.changed`), which wakes, decides which :class:`~hotconfig.bridge._links.Link`
serves that channel and tells the link (:meth:`~hotconfig.bridge._links.Link.follow`), which
writes SUBSCRIBE or UNSUBSCRIBE on its open connection at once. Nothing polls: at rest the router
sleeps, and the cost of a change does not grow with the channels already followed.

On one server, Sentinel, or a cluster in classic mode every channel goes to the one classic link.
In sharded mode (``Bridge(url, sharded=True)`` or ``?sharded=1`` on a ``redis+cluster://`` URL)
an exact channel is SSUBSCRIBEd on the master that serves its slot, so a publisher's SPUBLISH
goes to that one shard instead of being broadcast over the cluster bus to every node. Channels
fall in many slots, hence on several masters: the bridge holds one link per master that serves
at least one followed channel, and retires a link that has none left. The router looks a new
channel up in its cluster client's slot map (no round trip), and reads the map anew every few
seconds and whenever a link reports that a slot moved (an unsolicited ``sunsubscribe`` or
``-MOVED``), so a channel whose slot changed owner (a reshard, a failover) is SSUBSCRIBEd on its
new master; a replayable channel then catches up from its history, as after any reconnect.
Patterns cannot be sharded (a pattern names no slot): they stay on the classic link.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable
from typing import Any, Protocol

from .._redis.connection import Target
from .._redis.liveness import backoff
from ._links import Key, Link, Node

__all__ = ["Router", "Routes"]

log = logging.getLogger("hotconfig.bridge")

_BACKOFF_BASE, _BACKOFF_MAX = 0.05, 1.0


class Routes(Protocol):
    """The bridge's side (called on the router's thread)."""

    def _followed_among(self, keys: Iterable[Key]) -> set[Key]:
        """Which of ``keys`` at least one browser follows now."""
        ...

    def _link(self, node: Node | None) -> Link | None:
        """The link for ``node`` (None: the classic one), made and started if there is none;
        None once the bridge is closed."""
        ...

    def _retire(self, link: Link) -> None:
        """``link`` follows nothing more: stop it (the next channel of its node gets a new one)."""
        ...


class Router:
    """The thread that places followed channels on links; see the module docstring."""

    def __init__(
        self, routes: Routes, target: Target, stop: threading.Event, name: str, refresh: float
    ) -> None:
        self._routes, self._target, self._stop = routes, target, stop
        self._sharded = target.sharded
        self._refresh_every = refresh
        self._lock = threading.Lock()
        self._pending: set[Key] = set()  # keys whose following may have changed
        self._wake = threading.Event()
        self._stale = False  # a link said a slot moved: read the map before routing again
        self._placed: dict[Key, Link] = {}
        self.errors = 0
        self.thread = threading.Thread(target=self._run, name=name + "-router", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def changed(self, key: Key) -> None:
        """The first browser followed ``key``, or the last let it go (from any thread)."""
        with self._lock:
            self._pending.add(key)
        self._wake.set()

    def moved(self) -> None:
        """A link's slot moved: read the slot map anew, then route (from any thread)."""
        self._stale = True
        self._wake.set()

    def wake(self) -> None:
        self._wake.set()

    def _run(self) -> None:
        client: Any = None
        attempt = 0
        next_refresh = time.monotonic() + self._refresh_every
        while not self._stop.is_set():
            # At rest the router sleeps; sharded, it wakes to read the slot map now and then.
            self._wake.wait(max(0.0, next_refresh - time.monotonic()) if self._sharded else None)
            self._wake.clear()
            if self._stop.is_set():
                break
            with self._lock:
                keys, self._pending = self._pending, set()
            try:
                if self._sharded:
                    fresh = client is None  # a new client has just read the map
                    if client is None:
                        client = self._target.command_client()
                    if not fresh and (self._stale or time.monotonic() >= next_refresh):
                        self._stale = False
                        client.nodes_manager.initialize()
                        fresh = True
                    if fresh:  # look every placed exact channel up again
                        next_refresh = time.monotonic() + self._refresh_every
                        keys |= {key for key in self._placed if not key[0]}
                self._place(keys, client)
                attempt = 0
            except Exception as exc:  # the thread must never die unseen
                self.errors += 1
                log.warning(
                    "could not route the bridge's channels: %s: %s", type(exc).__name__, exc
                )
                with self._lock:
                    self._pending |= keys
                self._stale = self._sharded
                self._wake.set()
                delay = backoff(attempt, _BACKOFF_BASE, _BACKOFF_MAX)
                attempt += 1
                self._stop.wait(delay)
        if client is not None:
            client.close()

    def _place(self, keys: set[Key], client: Any) -> None:
        """Move each of ``keys`` to the link that must follow it now (or off any link)."""
        if not keys:
            return
        routes, placed = self._routes, self._placed
        followed = routes._followed_among(keys)
        moves: dict[Link, tuple[set[Key], set[Key]]] = {}
        moved = 0
        for key in keys:
            current = placed.get(key)
            link = None
            if key in followed:
                if self._sharded and not key[0]:
                    node = client.get_node_from_key(key[1])  # the slot map, no round trip
                    link = routes._link((str(node.host), int(node.port)))
                else:
                    link = routes._link(None)
            if link is current:
                continue
            if current is not None:
                moves.setdefault(current, (set(), set()))[1].add(key)
                del placed[key]
                moved += link is not None
            if link is not None:
                moves.setdefault(link, (set(), set()))[0].add(key)
                placed[key] = link
        if moved:
            log.info("%d followed channel(s) moved to another master", moved)
        for link, (add, drop) in moves.items():
            link.follow(add, drop)
            if not link.persistent and not link.following:
                routes._retire(link)

"""Sharded mode's routing: which cluster master serves each followed exact channel.

In sharded mode (``Bridge(url, sharded=True)`` or ``?sharded=1`` on a ``redis+cluster://``
URL) an exact channel is SSUBSCRIBEd on the master that serves its slot, so a publisher's
SPUBLISH goes to that one shard instead of being broadcast over the cluster bus to every node.
Channels fall in many slots, hence on several masters: the bridge holds one
:class:`~hotconfig.bridge._links.Link` per master that serves at least one followed channel.

A :class:`Router` thread keeps the map from channel to master: it looks a new channel up in its
cluster client's slot map (no round trip), and reads the map anew every few seconds and
whenever a link reports that a slot moved (an unsolicited ``sunsubscribe`` or ``-MOVED``), so a
channel whose slot changed owner (a reshard, a failover) is SSUBSCRIBEd on its new master; a
replayable channel then catches up from its history, as after any reconnect. Patterns cannot be
sharded (a pattern names no slot): they stay on the classic link.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Protocol

from .._redis.connection import Target
from .._redis.liveness import backoff
from ._links import Node

__all__ = ["Router", "Routes"]

log = logging.getLogger("hotconfig.bridge")

_BACKOFF_BASE, _BACKOFF_MAX = 0.05, 1.0


class Routes(Protocol):
    """The bridge's side: which exact channels are followed, and where they go now (called on
    the router's thread)."""

    def _exact_channels(self) -> set[str]: ...

    def _route(self, owners: dict[str, Node]) -> None: ...


class Router:
    """The thread that maps followed exact channels to their masters; see the module docstring."""

    def __init__(
        self, routes: Routes, target: Target, stop: threading.Event, name: str, refresh: float
    ) -> None:
        self._routes, self._target, self._stop = routes, target, stop
        self._refresh_every = refresh
        self._wake = threading.Event()
        self._stale = False  # a link said a slot moved: read the map before routing again
        self._owners: dict[str, Node] = {}
        self.errors = 0
        self.thread = threading.Thread(target=self._run, name=name + "-router", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def wake(self) -> None:
        """A channel was followed or let go (called from any thread)."""
        self._wake.set()

    def moved(self) -> None:
        """A link's slot moved: read the slot map anew, then route (called from any thread)."""
        self._stale = True
        self._wake.set()

    def _run(self) -> None:
        client: Any = None
        attempt = 0
        next_refresh = time.monotonic() + self._refresh_every
        while not self._stop.is_set():
            self._wake.wait(max(0.0, next_refresh - time.monotonic()))
            self._wake.clear()
            if self._stop.is_set():
                break
            try:
                fresh = client is None  # a new client has just read the map
                if client is None:
                    client = self._target.command_client()
                if not fresh and (self._stale or time.monotonic() >= next_refresh):
                    self._stale = False
                    client.nodes_manager.initialize()
                    fresh = True
                if fresh:
                    next_refresh = time.monotonic() + self._refresh_every
                self._assign(client, fresh)
                attempt = 0
            except Exception as exc:  # the thread must never die unseen
                self.errors += 1
                log.warning(
                    "could not read the cluster's slot map: %s: %s", type(exc).__name__, exc
                )
                self._stale = True
                self._wake.set()
                delay = backoff(attempt, _BACKOFF_BASE, _BACKOFF_MAX)
                attempt += 1
                self._stop.wait(delay)
        if client is not None:
            client.close()

    def _assign(self, client: Any, fresh: bool) -> None:
        owners: dict[str, Node] = {}
        for channel in self._routes._exact_channels():
            known = None if fresh else self._owners.get(channel)
            if known is None:
                node = client.get_node_from_key(channel)  # the slot map, no round trip
                known = (str(node.host), int(node.port))
            owners[channel] = known
        moved = {c for c, n in owners.items() if c in self._owners and self._owners[c] != n}
        if moved:
            log.info("%d followed channel(s) moved to another master", len(moved))
        self._owners = owners
        self._routes._route(owners)

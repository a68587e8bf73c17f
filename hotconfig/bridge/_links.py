"""One subscription connection of the bridge: a :class:`Link`, a Pub/Sub
:class:`~hotconfig._redis.session.Session`.

A bridge holds one link for classic SUBSCRIBE and PSUBSCRIBE (on one server, on the master that
Sentinel names, or on any node of a cluster, where PUBLISH reaches every node) and, in sharded
mode, one link per cluster master that serves at least one followed exact channel, which it
SSUBSCRIBEs there. The bridge's :class:`~hotconfig.bridge._routing.Router` tells each link what
to follow (:meth:`Link.follow`) the moment that changes, and the link writes the SUBSCRIBE or
UNSUBSCRIBE at once on its open connection: nothing is found by polling, and a link that
follows ten thousand channels costs no more at rest than one that follows one.

Like the config listener a link never retries silently (the session proves the connection with
a token PING and, on Sentinel and Cluster, a probe message on its private channel). On a
Sentinel URL the sentinels are asked now and then where the master is
(:func:`~hotconfig._redis.liveness.check_master`), and a shard link that Redis tells its slot
moved (an unsolicited ``sunsubscribe``, or ``-MOVED`` to an SSUBSCRIBE) ends its session so that
its channels are routed again. After any fault the link reconnects with capped, jittered
backoff, resolving the master again (Sentinel) or the slot's owner (Cluster), and subscribes
again to everything it follows at that moment.
"""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass
from typing import Any, Protocol

from .._redis.connection import Target, Topology
from .._redis.liveness import check_master
from .._redis.session import Session, SessionOptions
from .._redis.shards import SlotMoved

__all__ = ["Hub", "Key", "Link", "LinkOptions", "Node"]

Key = tuple[bool, str]  # (pattern, name): what browsers follow
Node = tuple[str, int]  # a cluster master's address

_BACKOFF_MAX = 1.0
_BATCH = 1_000  # channels named in one SUBSCRIBE at most


@dataclass(frozen=True, slots=True)
class LinkOptions:
    """How every link of one bridge talks to Redis."""

    socket_timeout: float = 2.0
    ping_interval: float = 1.0
    probe_interval: float | None = None  # None: no probe
    master_check: float = 5.0  # seconds between two questions to the sentinels

    @classmethod
    def of(
        cls,
        target: Target,
        socket_timeout: float,
        ping_interval: float,
        probe_interval: float | None,
        check_interval: float,
    ) -> LinkOptions:
        """The options for ``target``, checked. The delivery probe: every ``probe_interval``
        seconds, else every 30 on Sentinel and Cluster (where a failover can leave a
        connection that answers PING but no longer delivers) and none on one server, as the
        config client does."""
        for name, value in (("probe_interval", probe_interval), ("check_interval", check_interval)):
            if value is not None and not value > 0:
                raise ValueError(f"{name} must be positive seconds, got {value!r}")
        if probe_interval is None and target.topology is not Topology.SINGLE:
            probe_interval = 30.0
        return cls(socket_timeout, ping_interval, probe_interval, check_interval)


class Hub(Protocol):
    """What a link tells its bridge; every method is thread-safe, called on the link's
    thread."""

    def _dispatch(self, key: Key, channel: bytes, data: bytes) -> None: ...

    def _acknowledge(self, link: Link, key: Key, subscribed: bool) -> None: ...

    def _connected(self, link: Link) -> None: ...

    def _failed(self, link: Link, error: BaseException) -> None: ...

    def _lost(self, link: Link, keys: set[Key]) -> None:
        """``link``'s connection is gone; ``keys`` were subscribed on it."""
        ...


class Link(Session):
    """One connection (``node`` None: the classic one; else a cluster master's address, where
    exact channels are SSUBSCRIBEd) and the thread that reads it; see the module docstring."""

    def __init__(
        self,
        hub: Hub,
        target: Target,
        options: LinkOptions,
        node: Node | None = None,
        persistent: bool = True,
        name: str = "hotconfig-bridge",
    ) -> None:
        where = "" if node is None else f"@{node[0]}:{node[1]}"
        super().__init__(
            target,
            SessionOptions(
                socket_timeout=options.socket_timeout,
                ping_interval=options.ping_interval,
                liveness_timeout=options.socket_timeout,
                probe_interval=options.probe_interval,
                backoff_max=_BACKOFF_MAX,
            ),
            name + where,
            # A private classic channel: it keeps the connection in Pub/Sub mode while it
            # follows nothing else, and carries the delivery probe.
            f"hotconfig:bridge:{uuid.uuid4().hex[:16]}",
        )
        self.node, self.persistent = node, persistent
        self.connected = False
        self.sessions = 0
        self._hub = hub
        self._keys = threading.Lock()  # _wanted and _sent, against the router's thread
        self._wanted: set[Key] = set()  # what the router placed here
        self._sent: set[Key] = set()  # what this session's connection was told to follow
        if node is None:
            self.period = options.master_check  # ask the sentinels (a no-op elsewhere)

    @property
    def following(self) -> bool:
        return bool(self._wanted)

    def follow(self, add: set[Key], drop: set[Key]) -> None:
        """Follow ``add`` and let ``drop`` go (called on the router's thread); written on the
        open connection at once, else by the next session when it opens."""
        with self._keys:
            self._wanted |= add
            self._wanted -= drop
            if self.connected:
                self._sync()

    def _sync(self) -> None:
        """Send the commands that make Redis follow what is wanted and nothing else (under
        ``_keys``). ``_sent`` changes before the command goes, so that the acknowledgement, read
        on the link's thread, always finds it: a ``sunsubscribe`` for a channel no longer in it
        is the answer to ours, not Redis ending the subscription."""
        wanted, sent = self._wanted, self._sent
        if wanted == sent:
            return
        exact = (
            ("SUBSCRIBE", "UNSUBSCRIBE") if self.node is None else ("SSUBSCRIBE", "SUNSUBSCRIBE")
        )
        commands: list[tuple[str, ...]] = []
        for pattern, (add, drop) in ((False, exact), (True, ("PSUBSCRIBE", "PUNSUBSCRIBE"))):
            for verb, names in (
                (add, sorted(n for p, n in wanted - sent if p is pattern)),
                (drop, sorted(n for p, n in sent - wanted if p is pattern)),
            ):
                if not names:
                    continue
                if verb[0] == "S":  # one channel a command: SSUBSCRIBE refuses several slots
                    commands.extend((verb, name) for name in names)
                else:
                    commands.extend(
                        (verb, *names[i : i + _BATCH]) for i in range(0, len(names), _BATCH)
                    )
        self._sent = set(wanted)
        for command in commands:
            if not self.send(*command):
                return  # the connection is going: the next session subscribes it all

    # -- the session's hooks --------------------------------------------------------------------

    def connect(self) -> tuple[Any, Any]:
        """``(publisher of probes, subscriber)``. Classic: the listener's clients (Sentinel
        asked anew; on a cluster, the probe crosses the cluster bus). Sharded: a connection to
        this link's master; if it no longer serves a channel, SSUBSCRIBE answers MOVED."""
        timeout = self.options.socket_timeout
        if self.node is None:
            return self.target.listener_clients(timeout)
        subscriber = self.target.node_subscriber(self.node, timeout)
        return subscriber, subscriber

    def open(self, publisher: Any, pubsub: Any) -> None:
        pubsub.subscribe(self.probe_channel)

    def opened(self, publisher: Any) -> None:
        with self._keys:
            self.connected = True
            self.sessions += 1
            self._sync()
        self._hub._connected(self)

    def due(self, publisher: Any, connection: Any) -> float:
        check_master(self.target, connection)  # Sentinel only; a no-op otherwise
        return self.period

    def received(self, publisher: Any, reply: list[Any]) -> None:
        hub, kind = self._hub, reply[0]
        if kind == b"message" or kind == b"smessage":
            hub._dispatch((False, reply[1].decode()), reply[1], reply[2])
        elif kind == b"pmessage":
            hub._dispatch((True, reply[1].decode()), reply[2], reply[3])
        elif kind in (b"subscribe", b"ssubscribe", b"psubscribe"):
            if reply[1] != self._probe_bytes:
                hub._acknowledge(self, (kind == b"psubscribe", reply[1].decode()), True)
        elif kind == b"sunsubscribe" and (False, reply[1].decode()) in self._sent:
            # Never asked for: Redis ends shard subscriptions of a slot that moved away.
            raise SlotMoved(
                f"Redis ended the shard subscription to {reply[1].decode(errors='replace')!r}"
                ": its slot moved to another master"
            )
        elif kind in (b"unsubscribe", b"punsubscribe", b"sunsubscribe") and reply[1]:
            hub._acknowledge(self, (kind == b"punsubscribe", reply[1].decode()), False)

    def failed(self, error: BaseException, hint: str | None) -> None:
        self._hub._failed(self, error)

    def closed(self) -> None:
        with self._keys:
            self.connected = False
            sent, self._sent = self._sent, set()
        self._hub._lost(self, sent)

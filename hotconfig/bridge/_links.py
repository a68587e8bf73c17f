"""One subscription connection of the bridge, and the thread that keeps it: a :class:`Link`.

A bridge holds one link for classic SUBSCRIBE and PSUBSCRIBE (on one server, on the master that
Sentinel names, or on any node of a cluster, where PUBLISH reaches every node) and, in sharded
mode, one link per cluster master that serves at least one followed exact channel, which it
SSUBSCRIBEs there (:mod:`hotconfig.bridge._routing` decides which). Each link asks its
:class:`Hub` (the bridge) what to follow, many times a second, and sends the commands that make
Redis follow exactly that.

Like the config listener (:mod:`hotconfig._config.listener`) a link never retries silently: a PING
with a token proves the socket, a probe message on its private channel, published through
another connection, proves that published messages still come back (a failover can leave a
socket that answers PING on a server that no longer gets them), on a Sentinel URL the sentinels
are asked now and then where the master is (:func:`~hotconfig._redis.liveness.check_master`), and a
shard link that Redis tells its slot moved (an unsolicited ``sunsubscribe``, or ``-MOVED`` to
an SSUBSCRIBE) ends its session so that its channels are routed again. After any fault the
link reconnects with capped, jittered backoff, resolving the master again (Sentinel) or the
slot's owner (Cluster), and subscribes again to everything followed at that moment.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any, Protocol

import redis

from .._redis.connection import Target, Topology
from .._redis.liveness import (
    Heartbeat,
    LivenessError,
    Outage,
    backoff,
    check_master,
    close_sockets,
    misconfiguration,
)
from .._redis.shards import SlotMoved

__all__ = ["Hub", "Key", "Link", "LinkOptions", "Node"]

log = logging.getLogger("hotconfig.bridge")

Key = tuple[bool, str]  # (pattern, name): what browsers follow
Node = tuple[str, int]  # a cluster master's address

_MAX_WAIT = 0.02  # the longest a read blocks: how soon a new channel is subscribed
_DRAIN_LIMIT = 10_000
_BACKOFF_BASE, _BACKOFF_MAX, _BACKOFF_RESET = 0.05, 1.0, 10.0


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
    """What a link needs from its bridge; every method is thread-safe, called on the link's
    thread."""

    def _wanted(self, link: Link) -> set[Key] | None:
        """What ``link`` must follow now; None: nothing, and the link is retired (the next
        channel for its node gets a new link)."""
        ...

    def _dispatch(self, key: Key, channel: bytes, data: bytes) -> None: ...

    def _acknowledge(self, link: Link, key: Key, subscribed: bool) -> None: ...

    def _connected(self, link: Link) -> None: ...

    def _failed(self, link: Link, error: BaseException) -> None: ...

    def _lost(self, link: Link, keys: set[Key]) -> None:
        """``link``'s connection is gone; ``keys`` were subscribed on it."""
        ...


class Link:
    """One connection (``node`` None: the classic one; else a cluster master's address, where
    exact channels are SSUBSCRIBEd) and the thread that reads it; see the module docstring."""

    def __init__(
        self,
        hub: Hub,
        target: Target,
        options: LinkOptions,
        stop: threading.Event,
        node: Node | None = None,
        persistent: bool = True,
        name: str = "hotconfig-bridge",
    ) -> None:
        self.node, self.persistent = node, persistent
        self.connected = False
        self.sessions = 0
        self._hub, self._target, self._options, self._stop = hub, target, options, stop
        self._lock = threading.Lock()
        self._pubsub: Any = None
        self._clients: tuple[Any, ...] = ()
        self._sent: set[Key] = set()
        self._probe_refused = False  # the ACL user may not PUBLISH: PING alone, from then on
        # A private classic channel: it keeps the connection in Pub/Sub mode while it follows
        # nothing else, and carries the delivery probe.
        self._private = f"hotconfig:bridge:{uuid.uuid4().hex[:16]}".encode()
        where = "" if node is None else f"@{node[0]}:{node[1]}"
        self.thread = threading.Thread(target=self._run, name=name + where, daemon=True)

    def start(self) -> None:
        self.thread.start()

    def disconnect(self) -> None:
        """Close the sockets from another thread: wakes the link's thread blocked in a read."""
        with self._lock:
            pubsub, clients = self._pubsub, self._clients
        close_sockets(pubsub, clients, "the bridge's sockets")

    # -- the thread -----------------------------------------------------------------------------

    def _run(self) -> None:
        outage = Outage(self._target)
        attempt = 0
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                if self._session(outage):
                    return  # retired: nothing left to follow here
            except BaseException as exc:  # the thread must never die unseen
                if self._stop.is_set():
                    break
                self._hub._failed(self, exc)
                if isinstance(exc, SlotMoved):  # a reshard or a failover, not an outage
                    log.info("%s; routing its channels again", exc)
                else:
                    outage.failed(f"{type(exc).__name__}: {exc}", misconfiguration(exc))
            finally:
                self._teardown()
            if time.monotonic() - started > _BACKOFF_RESET:
                attempt = 0
            delay = backoff(attempt, _BACKOFF_BASE, _BACKOFF_MAX)
            attempt += 1
            self._stop.wait(delay)

    def _session(self, outage: Outage) -> bool:
        """Connect, then follow what the hub wants until a fault (raised) or retirement (True)."""
        if self._hub._wanted(self) is None:
            return True
        publisher, subscriber = self._connect()
        pubsub = subscriber.pubsub()
        with self._lock:
            self._pubsub = pubsub
            self._clients = (subscriber,) if publisher is subscriber else (publisher, subscriber)
        pubsub.subscribe(self._private.decode())
        connection = pubsub.connection
        options = self._options
        now = time.monotonic()
        heartbeat = Heartbeat(options.ping_interval, options.socket_timeout, now)
        probing = options.probe_interval if not self._probe_refused else None
        probe = Heartbeat(probing or float("inf"), options.socket_timeout, now)
        next_check = now + options.master_check
        self.sessions += 1
        self.connected = True
        self._hub._connected(self)
        outage.recovered()
        while not self._stop.is_set():
            wanted = self._hub._wanted(self)
            if wanted is None:
                return True
            self._sync(connection, wanted)
            now = time.monotonic()
            # A PONG or an echo may be waiting unread behind a burst: only silence counts.
            if heartbeat.overdue(now) and not connection.can_read(timeout=0):
                raise LivenessError(f"no PONG within {options.socket_timeout}s")
            if probe.overdue(now) and not connection.can_read(timeout=0):
                raise LivenessError(f"no echo of a probe message within {options.socket_timeout}s")
            token = heartbeat.send_due(now)
            if token is not None:
                connection.send_command("PING", token)
            token = probe.send_due(now)
            if token is not None and not self._send_probe(publisher, token):
                probe = Heartbeat(float("inf"), options.socket_timeout, now)
            if self.node is None and now >= next_check:
                next_check = now + options.master_check
                check_master(self._target, connection)  # Sentinel only; a no-op otherwise
            if connection.can_read(timeout=_MAX_WAIT):
                self._drain(connection, heartbeat, probe)
        return True

    def _send_probe(self, publisher: Any, token: bytes) -> bool:
        """PUBLISH the probe; False if the ACL forbids it (an older ``bridge`` role grants no
        PUBLISH): the probe is then off for good, with one warning, rather than the bridge."""
        try:
            publisher.publish(self._private, token)
        except redis.exceptions.NoPermissionError as exc:
            self._probe_refused = True
            log.warning(
                "the bridge's delivery probe is off: its ACL user may not PUBLISH on %s (%s); "
                "grant its user '+publish &hotconfig:bridge:*' to turn it on",
                self._private.decode(),
                exc,
            )
            return False
        return True

    def _connect(self) -> tuple[Any, Any]:
        """``(publisher of probes, subscriber)``. Classic: the listener's clients (Sentinel
        asked anew; on a cluster, the probe crosses the cluster bus). Sharded: a connection to
        this link's master; if it no longer serves a channel, SSUBSCRIBE answers MOVED."""
        if self.node is None:
            return self._target.listener_clients(self._options.socket_timeout)
        subscriber = self._target.node_subscriber(self.node, self._options.socket_timeout)
        return subscriber, subscriber

    def _sync(self, connection: Any, wanted: set[Key]) -> None:
        """Send the commands that make Redis follow ``wanted`` and nothing else."""
        sent = self._sent
        if wanted == sent:
            return
        exact = (
            ("SUBSCRIBE", "UNSUBSCRIBE") if self.node is None else ("SSUBSCRIBE", "SUNSUBSCRIBE")
        )
        for pattern, (add, drop) in ((False, exact), (True, ("PSUBSCRIBE", "PUNSUBSCRIBE"))):
            for verb, names in (
                (add, sorted(n for p, n in wanted - sent if p is pattern)),
                (drop, sorted(n for p, n in sent - wanted if p is pattern)),
            ):
                if not names:
                    continue
                if verb[0] == "S":  # one channel a command: SSUBSCRIBE refuses several slots
                    for name in names:
                        connection.send_command(verb, name)
                else:
                    connection.send_command(verb, *names)
        sent.clear()
        sent.update(wanted)

    def _drain(self, connection: Any, heartbeat: Heartbeat, probe: Heartbeat) -> None:
        hub = self._hub
        for _ in range(_DRAIN_LIMIT):
            try:
                reply = connection.read_response(push_request=True)
            except redis.exceptions.MovedError as exc:  # an SSUBSCRIBE reached a former owner
                raise SlotMoved(f"slot {exc.slot_id} moved to {exc.host}:{exc.port}") from None
            kind = reply[0]
            if kind == b"message" or kind == b"smessage":
                if reply[1] == self._private:
                    probe.answered(reply[2])
                else:
                    hub._dispatch((False, reply[1].decode()), reply[1], reply[2])
            elif kind == b"pmessage":
                hub._dispatch((True, reply[1].decode()), reply[2], reply[3])
            elif kind in (b"subscribe", b"ssubscribe", b"psubscribe"):
                if reply[1] != self._private:
                    hub._acknowledge(self, (kind == b"psubscribe", reply[1].decode()), True)
            elif kind == b"sunsubscribe" and (False, reply[1].decode()) in self._sent:
                # Never asked for: Redis ends shard subscriptions of a slot that moved away.
                raise SlotMoved(
                    f"Redis ended the shard subscription to {reply[1].decode(errors='replace')!r}"
                    ": its slot moved to another master"
                )
            elif kind in (b"unsubscribe", b"punsubscribe", b"sunsubscribe") and reply[1]:
                hub._acknowledge(self, (kind == b"punsubscribe", reply[1].decode()), False)
            elif kind == b"pong":
                heartbeat.answered(reply[1])
            if not connection.can_read(timeout=0):
                return

    def _teardown(self) -> None:
        self.connected = False
        with self._lock:
            pubsub, clients = self._pubsub, self._clients
            self._pubsub, self._clients = None, ()
        sent, self._sent = self._sent, set()
        self._hub._lost(self, sent)
        for closer in (pubsub, *clients):
            if closer is not None:
                try:
                    closer.close()
                except Exception:
                    log.debug("error while closing a connection", exc_info=True)

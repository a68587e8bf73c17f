"""The listener thread: subscribe, load a snapshot, apply changes, stay alive through faults.

Redis Pub/Sub is at-most-once and redis-py hides reconnects, so the listener never trusts the
channel alone (DESIGN §4):

1. SUBSCRIBE and wait for the acknowledgement, *then* load the store's snapshot atomically.
   Anything published in between is buffered on the socket and dropped by version afterwards.
2. Apply versioned messages only in sequence; a gap, a new epoch or any error → resync. redis-py
   could reconnect and re-subscribe silently; the listener's connections never retry, so every
   drop surfaces as an error and the next connection resyncs.
3. PING with a token; no matching PONG within the deadline → the connection is dead even if the
   socket says nothing (a frozen server, a black-holed route) → reconnect.
4. Poll the store's version now and then; behind → resync (a lost message with nothing after it).
5. Reconnect forever with capped, jittered exponential backoff; the thread never dies unseen.

In sharded mode (:mod:`hotconfig._redis.shards`) the same connection also SSUBSCRIBEs the store's
shard channel on the master serving its slot; a slot move ends the session like any drop.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import redis

from .._redis import shards
from .._redis.connection import Target
from .._redis.keyspace import Keyspace, as_text, read_position, read_snapshot
from .._redis.liveness import (
    Heartbeat,
    LivenessError,
    Outage,
    backoff,
    check_master,
    check_role,
    close_sockets,
    misconfiguration,
)
from ..errors import InvalidMessageError, RejectReason
from ..security.signing import KeyRing
from ..signals import Status
from .sink import Sink
from .state import Staged
from .wire import DEFAULT_CHANNEL, DEFAULT_LIMITS, Limits, Message, parse

__all__ = ["Listener", "ListenerOptions"]

log = logging.getLogger("hotconfig.listener")

_POLL_GRACE = 0.5  # seconds a version seen ahead by a poll may still be in flight
_DRAIN_LIMIT = 10_000  # messages applied in one swap at most, so a flood cannot starve liveness
_MAX_WAIT = 0.25  # the longest a read blocks, so that close() and the timers are never late


def _first_key(message: Message) -> str | None:
    return message.entries[0].key if message.entries else None


@dataclass(frozen=True, slots=True)
class ListenerOptions:
    """What to follow and how; the timing defaults detect a dead connection within about 3 s."""

    channel: str = DEFAULT_CHANNEL
    ping_interval: float = 1.0
    liveness_timeout: float = 2.0
    poll_interval: float = 5.0
    socket_timeout: float = 2.0
    backoff_base: float = 0.05
    backoff_max: float = 0.5
    backoff_reset_after: float = 10.0
    # A server that refuses us (a wrong password, a missing ACL permission) is asked again this
    # often: slow enough not to flood its log, fast enough that a fix takes effect by itself.
    misconfigured_retry: float = 3.0
    # How often the subscription proves, by an echo on a private channel, that messages
    # published on the server really come back on it (a PONG proves the socket, not delivery);
    # None: no probe. The client turns it on for Sentinel and Cluster, where a failover can
    # leave a healthy-looking connection that no longer delivers.
    probe_interval: float | None = None
    limits: Limits = field(default=DEFAULT_LIMITS)
    signing: KeyRing | None = None  # when set, only messages signed with one of its keys apply
    # Sharded mode: the store's shard channel, SSUBSCRIBEd besides ``channel`` (which stays
    # SUBSCRIBEd for raw publishers); the probe then goes by SPUBLISH in the same slot.
    shard_channel: str | None = None


class Listener:
    """Owns one connection to Redis and one thread; feeds the :class:`~.sink.Sink`."""

    def __init__(
        self, sink: Sink, target: Target, keyspace: Keyspace, options: ListenerOptions, name: str
    ) -> None:
        self._sink, self._target, self._keyspace, self._options = sink, target, keyspace, options
        self._counters = sink.counters
        self._stop = threading.Event()
        self.ready = threading.Event()  # set once the first snapshot from the store is live
        self.settled = threading.Event()  # set once LIVE, or once the server refused us
        self._outage = Outage(target)
        self._checked_server = False
        self._clients: tuple[Any, ...] = ()  # commands (and subscriber, if another) clients
        self._pubsub: Any = None
        self._lock = threading.Lock()  # guards _clients/_pubsub against close() from another thread
        # A private channel on the same subscription: an echo on it proves delivery end to end.
        self._probe_channel = (
            f"{options.shard_channel or options.channel}:probe:{uuid.uuid4().hex[:16]}"
        )
        self._probe_bytes = self._probe_channel.encode()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._poll_seen = 0  # the store's version at the previous anti-entropy poll

    @property
    def thread(self) -> threading.Thread:
        return self._thread

    def start(self) -> None:
        self._thread.start()

    def abandon(self) -> None:
        """Stop without touching the sockets: in a forked child they belong to the parent."""
        self._stop.set()

    def stop(self, timeout: float) -> bool:
        """Stop the thread and close its sockets; True if it ended within ``timeout``."""
        self._stop.set()
        if threading.current_thread() is self._thread:
            return True  # close() from a receiver: the loop ends when the receiver returns
        deadline = time.monotonic() + timeout
        # Closing the sockets from here wakes a thread blocked in a read; repeat in case it
        # opened a new connection between two checks of the stop flag.
        while self._thread.is_alive() and time.monotonic() < deadline:
            self._disconnect()
            self._thread.join(min(0.05, max(0.0, deadline - time.monotonic())))
        self._disconnect()
        return not self._thread.is_alive()

    # -- the thread ---------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            self._retry_forever()
        finally:
            if not self._stop.is_set():  # cannot happen by design; never let it pass unseen
                self._counters.last_error = "the listener thread ended unexpectedly"
                log.critical("the listener thread ended unexpectedly; the client is frozen")
                self._sink.set_status(Status.INTERRUPTED)

    def _retry_forever(self) -> None:
        attempt = 0
        while not self._stop.is_set():
            started = time.monotonic()
            hint: str | None = None
            # BaseException: on this thread a KeyboardInterrupt or SystemExit can only come from
            # code it calls; letting one end the thread would freeze the client unseen.
            try:
                self._session()
            except BaseException as exc:
                if self._stop.is_set():
                    break
                hint = misconfiguration(exc)
                self._counters.last_error = f"{type(exc).__name__}: {exc}"
                if isinstance(exc, shards.SlotMoved):  # a reshard or failover, not an outage
                    log.info("%s; subscribing on its new master", exc)
                else:
                    self._outage.failed(self._counters.last_error, hint)
            finally:
                self._teardown()
            if self._stop.is_set():
                break
            if hint is not None:
                self._sink.set_status(Status.MISCONFIGURED)
                self.settled.set()
                delay = self._options.misconfigured_retry
            else:
                if self.ready.is_set():
                    self._sink.set_status(Status.INTERRUPTED)
                if time.monotonic() - started > self._options.backoff_reset_after:
                    attempt = 0
                delay = self._backoff(attempt)
                attempt += 1
            self._stop.wait(delay)

    def _backoff(self, attempt: int) -> float:
        return backoff(attempt, self._options.backoff_base, self._options.backoff_max)

    def _session(self) -> None:
        shard = self._options.shard_channel
        client, subscriber = self._target.listener_clients(self._options.socket_timeout, shard)
        pubsub = subscriber.pubsub()
        with self._lock:
            self._clients = (client,) if subscriber is client else (client, subscriber)
            self._pubsub = pubsub
        if self._stop.is_set():
            return
        probes = [self._probe_channel] if self._options.probe_interval is not None else []
        # Sharded: the probe channel is a shard channel, in the store's slot.
        channels = [self._options.channel, *([] if shard else probes)]
        pubsub.subscribe(*channels)
        self._await_subscribe(pubsub, len(channels))
        if shard is not None and not self._stop.is_set():
            shards.subscribe(pubsub.connection, [shard, *probes], self._options.socket_timeout)
        if self._stop.is_set():
            return  # close() came during the handshake: no resync, no receivers after it
        if self.ready.is_set():
            self._counters.reconnects += 1
        self._check_role(client)  # the sentinels may still name a master being demoted
        self._resync(client)
        self._check_server(client)
        self._outage.recovered()
        self._sink.set_status(Status.LIVE)
        self.ready.set()
        self.settled.set()
        self._follow(client, pubsub)

    def _check_server(self, client: Any) -> None:
        """Warn once if the server may evict the store's keys: that loses data silently."""
        if self._checked_server:
            return
        self._checked_server = True
        try:
            reply: dict[Any, Any] = client.config_get("maxmemory-policy")
        except redis.RedisError as exc:  # CONFIG is often disabled (managed Redis, ACLs)
            log.debug("could not read the server's maxmemory-policy: %s", exc)
            return
        policy = as_text(next(iter(reply.values()), b""))
        if policy.startswith("allkeys"):
            warning = (
                f"the server's maxmemory-policy is {policy}: under memory pressure it may "
                "evict the store's keys; use noeviction or a volatile-* policy"
            )
            self._counters.server_warning = warning
            log.warning("%s", warning)

    def _await_subscribe(self, pubsub: Any, channels: int) -> None:
        deadline = time.monotonic() + self._options.socket_timeout
        while not self._stop.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                raise LivenessError("no SUBSCRIBE acknowledgement from Redis in time")
            message = pubsub.get_message(timeout=min(left, 0.1))
            if message is not None and message["type"] == "subscribe":
                channels -= 1
                if channels == 0:
                    return

    def _follow(self, client: Any, pubsub: Any) -> None:
        # Replies are read straight off the subscription's connection (public Connection API):
        # PubSub.get_message() wraps every read in retry and bookkeeping layers that cost more
        # than parsing and applying the message, and its silent reconnect is what we avoid.
        # With retries off (connection.Target), redis-py never re-subscribes under us: a dropped
        # connection raises here, and the next session resyncs.
        connection = pubsub.connection
        options = self._options
        now = time.monotonic()
        heartbeat = Heartbeat(options.ping_interval, options.liveness_timeout, now)
        # Without a probe, one that never comes due (the subscription has no probe channel).
        probe = Heartbeat(options.probe_interval or float("inf"), options.liveness_timeout, now)
        next_poll = now + options.poll_interval
        while not self._stop.is_set():
            now = time.monotonic()
            # A PONG may be waiting unread behind a burst: only silence past the deadline counts.
            if heartbeat.overdue(now) and not connection.can_read(timeout=0):
                raise LivenessError(f"no PONG within {options.liveness_timeout}s")
            if probe.overdue(now) and not connection.can_read(timeout=0):
                # The socket answers PING, yet a message published on it never came back.
                raise LivenessError(
                    f"no echo of a probe message within {options.liveness_timeout}s"
                )
            token = heartbeat.send_due(now)
            if token is not None:
                pubsub.ping(token.decode())
            token = probe.send_due(now)
            if token is not None and self._options.shard_channel is not None:
                shards.publish(client, self._probe_channel, token)
            elif token is not None:
                client.publish(self._probe_channel, token)
            if now >= next_poll:
                next_poll = now + self._poll(client, connection)
            wait = min(heartbeat.deadline(), probe.deadline(), next_poll) - now
            if connection.can_read(timeout=max(0.0, min(wait, _MAX_WAIT))):
                self._drain(client, connection, heartbeat, probe)

    def _drain(self, client: Any, connection: Any, heartbeat: Heartbeat, probe: Heartbeat) -> None:
        """Read everything already waiting, then apply it in one swap."""
        for _ in range(_DRAIN_LIMIT):
            if self._stop.is_set():
                break  # in a child forked by a receiver, this socket is the parent's
            reply = connection.read_response(push_request=True)
            kind = reply[0]
            if kind == b"message" or kind == b"smessage":
                if len(reply[1]) == len(self._probe_channel) and reply[1] == self._probe_bytes:
                    probe.answered(reply[2])
                else:
                    self._on_message(client, reply[2])
            elif kind == b"pong":
                heartbeat.answered(reply[1])
            elif kind == b"sunsubscribe":  # never asked for: the slot moved away
                self._sink.flush()
                raise shards.unsubscribed(reply[1])
            if not connection.can_read(timeout=0):
                break
        self._sink.flush()

    def _on_message(self, client: Any, data: bytes) -> None:
        self._counters.received += 1
        try:
            parsed = parse(data, self._options.limits)
        except InvalidMessageError as exc:
            self._sink.reject(exc.reason, exc)
            return
        if parsed.ns is not None and parsed.ns != self._keyspace.namespace:
            self._counters.skipped += 1  # another store's message on the same channel
            return
        ring = self._options.signing
        if ring is not None and (refused := ring.check(parsed, self._options.channel)):
            reason = RejectReason(refused)
            error = InvalidMessageError(reason, refused.detail)
            self._sink.reject(reason, error, _first_key(parsed))
            return
        staged = self._sink.stage(parsed)
        if staged is Staged.GAP or staged is Staged.CONFLICT:
            self._sink.flush()
            self._verify(client, parsed, staged)

    def _verify(self, client: Any, message: Message, staged: Staged) -> None:
        """A message that does not follow what was applied: did the store move, or is it foreign?

        One cheap read decides. If the store is where this client thinks it is, the message is
        not the store's (a forgery, a stray publisher) and is rejected; otherwise messages were
        lost or the store changed under us (restored, promoted, evicted), and we resync.
        """
        store = read_position(client, self._keyspace, self._sink.state.store_scopes)
        if store == self._sink.state.position:
            reason = RejectReason(staged.value)  # GAP or CONFLICT
            self._sink.reject(
                reason,
                InvalidMessageError(
                    reason,
                    f"version {message.version} does not follow the store, which is at version "
                    f"{store.version}: not the store's message, ignored",
                ),
            )
        else:
            self._resync(client)

    def _resync(self, client: Any) -> None:
        self._sink.resync(read_snapshot(client, self._keyspace, self._sink.state.store_scopes))
        self._poll_seen = 0

    def _poll(self, client: Any, connection: Any) -> float:
        """Compare what identifies the store's state with ours; return seconds to the next poll.

        On a Sentinel URL, also ask the sentinels where the master is: a subscriber left on a
        demoted or partitioned master would hear nothing more, and say nothing.
        """
        self._check_master(client, connection)
        if self._options.shard_channel is not None:
            shards.check_owner(client, connection, self._options.shard_channel)
        store = read_position(client, self._keyspace, self._sink.state.store_scopes)
        self._sink.store_version = store.version  # what config.lag is measured against
        mine = self._sink.state.position
        if store == mine:
            self._poll_seen = 0
            return self._options.poll_interval
        behind = self._poll_seen and mine.version < self._poll_seen
        if store.epoch == mine.epoch and store.version > mine.version and not behind:
            # Under steady writes the store is often a version or two ahead while those
            # messages are still on their way: look again shortly, and resync only if the
            # client is still short of what this poll saw.
            self._poll_seen = store.version
            return min(_POLL_GRACE, self._options.poll_interval)
        log.info(
            "the store (version %d, digest %s, sizes %s) differs from this client "
            "(version %d, digest %s, sizes %s); resyncing",
            store.version,
            store.digest,
            store.sizes,
            mine.version,
            mine.digest,
            mine.sizes,
        )
        self._sink.flush()
        self._resync(client)
        return self._options.poll_interval

    def _check_master(self, client: Any, connection: Any) -> None:
        check_master(self._target, connection)
        self._check_role(client)

    def _check_role(self, client: Any) -> None:
        check_role(self._target, client)

    # -- teardown -----------------------------------------------------------------------------

    def _disconnect(self) -> None:
        with self._lock:
            clients, pubsub = self._clients, self._pubsub
        close_sockets(pubsub, clients, "the listener's sockets")

    def _teardown(self) -> None:
        with self._lock:
            clients, pubsub = self._clients, self._pubsub
            self._clients, self._pubsub = (), None
        for closer in (pubsub, *clients):
            if closer is not None:
                try:
                    closer.close()
                except Exception:  # the socket is already gone; nothing left to release
                    log.debug("error while closing a connection", exc_info=True)

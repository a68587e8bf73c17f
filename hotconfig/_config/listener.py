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
import uuid
from dataclasses import dataclass, field
from typing import Any

from .._redis import shards
from .._redis.connection import Target, Topology, database
from .._redis.keyspace import Keyspace, read_position, read_snapshot, store_risks
from .._redis.liveness import check_master, check_role, client_id
from .._redis.session import Session, SessionOptions, await_subscribed
from ..errors import InvalidMessageError, RejectReason
from ..security.signing import KeyRing
from ..signals import Status
from .sink import Sink
from .state import Staged
from .wire import DEFAULT_CHANNEL, DEFAULT_LIMITS, Limits, Message, envelope_version, parse

__all__ = ["Listener", "ListenerOptions"]

log = logging.getLogger("hotconfig.listener")

_POLL_GRACE = 0.5  # seconds a version seen ahead by a poll may still be in flight


def _first_key(message: Message) -> str | None:
    return message.entries[0].key if message.entries else None


@dataclass(frozen=True, slots=True)
class ListenerOptions:
    """What to follow and how: the connection's timings are its session's
    (:class:`~hotconfig._redis.session.SessionOptions`: PING, probe, backoff), the rest here."""

    channel: str = DEFAULT_CHANNEL
    poll_interval: float = 5.0
    # The probe (``session.probe_interval``, None: none) proves by an echo on a private channel
    # that published messages really come back; the client turns it on for Sentinel and Cluster,
    # where a failover can leave a healthy-looking connection that no longer delivers.
    session: SessionOptions = field(default_factory=SessionOptions)
    limits: Limits = field(default=DEFAULT_LIMITS)
    signing: KeyRing | None = None  # when set, only messages signed with one of its keys apply
    # Sharded mode: the store's shard channel, SSUBSCRIBEd besides ``channel`` (which stays
    # SUBSCRIBEd for raw publishers); the probe then goes by SPUBLISH in the same slot.
    shard_channel: str | None = None


class Listener(Session):
    """Follows the store on one connection (a :class:`~hotconfig._redis.session.Session`) and
    feeds the :class:`~.sink.Sink`."""

    def __init__(
        self, sink: Sink, target: Target, keyspace: Keyspace, options: ListenerOptions, name: str
    ) -> None:
        super().__init__(
            target,
            options.session,
            name,
            # A private channel on the same subscription: an echo on it proves delivery end to
            # end (sharded: a shard channel in the store's slot, published by SPUBLISH).
            f"{options.shard_channel or options.channel}:probe:{uuid.uuid4().hex[:16]}",
            sharded_probe=options.shard_channel is not None,
        )
        self._sink, self._keyspace, self._listening = sink, keyspace, options
        self._counters = sink.counters
        self.ready = threading.Event()  # set once the first snapshot from the store is live
        self.settled = threading.Event()  # set once LIVE, or once the server refused us
        self._checked_server = False
        self._db = 0  # the database of the store, named by its messages: set at each connect
        self._id_refused = False  # the ACL user may not run CLIENT ID: told once
        self._poll_seen = 0  # the store's version at the previous anti-entropy poll
        self.period = options.poll_interval

    # -- the session's hooks ------------------------------------------------------------------

    def connect(self) -> tuple[Any, Any]:
        # A poll or a resync blocks no longer than a PONG may take: a freeze meanwhile is
        # noticed within ping_interval + liveness_timeout (see hotconfig._redis.session).
        timeout = min(self.options.socket_timeout, self.options.liveness_timeout)
        return self.target.listener_clients(timeout, self._listening.shard_channel)

    def open(self, publisher: Any, pubsub: Any) -> None:
        """SUBSCRIBE and wait for the acknowledgement, *then* load the store's snapshot."""
        shard = self._listening.shard_channel
        own = self._own_id(pubsub)
        probes = self.subscribe_probe()
        # Sharded: the probe channel is a shard channel, in the store's slot.
        channels = [self._listening.channel, *([] if shard else probes)]
        pubsub.subscribe(*channels)
        await_subscribed(pubsub, len(channels), self.options.socket_timeout, lambda: self.stopping)
        if shard is not None and not self.stopping:
            shards.subscribe(pubsub.connection, [shard, *probes], self.options.socket_timeout)
        if self.stopping:
            return  # close() came during the handshake: no resync, no receivers after it
        if self.ready.is_set():
            self._counters.reconnects += 1
        check_role(self.target, publisher)  # the sentinels may still name a master being demoted
        self._db = database(publisher)
        self._resync(publisher)
        self._check_server(publisher)
        self._counters.connection_id = own  # what this instance registers with (the fleet)
        self._sink.set_status(Status.LIVE)
        self.ready.set()
        self.settled.set()

    def _own_id(self, pubsub: Any) -> int | None:
        """This connection's id on the server holding the store, where the fleet looks it up;
        None on a cluster's classic subscription (a random node: another server)."""
        self._counters.connection_id = None
        if self.target.topology is Topology.CLUSTER and self._listening.shard_channel is None:
            return None
        own = client_id(pubsub)
        if own is None and not self._id_refused:
            self._id_refused = True
            log.warning(
                "the ACL user may not run CLIENT ID: if this process dies without a word, the "
                "fleet sees it only when its registration expires; grant +client|id (hotconfig "
                "acl subscriber)"
            )
        return own

    def received(self, publisher: Any, reply: list[Any]) -> None:
        kind = reply[0]
        if kind == b"message" or kind == b"smessage":
            self._on_message(publisher, reply[2])
        elif kind == b"sunsubscribe":  # never asked for: the slot moved away
            self._sink.flush()
            raise shards.unsubscribed(reply[1])

    def drained(self) -> None:
        self._sink.flush()  # everything read in one batch is applied in one swap

    def due(self, publisher: Any, connection: Any) -> float:
        return self._poll(publisher, connection)

    def closed(self) -> None:
        self._counters.connection_id = None  # a connection the server no longer has

    def failed(self, error: BaseException, hint: str | None) -> None:
        self._counters.last_error = f"{type(error).__name__}: {error}"
        if hint is not None:
            self._sink.set_status(Status.MISCONFIGURED)
            self.settled.set()
        elif self.ready.is_set():
            self._sink.set_status(Status.INTERRUPTED)

    def died(self) -> None:
        self._counters.last_error = "the listener thread ended unexpectedly; the client is frozen"
        self._sink.set_status(Status.INTERRUPTED)

    def _check_server(self, client: Any) -> None:
        """Warn once about server settings that can lose the store's keys silently."""
        if self._checked_server:
            return
        self._checked_server = True
        risks = store_risks(client)
        for risk in risks:
            log.warning("%s", risk)
        self._counters.server_warning = "; ".join(risks) or None

    def _on_message(self, client: Any, data: bytes) -> None:
        self._counters.received += 1
        try:
            parsed = parse(data, self._listening.limits)
        except InvalidMessageError as exc:
            # Under the version its envelope claims: a barrier waiting for that write hears why.
            claimed = envelope_version(data, self._keyspace.namespace, self._db)
            self._sink.reject(exc.reason, exc, version=claimed)
            return
        if parsed.ns is not None and (
            parsed.ns != self._keyspace.namespace or parsed.db != self._db
        ):
            # Another store's message on the same channel: another namespace, or the same one
            # in another database of the server (Pub/Sub ignores database numbers).
            self._counters.skipped += 1
            return
        ring = self._listening.signing
        if ring is not None and (refused := ring.check(parsed, self._listening.channel)):
            reason = RejectReason(refused)
            error = InvalidMessageError(reason, refused.detail)
            self._sink.reject(reason, error, _first_key(parsed), parsed.version)
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
        if self._listening.shard_channel is not None:
            shards.check_owner(client, connection, self._listening.shard_channel)
        store = read_position(client, self._keyspace, self._sink.state.store_scopes)
        self._sink.store_version = store.version  # what config.lag is measured against
        mine = self._sink.state.position
        if store == mine:
            self._poll_seen = 0
            return self._listening.poll_interval
        behind = self._poll_seen and mine.version < self._poll_seen
        if store.epoch == mine.epoch and store.version > mine.version and not behind:
            # Under steady writes the store is often a version or two ahead while those
            # messages are still on their way: look again shortly, and resync only if the
            # client is still short of what this poll saw.
            self._poll_seen = store.version
            return min(_POLL_GRACE, self._listening.poll_interval)
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
        return self._listening.poll_interval

    def _check_master(self, client: Any, connection: Any) -> None:
        check_master(self.target, connection)
        check_role(self.target, client)

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
"""

from __future__ import annotations

import logging
import random
import threading
import time
from dataclasses import dataclass
from typing import Any

import redis

from .connection import Target
from .errors import InvalidMessageError
from .keyspace import Keyspace, as_text, read_snapshot
from .signals import Status
from .sink import Sink
from .state import Staged
from .wire import DEFAULT_CHANNEL, DEFAULT_MAX_BYTES, parse

__all__ = ["Heartbeat", "Listener", "ListenerOptions"]

log = logging.getLogger(__name__)

_POLL_GRACE = 0.5  # seconds a version seen ahead by a poll may still be in flight
_DRAIN_LIMIT = 10_000  # messages applied in one swap at most, so a flood cannot starve liveness
_MAX_WAIT = 0.25  # the longest a read blocks, so that close() and the timers are never late


class LivenessError(ConnectionError):
    """No PONG came back in time: the server is frozen or the route drops packets."""


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
    max_message_bytes: int = DEFAULT_MAX_BYTES


class Heartbeat:
    """The token PING of one connection: when to send the next, and when its PONG is overdue.

    A PONG proves the whole path (socket, server, our reader) is alive, which a quiet socket
    does not: a frozen server or a black-holed route looks exactly like "no messages".
    """

    __slots__ = ("_due", "_interval", "_next", "_seq", "_timeout", "token")

    def __init__(self, interval: float, timeout: float, now: float) -> None:
        self._interval, self._timeout = interval, timeout
        self._next = now + interval
        self._due: float | None = None
        self._seq = 0
        self.token = b""

    def send_due(self, now: float) -> bytes | None:
        """A new token to PING with, if one is due and none is outstanding."""
        if self._due is not None or now < self._next:
            return None
        self._seq += 1
        self.token = b"hotconfig:%d" % self._seq
        self._due, self._next = now + self._timeout, now + self._interval
        return self.token

    def answered(self, token: bytes) -> None:
        if token == self.token:
            self._due = None

    def overdue(self, now: float) -> bool:
        return self._due is not None and now > self._due

    def deadline(self) -> float:
        """The next moment the heartbeat needs attention."""
        return self._next if self._due is None else min(self._next, self._due)


class Listener:
    """Owns one connection to Redis and one thread; feeds the :class:`~hotconfig.sink.Sink`."""

    def __init__(
        self, sink: Sink, target: Target, keyspace: Keyspace, options: ListenerOptions, name: str
    ) -> None:
        self._sink, self._target, self._keyspace, self._options = sink, target, keyspace, options
        self._counters = sink.counters
        self._stop = threading.Event()
        self.ready = threading.Event()  # set once the first snapshot from the store is live
        self._client: redis.Redis | None = None
        self._pubsub: Any = None
        self._lock = threading.Lock()  # guards _client/_pubsub against close() from another thread
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._poll_seen = 0  # the store's version at the previous anti-entropy poll

    def start(self) -> None:
        self._thread.start()

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
        attempt = 0
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                self._session()
            except Exception as exc:
                if self._stop.is_set():
                    break
                self._counters.last_error = f"{type(exc).__name__}: {exc}"
                log.warning("connection to Redis lost or failed: %s", self._counters.last_error)
            finally:
                self._teardown()
            if self._stop.is_set():
                break
            if self.ready.is_set():
                self._sink.set_status(Status.INTERRUPTED)
            if time.monotonic() - started > self._options.backoff_reset_after:
                attempt = 0
            self._stop.wait(self._backoff(attempt))
            attempt += 1

    def _backoff(self, attempt: int) -> float:
        delay = min(self._options.backoff_max, self._options.backoff_base * 2.0**attempt)
        # Jitter spreads a fleet's reconnects so a recovering server is not hit all at once.
        return delay * random.uniform(0.5, 1.0)

    def _session(self) -> None:
        client = self._target.subscriber_client(self._options.socket_timeout)
        pubsub = client.pubsub()  # type: ignore[no-untyped-call]
        with self._lock:
            self._client, self._pubsub = client, pubsub
        if self._stop.is_set():
            return
        pubsub.subscribe(self._options.channel)
        self._await_subscribe(pubsub)
        if self._stop.is_set():
            return  # close() came during the handshake: no resync, no receivers after it
        if self.ready.is_set():
            self._counters.reconnects += 1
        self._resync(client)
        self._sink.set_status(Status.LIVE)
        self.ready.set()
        self._follow(client, pubsub)

    def _await_subscribe(self, pubsub: Any) -> None:
        deadline = time.monotonic() + self._options.socket_timeout
        while not self._stop.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                raise LivenessError("no SUBSCRIBE acknowledgement from Redis in time")
            message = pubsub.get_message(timeout=min(left, 0.1))
            if message is not None and message["type"] == "subscribe":
                return

    def _follow(self, client: redis.Redis, pubsub: Any) -> None:
        # Replies are read straight off the subscription's connection (public Connection API):
        # PubSub.get_message() wraps every read in retry and bookkeeping layers that cost more
        # than parsing and applying the message, and its silent reconnect is what we avoid.
        # With retries off (connection.Target), redis-py never re-subscribes under us: a dropped
        # connection raises here, and the next session resyncs.
        connection = pubsub.connection
        heartbeat = Heartbeat(
            self._options.ping_interval, self._options.liveness_timeout, time.monotonic()
        )
        next_poll = time.monotonic() + self._options.poll_interval
        while not self._stop.is_set():
            now = time.monotonic()
            # A PONG may be waiting unread behind a burst: only silence past the deadline counts.
            if heartbeat.overdue(now) and not connection.can_read(timeout=0):
                raise LivenessError(f"no PONG within {self._options.liveness_timeout}s")
            token = heartbeat.send_due(now)
            if token is not None:
                pubsub.ping(token.decode())
            if now >= next_poll:
                next_poll = now + self._poll(client)
            wait = min(heartbeat.deadline(), next_poll) - now
            if connection.can_read(timeout=max(0.0, min(wait, _MAX_WAIT))):
                self._drain(client, connection, heartbeat)

    def _drain(self, client: redis.Redis, connection: Any, heartbeat: Heartbeat) -> None:
        """Read everything already waiting, then apply it in one swap."""
        for _ in range(_DRAIN_LIMIT):
            reply = connection.read_response(push_request=True)
            kind = reply[0]
            if kind == b"message":
                self._on_message(client, reply[2])
            elif kind == b"pong":
                heartbeat.answered(reply[1])
            if not connection.can_read(timeout=0):
                break
        self._sink.flush()

    def _on_message(self, client: redis.Redis, data: bytes) -> None:
        self._counters.received += 1
        try:
            parsed = parse(data, self._options.max_message_bytes)
        except InvalidMessageError as exc:
            self._sink.reject(exc.reason, exc)
            return
        if self._sink.stage(parsed) is Staged.GAP:
            self._sink.flush()
            self._resync(client)

    def _resync(self, client: redis.Redis) -> None:
        self._sink.resync(read_snapshot(client, self._keyspace, self._sink.state.store_scopes))
        self._poll_seen = 0

    def _poll(self, client: redis.Redis) -> float:
        """Compare with the store's version; return the seconds until the next poll."""
        version, epoch = client.mget(self._keyspace.version, self._keyspace.epoch)
        epoch_text = as_text(epoch) if epoch else None
        stored = int(version or 0)
        state = self._sink.state
        behind = self._poll_seen and state.version < self._poll_seen
        if behind or epoch_text != state.epoch:
            log.info("behind the store (anti-entropy poll); resyncing")
            self._sink.flush()
            self._resync(client)
        elif stored > state.version:
            # Under steady writes the store is often a version or two ahead while those
            # messages are still on their way: look again shortly, and resync only if the
            # client is still short of what this poll saw.
            self._poll_seen = stored
            return min(_POLL_GRACE, self._options.poll_interval)
        self._poll_seen = 0
        return self._options.poll_interval

    # -- teardown -----------------------------------------------------------------------------

    def _disconnect(self) -> None:
        with self._lock:
            client, pubsub = self._client, self._pubsub
        # The listener may be tearing these down at the same moment: read each once, and let
        # nothing here stop close().
        try:
            connection = pubsub.connection if pubsub is not None else None
            if connection is not None:
                connection.disconnect()
            if client is not None:
                client.connection_pool.disconnect()
        except Exception:
            log.debug("error while closing the listener's sockets", exc_info=True)

    def _teardown(self) -> None:
        with self._lock:
            client, pubsub = self._client, self._pubsub
            self._client = self._pubsub = None
        for closer in (pubsub, client):
            if closer is not None:
                try:
                    closer.close()
                except Exception:  # the socket is already gone; nothing left to release
                    log.debug("error while closing a connection", exc_info=True)

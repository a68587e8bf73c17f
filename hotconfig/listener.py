"""The listener thread: subscribe, load a snapshot, apply changes, stay alive through faults.

Redis Pub/Sub is at-most-once and redis-py hides reconnects, so the listener never trusts the
channel alone (DESIGN §4):

1. SUBSCRIBE and wait for the acknowledgement, *then* load the store's snapshot atomically.
   Anything published in between is buffered on the socket and dropped by version afterwards.
2. Apply versioned messages only in sequence; a gap, a new epoch, a second subscribe
   acknowledgement (redis-py re-subscribed silently after a drop) or any error → resync.
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
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from .errors import InvalidMessageError
from .layout import Layout, as_text, read_snapshot
from .signals import Status
from .state import ConfigState, Update
from .stats import Counters
from .wire import parse

__all__ = ["Listener", "ListenerOptions"]

log = logging.getLogger("hotconfig")

_POLL_GRACE = 0.5  # seconds a version seen ahead by a poll may still be in flight
_DRAIN_LIMIT = 10_000  # messages applied in one swap at most, so a flood cannot starve liveness


class LivenessError(ConnectionError):
    """No PONG came back in time: the server is frozen or the route drops packets."""


@dataclass(frozen=True, slots=True)
class ListenerOptions:
    """Timing of the listener; the defaults detect a dead connection within about 3 s."""

    ping_interval: float = 1.0
    liveness_timeout: float = 2.0
    poll_interval: float = 5.0
    socket_timeout: float = 2.0
    backoff_base: float = 0.05
    backoff_max: float = 0.5
    backoff_reset_after: float = 10.0
    max_message_bytes: int = 1024 * 1024


class Listener:
    """Owns one connection to Redis and one thread; feeds :class:`ConfigState` and the sink.

    ``publish``, ``reject`` and ``set_status`` are called on the listener thread.
    """

    def __init__(
        self,
        *,
        url: str,
        redis_kwargs: dict[str, Any],
        channel: str,
        layout: Layout,
        state: ConfigState,
        counters: Counters,
        options: ListenerOptions,
        publish: Callable[[Update], None],
        reject: Callable[[str, Exception], None],
        set_status: Callable[[Status], None],
        write_lock: threading.RLock,
        name: str,
    ) -> None:
        self._url, self._redis_kwargs, self._channel, self._layout = (
            url,
            redis_kwargs,
            channel,
            layout,
        )
        self._state, self._counters, self._options = state, counters, options
        self._publish, self._reject, self._set_status = publish, reject, set_status
        self._write_lock = write_lock  # shared with override(): one writer of the state at a time
        self._stop = threading.Event()
        self.ready = threading.Event()  # set once the first snapshot from the store is live
        self._client: redis.Redis | None = None
        self._pubsub: Any = None
        self._lock = threading.Lock()  # guards _client/_pubsub against close() from another thread
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._ping_seq = 0
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
                log.warning(
                    "hotconfig: connection to Redis lost or failed: %s", self._counters.last_error
                )
            finally:
                self._teardown()
            if self._stop.is_set():
                break
            if self.ready.is_set():
                self._set_status(Status.INTERRUPTED)
            if time.monotonic() - started > self._options.backoff_reset_after:
                attempt = 0
            self._stop.wait(self._backoff(attempt))
            attempt += 1

    def _backoff(self, attempt: int) -> float:
        delay = min(self._options.backoff_max, self._options.backoff_base * 2.0**attempt)
        # Jitter spreads a fleet's reconnects so a recovering server is not hit all at once.
        return delay * random.uniform(0.5, 1.0)

    def _session(self) -> None:
        options = self._options
        kwargs = {
            # RESP2 unless asked otherwise: under RESP3 redis-py routes every Pub/Sub message
            # through its push-notification hooks, which cost more than applying the message.
            "protocol": 2,
            **self._redis_kwargs,
            "socket_timeout": options.socket_timeout,
            "socket_connect_timeout": options.socket_timeout,
            "health_check_interval": 0,  # our own token PING does this, and checks the PONG
            "retry": Retry(NoBackoff(), 0, supported_errors=()),  # we reconnect, and resync
            "decode_responses": False,  # replies are matched as bytes below
        }
        client = redis.Redis.from_url(self._url, **kwargs)
        pubsub = client.pubsub()  # type: ignore[no-untyped-call]
        with self._lock:
            self._client, self._pubsub = client, pubsub
        if self._stop.is_set():
            return
        pubsub.subscribe(self._channel)
        self._await_subscribe(pubsub)
        if self._stop.is_set():
            return  # close() came during the handshake: no resync, no receivers after it
        if self.ready.is_set():
            self._counters.reconnects += 1
        self._resync(client)
        self._set_status(Status.LIVE)
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
        options = self._options
        # Replies are read straight off the subscription's connection (public Connection API):
        # PubSub.get_message() wraps every read in retry and bookkeeping layers that cost more
        # than parsing and applying the message, and its silent reconnect is what we avoid.
        connection = pubsub.connection
        now = time.monotonic()
        next_ping, next_poll = now + options.ping_interval, now + options.poll_interval
        pong_due: float | None = None
        token = b""
        while not self._stop.is_set():
            now = time.monotonic()
            # A PONG may be waiting unread behind a burst: only silence past the deadline counts.
            if pong_due is not None and now > pong_due and not connection.can_read(timeout=0):
                raise LivenessError(f"no PONG within {options.liveness_timeout}s")
            if now >= next_ping and pong_due is None:
                self._ping_seq += 1
                token = b"hotconfig:%d" % self._ping_seq
                pubsub.ping(token.decode())
                pong_due, next_ping = now + options.liveness_timeout, now + options.ping_interval
            if now >= next_poll:
                next_poll = now + self._poll(client)
            wait = min(next_ping, next_poll, pong_due or next_ping) - now
            if not connection.can_read(timeout=max(0.0, min(wait, 0.25))):
                continue
            # Drain everything already waiting, then apply it in one swap.
            for _ in range(_DRAIN_LIMIT):
                reply = connection.read_response(push_request=True)
                if isinstance(reply, bytes):  # RESP3 answers PING with the bare token
                    reply = [b"pong", reply]
                kind = reply[0]
                if kind == b"message":
                    self._on_message(client, reply[2])
                elif kind == b"pong":
                    if reply[1] == token:
                        pong_due = None
                elif kind == b"subscribe":
                    self._on_resubscribe(client)
                if not connection.can_read(timeout=0):
                    break
            self._flush()

    def _on_resubscribe(self, client: redis.Redis) -> None:
        # A second acknowledgement means the subscription was re-established under us (redis-py
        # re-subscribes when it reconnects): whatever was published in between is gone.
        self._counters.reconnects += 1
        self._flush()
        self._resync(client)

    def _on_message(self, client: redis.Redis, data: bytes) -> None:
        self._counters.received += 1
        try:
            parsed = parse(data, self._options.max_message_bytes)
        except InvalidMessageError as exc:
            self._reject(exc.reason, exc)
            return
        staged = self._state.staged_count
        if not self._state.stage(parsed):
            self._flush()
            self._resync(client)
        elif self._state.staged_count == staged:
            self._counters.skipped += 1  # a duplicate, or a version already applied

    def _flush(self) -> None:
        with self._write_lock:
            staged = self._state.staged_count
            update = self._state.commit()
            self._counters.applied += staged - len(update.rejected)
            if update.snapshot is not None or update.rejected:
                self._publish(update)

    def _resync(self, client: redis.Redis) -> None:
        epoch, version, stored = read_snapshot(client, self._layout, self._state.store_scopes)
        with self._write_lock:
            update = self._state.resync(epoch, version, stored)
            self._counters.resyncs += 1
            self._poll_seen = 0
            self._publish(update)

    def _poll(self, client: redis.Redis) -> float:
        """Compare with the store's version; return the seconds until the next poll."""
        version, epoch = client.mget(self._layout.version, self._layout.epoch)
        epoch_text = as_text(epoch) if epoch else None
        stored = int(version or 0)
        behind = self._poll_seen and self._state.version < self._poll_seen
        if behind or epoch_text != self._state.epoch:
            log.info("hotconfig: behind the store (anti-entropy poll); resyncing")
            self._flush()
            self._resync(client)
        elif stored > self._state.version:
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
            log.debug("hotconfig: error while closing the listener's sockets", exc_info=True)

    def _teardown(self) -> None:
        with self._lock:
            client, pubsub = self._client, self._pubsub
            self._client = self._pubsub = None
        for closer in (pubsub, client):
            if closer is not None:
                try:
                    closer.close()
                except Exception:  # the socket is already gone; nothing left to release
                    log.debug("hotconfig: error while closing a connection", exc_info=True)

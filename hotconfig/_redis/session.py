"""The one Pub/Sub session: connect, subscribe, prove alive, read and drain, back off, tear down.

The config listener (:mod:`hotconfig._config.listener`) and every connection of the bridge
(:mod:`hotconfig.bridge._links`) are a :class:`Session`: one connection in Pub/Sub mode and the
one thread that reads it. What they share is here, once; what differs is a handful of hooks.

* **Never a silent retry.** The connections come from :meth:`~.connection.Target.listener_clients`
  (no retries, no health checks of redis-py's own): every drop surfaces as an error, the session
  ends, and the next one starts from a known state (the listener resyncs, a link subscribes
  again to everything it follows).
* **Proven alive**: a PING with a token (:class:`~.liveness.Heartbeat`) proves the socket and
  the server; a probe message on a private channel, published through another connection, proves
  that published messages still come back (a failover can leave a socket that answers PING on a
  server that no longer gets them). Only silence past a deadline counts: a PONG may wait unread
  behind a burst.
* **Read in batches**: everything already waiting is read at once (at most ``_DRAIN_LIMIT``, so
  a flood cannot starve the liveness checks) and handed over before the next wait; a read blocks
  until the next timer is due (a quarter of a second at most).
* **Periodic work never hides a freeze**: :meth:`Session.due` (the listener's poll, a question
  to the sentinels) blocks on a socket of its own, so it runs only while no PING is on its way;
  with its socket timeout no longer than ``liveness_timeout`` a frozen server is noticed within
  ``ping_interval + liveness_timeout`` whatever the periodic work was doing.
* **Backoff**: capped, jittered, reset after a session that lasted; a server that refuses the
  client (credentials, ACL) is asked again at a slow, steady pace and told once as an ERROR with
  what to fix (:class:`~.liveness.Outage`).
* **One thread, one stop API**: :meth:`Session.start`, :meth:`Session.stop` (bounded; closing
  the sockets wakes a blocked read) and :meth:`Session.abandon` (in a forked child: the sockets
  are the parent's, touch nothing). The thread never dies unseen.

Commands may be written on the connection from another thread with :meth:`Session.send` (the
bridge subscribes a browser's channel the moment it is asked for, without waking the reader):
writes are serialized by the session's write lock and only the session's thread reads, as
redis-py's own ``PubSub`` is used when one thread reads and another subscribes.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import redis

from .connection import Target
from .liveness import Heartbeat, LivenessError, Outage, backoff, close_sockets, misconfiguration
from .replies import Replies
from .shards import SlotMoved

__all__ = ["Session", "SessionOptions", "await_subscribed"]

log = logging.getLogger("hotconfig.listener")  # the logger these lines always came from

_DRAIN_LIMIT = 10_000  # replies handed over in one batch at most
_MAX_WAIT = 0.25  # the longest a read blocks, so that the stop flag is never read late


@dataclass(frozen=True, slots=True)
class SessionOptions:
    """How a session talks to Redis; the defaults detect a dead connection within about 3 s."""

    socket_timeout: float = 2.0
    ping_interval: float = 1.0
    liveness_timeout: float = 2.0  # a PONG or a probe's echo later than this: the link is dead
    probe_interval: float | None = None  # None: no delivery probe
    backoff_base: float = 0.05
    backoff_max: float = 0.5
    backoff_reset_after: float = 10.0  # a session that lasted this long starts the backoff anew
    # A server that refuses us (a wrong password, a missing ACL permission) is asked again this
    # often: slow enough not to flood its log, fast enough that a fix takes effect by itself.
    misconfigured_retry: float = 3.0


class Session:
    """One Pub/Sub connection and its thread; see the module docstring.

    Subclasses implement :meth:`connect`, :meth:`open` and :meth:`received`, and may override
    the other hooks (:meth:`opened`, :meth:`due`, :meth:`drained`, :meth:`failed`,
    :meth:`closed`, :meth:`died`). Every hook runs on the session's thread.
    """

    def __init__(
        self,
        target: Target,
        options: SessionOptions,
        name: str,
        probe_channel: str,
        sharded_probe: bool = False,
    ) -> None:
        self.target, self.options = target, options
        self.probe_channel = probe_channel
        self._probe_bytes = probe_channel.encode()
        self._sharded_probe = sharded_probe  # the probe goes by SPUBLISH, in its shard's slot
        self._probe_refused = False  # the ACL user may not PUBLISH: PING alone, from then on
        self._stop = threading.Event()
        self._lock = threading.Lock()  # the sockets, against a stop from another thread
        self._writing = threading.Lock()  # one write at a time on the connection
        self._pubsub: Any = None
        self._clients: tuple[Any, ...] = ()
        self._connection: Any = None  # the subscription's connection, once open
        self.outage = Outage(target)
        self._pid = os.getpid()  # the process whose sockets these are
        self.period = float("inf")  # seconds between two calls of due(); inf: no periodic work
        self.thread = threading.Thread(target=self._run, name=name, daemon=True)

    # -- the thread's owner ---------------------------------------------------------------------

    def start(self) -> None:
        self.thread.start()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def stop(self, timeout: float) -> bool:
        """Stop the thread and close its sockets; True if it ended within ``timeout`` (0: do
        not wait)."""
        self._stop.set()
        if threading.current_thread() is self.thread:
            return True  # from a hook: the loop ends when the hook returns
        deadline = time.monotonic() + timeout
        # Closing the sockets wakes a thread blocked in a read; repeat in case it opened a new
        # connection between two checks of the stop flag.
        while self.thread.is_alive() and time.monotonic() < deadline:
            self._disconnect()
            self.thread.join(min(0.05, max(0.0, deadline - time.monotonic())))
        self._disconnect()
        return not self.thread.is_alive()

    def abandon(self) -> None:
        """Stop without reading or shutting down the sockets: in a forked child they are the
        parent's. The child's copy of the subscription's socket is closed (a copy kept would
        keep a dead parent's connection, so the parent, alive in the fleet's eyes); a session
        thread still running here (a fork from one of its hooks) closes it as it ends."""
        self._stop.set()
        if os.getpid() == self._pid or threading.current_thread() is self.thread:
            return
        with self._lock:
            pubsub = self._pubsub
        connection = pubsub.connection if pubsub is not None else None
        if connection is not None:
            # redis-py shuts a socket down only in the process that opened it: this closes
            # the child's file descriptor and nothing else.
            connection.disconnect()

    def send(self, *command: Any) -> bool:
        """Write ``command`` on the open subscription from any thread; False if none is open
        (the next session starts from :meth:`open`, which sees the change) or the write failed
        (the session's own read fails too, and the next one starts afresh)."""
        with self._lock:
            connection = self._connection
        if connection is None:
            return False
        try:
            with self._writing:
                connection.send_command(*command)
        except (redis.RedisError, OSError) as exc:
            log.debug("could not write %s on a subscription: %s", command[0], exc)
            return False
        return True

    # -- hooks ----------------------------------------------------------------------------------

    def connect(self) -> tuple[Any, Any]:
        """``(publisher, subscriber)`` clients for one session (the same client for both is
        fine): the probe is published through ``publisher``."""
        raise NotImplementedError

    def open(self, publisher: Any, pubsub: Any) -> None:
        """Subscribe on ``pubsub`` (and wait for what must be acknowledged first); the session
        is live when this returns. Called with the probe channel not yet subscribed: subscribe
        it with the rest (:meth:`subscribe_probe` names it)."""
        raise NotImplementedError

    def opened(self, publisher: Any) -> None:
        """The session is live, and :meth:`send` writes on its connection from now on."""

    def received(self, publisher: Any, reply: list[Any]) -> None:
        """A reply that is neither a PONG nor the probe's echo: a message, an acknowledgement."""
        raise NotImplementedError

    def due(self, publisher: Any, connection: Any) -> float:
        """Periodic work (a poll, a question to the sentinels), first ``period`` seconds after
        the session opened; returns the seconds until it is due again."""
        return self.period

    def drained(self) -> None:
        """A batch of replies was read and handed over."""

    def failed(self, error: BaseException, hint: str | None) -> None:
        """The session ended with ``error`` (its sockets are closed); ``hint``: what to fix, if
        the server refused the client rather than being down."""

    def closed(self) -> None:
        """The session's sockets are closed (after a fault, a stop or a retirement)."""

    def died(self) -> None:
        """The thread ended although nobody stopped it: cannot happen by design."""

    def subscribe_probe(self) -> list[str]:
        """The private probe channel, if a probe runs (subscribe it in :meth:`open`)."""
        return [self.probe_channel] if self._probing else []

    @property
    def _probing(self) -> bool:
        return self.options.probe_interval is not None and not self._probe_refused

    # -- the thread -----------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            self._retry_forever()
        finally:
            if not self._stop.is_set():  # never let it pass unseen
                log.critical("the thread %s ended unexpectedly", self.thread.name)
                self.died()

    def _retry_forever(self) -> None:
        options = self.options
        attempt = 0
        while not self._stop.is_set():
            started = time.monotonic()
            error: BaseException | None = None
            hint: str | None = None
            # BaseException: on this thread a KeyboardInterrupt or SystemExit can only come from
            # code it calls; letting one end the thread would freeze its owner unseen.
            try:
                self._session()
            except BaseException as exc:
                if self._stop.is_set():
                    break
                error, hint = exc, misconfiguration(exc)
                if isinstance(exc, SlotMoved):  # a reshard or a failover, not an outage
                    log.info("%s; subscribing on its new master", exc)
                else:
                    self.outage.failed(f"{type(exc).__name__}: {exc}", hint)
            finally:
                self._teardown()
            if self._stop.is_set():
                break
            if error is not None:
                self.failed(error, hint)
            if hint is not None:
                delay = options.misconfigured_retry
            else:
                if time.monotonic() - started > options.backoff_reset_after:
                    attempt = 0
                delay = backoff(attempt, options.backoff_base, options.backoff_max)
                attempt += 1
            self._stop.wait(delay)

    def _session(self) -> None:
        publisher, subscriber = self.connect()
        pubsub = subscriber.pubsub()
        with self._lock:
            self._pubsub = pubsub
            self._clients = (subscriber,) if publisher is subscriber else (publisher, subscriber)
        if self._stop.is_set():
            return
        self.open(publisher, pubsub)
        if self._stop.is_set():
            return  # stopped during the handshake: nothing more happens after it
        with self._lock:
            self._connection = pubsub.connection  # send() writes on it from now on
        self.opened(publisher)
        self.outage.recovered()
        self._follow(publisher, pubsub.connection)

    def _follow(self, publisher: Any, connection: Any) -> None:
        # Replies are read straight off the subscription's connection (public Connection API):
        # PubSub.get_message() wraps every read in retry and bookkeeping layers that cost more
        # than handling the message, and its silent reconnect is what a session avoids.
        options = self.options
        now = time.monotonic()
        heartbeat = Heartbeat(options.ping_interval, options.liveness_timeout, now)
        # Without a probe, one that never comes due.
        interval = options.probe_interval
        if interval is None or self._probe_refused:
            interval = float("inf")
        probe = Heartbeat(interval, options.liveness_timeout, now)
        next_due = now + self.period
        replies = Replies(connection)
        while not self._stop.is_set():
            now = time.monotonic()
            # A PONG or an echo may be waiting unread behind a burst: only silence counts.
            if heartbeat.overdue(now) and not connection.can_read(timeout=0):
                raise LivenessError(f"no PONG within {options.liveness_timeout}s")
            if probe.overdue(now) and not connection.can_read(timeout=0):
                # The socket answers PING, yet a message published on it never came back.
                raise LivenessError(
                    f"no echo of a probe message within {options.liveness_timeout}s"
                )
            token = heartbeat.send_due(now)
            if token is not None:
                with self._writing:
                    connection.send_command("PING", token)
            token = probe.send_due(now)
            if token is not None and not self._send_probe(publisher, token):
                probe = Heartbeat(float("inf"), options.liveness_timeout, now)
            # Periodic work blocks on its own socket: it waits for the PONG of a PING on its
            # way, so that a server frozen meanwhile is still noticed by the PING's deadline.
            if now >= next_due and not heartbeat.outstanding:
                next_due = now + self.due(publisher, connection)
            due = float("inf") if heartbeat.outstanding else next_due
            wait = min(heartbeat.deadline(), probe.deadline(), due) - now
            if connection.can_read(timeout=max(0.0, min(wait, _MAX_WAIT))):
                self._drain(publisher, replies, heartbeat, probe)

    def _drain(
        self, publisher: Any, replies: Replies, heartbeat: Heartbeat, probe: Heartbeat
    ) -> None:
        """Read everything already waiting, then say so once (:meth:`drained`)."""
        stop, probe_bytes = self._stop, self._probe_bytes
        if stop.is_set():
            return  # in a child forked by a hook, this socket is the parent's
        try:
            for reply in replies.waiting(_DRAIN_LIMIT):
                kind = reply[0]
                if kind == b"pong":
                    heartbeat.answered(reply[1])
                elif (
                    (kind == b"message" or kind == b"smessage")
                    and len(reply[1]) == len(probe_bytes)
                    and reply[1] == probe_bytes
                ):
                    probe.answered(reply[2])
                else:
                    self.received(publisher, reply)
                if stop.is_set():
                    break
        except redis.exceptions.MovedError as exc:  # an SSUBSCRIBE reached a former owner
            raise SlotMoved(f"slot {exc.slot_id} moved to {exc.host}:{exc.port}") from None
        self.drained()

    def _send_probe(self, publisher: Any, token: bytes) -> bool:
        """Publish the probe; False if the ACL forbids it: the probe is then off for good, with
        one warning, rather than the session."""
        try:
            if self._sharded_probe:
                publisher.execute_command("SPUBLISH", self.probe_channel, token)
            else:
                publisher.publish(self.probe_channel, token)
        except redis.exceptions.NoPermissionError as exc:
            self._probe_refused = True
            verb = "spublish" if self._sharded_probe else "publish"
            log.warning(
                "the delivery probe is off for %s: its ACL user may not %s on %s (%s); "
                "grant its user '+%s &%s*' to turn it on",
                self.thread.name,
                verb.upper(),
                self.probe_channel,
                exc,
                verb,
                self.probe_channel.rsplit(":", 1)[0] + ":",
            )
            return False
        except redis.exceptions.AskError as exc:  # MOVED included: redirections ran out
            raise SlotMoved(f"the probe's slot is moving to {exc.host}:{exc.port}") from None
        return True

    # -- teardown -------------------------------------------------------------------------------

    def _disconnect(self) -> None:
        with self._lock:
            pubsub, clients = self._pubsub, self._clients
        close_sockets(pubsub, clients, f"the sockets of {self.thread.name}")

    def _teardown(self) -> None:
        with self._lock:
            pubsub, clients = self._pubsub, self._clients
            self._pubsub, self._clients, self._connection = None, (), None
        for closer in (pubsub, *clients):
            if closer is not None:
                try:
                    closer.close()
                except Exception:  # the socket is already gone; nothing left to release
                    log.debug("error while closing a connection", exc_info=True)
        self.closed()


def await_subscribed(
    pubsub: Any, count: int, timeout: float, stopping: Callable[[], bool] = lambda: False
) -> None:
    """Return once Redis acknowledged ``count`` subscriptions (SUBSCRIBE or SSUBSCRIBE) on
    ``pubsub``; :class:`~.liveness.LivenessError` after ``timeout`` seconds. What is read
    meanwhile is dropped: a subscriber loads the state it follows only after this returns, and
    that state covers it. Returns early once ``stopping()`` is true."""
    deadline = time.monotonic() + timeout
    while count > 0 and not stopping():
        left = deadline - time.monotonic()
        if left <= 0:
            raise LivenessError(f"Redis did not acknowledge the subscription within {timeout:g}s")
        message = pubsub.get_message(timeout=min(left, 0.1))
        if message is not None and message["type"] in ("subscribe", "ssubscribe"):
            count -= 1

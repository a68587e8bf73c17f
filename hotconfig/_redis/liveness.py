"""How a connection is known to be alive, and how its failures are told.

Shared by the config listener (:mod:`hotconfig._config.listener`) and the bridge's connections
(:mod:`hotconfig.bridge._links`): the token PING (:class:`Heartbeat`), the Sentinel checks that
a connection is still on the master (:func:`check_master`, :func:`check_role`), which errors
mean "refused" rather than "down" (:func:`misconfiguration`), and the few log lines an outage
writes (:class:`Outage`).
"""

from __future__ import annotations

import logging
import random
import ssl
import time
from typing import Any

import redis

from .connection import Target, Topology
from .keyspace import as_text

__all__ = [
    "Heartbeat",
    "LivenessError",
    "Outage",
    "backoff",
    "check_master",
    "check_role",
    "client_id",
    "close_sockets",
    "misconfiguration",
]

log = logging.getLogger("hotconfig.listener")  # the logger these lines always came from


class LivenessError(ConnectionError):
    """No PONG came back in time: the server is frozen or the route drops packets."""


def misconfiguration(exc: BaseException) -> str | None:
    """What to fix, if ``exc`` says the server refused this client rather than being down."""
    if isinstance(exc, redis.AuthenticationError):
        return "authentication failed: check the user name and password in the URL"
    if isinstance(exc, redis.exceptions.NoPermissionError):
        return (
            "permission denied (NOPERM): the ACL user lacks a command, key or channel that "
            "hotconfig needs (SUBSCRIBE, PING, EVAL on the store's keys)"
        )
    if "CERTIFICATE_VERIFY_FAILED" in str(exc) or isinstance(
        exc.__cause__ or exc.__context__, ssl.SSLCertVerificationError
    ):
        return "the server's TLS certificate does not verify: check ssl_ca_certs (redis_kwargs)"
    if isinstance(exc, redis.exceptions.InvalidResponse):
        return "the server at this address does not speak the Redis protocol: check host and port"
    if isinstance(exc, redis.ResponseError) and not _passing(exc):
        return f"the server refused a command hotconfig needs: {exc}"
    return None


# Error replies that say the server cannot serve *now* and will again by itself: a script or
# function running too long (BUSY, until it ends or SCRIPT KILL), a dataset being loaded
# (LOADING), a replica that lost its master (MASTERDOWN), a cluster between two states
# (CLUSTERDOWN, TRYAGAIN). An outage, retried with backoff, not a misconfiguration.
_PASSING = (
    redis.exceptions.BusyLoadingError,  # LOADING
    redis.exceptions.ClusterDownError,  # CLUSTERDOWN, MASTERDOWN
    redis.exceptions.TryAgainError,  # TRYAGAIN
)


def _passing(exc: BaseException) -> bool:
    return isinstance(exc, _PASSING) or str(exc).startswith(("BUSY ", "LOADING "))


def check_master(target: Target, connection: Any) -> None:
    """Raise :class:`LivenessError` if the sentinels of ``target`` name another master than the
    one ``connection`` is on (nothing for other URLs, nor while the sentinels are unreachable):
    a subscriber left on a demoted or partitioned master hears nothing more, and says nothing."""
    try:
        master = target.master_address()
    except redis.RedisError as exc:  # the sentinels are unreachable: keep what works
        log.debug("could not ask the sentinels where the master is: %s", exc)
        return
    here = (getattr(connection, "host", None), getattr(connection, "port", None))
    if master is not None and here != master:
        raise LivenessError(f"the master moved to {master[0]}:{master[1]} (Sentinel)")


class Outage:
    """How a run of failed connections is told: once loudly, then quietly, then its end.

    The first failure is a WARNING (an ERROR with what to fix for a misconfiguration), repeats
    are DEBUG with a WARNING every ``remind`` seconds, and the recovery is INFO with how long
    it lasted: a server down for a minute writes three lines, not three hundred.
    """

    __slots__ = ("_attempts", "_remind", "_reminded", "_since", "_target")

    def __init__(self, target: Target, remind: float = 30.0) -> None:
        self._target, self._remind = target, remind
        self._since: float | None = None
        self._attempts = 0
        self._reminded = 0.0

    def failed(self, error: str, hint: str | None) -> None:
        now = time.monotonic()
        self._attempts += 1
        if self._since is None:
            self._since = self._reminded = now
            if hint is not None:
                log.error(
                    "Redis at %s refused this client: %s (%s)", self._target.redacted, hint, error
                )
            else:
                log.warning("connection to Redis at %s failed: %s", self._target.redacted, error)
        elif now - self._reminded >= self._remind:
            self._reminded = now
            log.warning(
                "still failing to reach Redis at %s after %d attempts over %.0fs: %s",
                self._target.redacted,
                self._attempts,
                now - self._since,
                error,
            )
        else:
            log.debug("connection attempt %d failed: %s", self._attempts, error)

    def recovered(self) -> None:
        if self._since is not None:
            log.info(
                "connected to Redis at %s again after %.1fs (%d failed attempts)",
                self._target.redacted,
                time.monotonic() - self._since,
                self._attempts,
            )
        self._since, self._attempts = None, 0


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

    @property
    def outstanding(self) -> bool:
        """A PING is on its way and its PONG has not come back yet."""
        return self._due is not None

    def deadline(self) -> float:
        """The next moment the heartbeat needs attention."""
        return self._next if self._due is None else min(self._next, self._due)


def check_role(target: Target, client: Any) -> None:
    """On a Sentinel URL, raise :class:`LivenessError` if ``client``'s node is a replica now.

    A demoted master serves its old data, with no error, until it has synced from the new one
    (seconds, when it took writes after the promotion and needs a full sync): a resync read
    there would take a client back in time, and its polls would agree with it.
    """
    if target.topology is not Topology.SENTINEL:
        return
    role = client.execute_command("ROLE")[0]
    if role != b"master":
        raise LivenessError(f"the node serving the store is a {as_text(role)} now (Sentinel)")


def client_id(pubsub: Any) -> int | None:
    """The server's id (``CLIENT ID``) of ``pubsub``'s connection, which the server forgets the
    moment the process holding it dies: how the fleet tells a dead instance from a quiet one.

    Asked before the connection subscribes (in RESP2 a subscribed connection takes no other
    command). None if the ACL user may not ask: then only a registration's expiry tells."""
    pubsub.execute_command("CLIENT", "ID")
    try:
        reply = pubsub.connection.read_response()
    except redis.exceptions.NoPermissionError:
        return None
    return reply if type(reply) is int else None


def backoff(attempt: int, base: float, cap: float) -> float:
    """Seconds before reconnect ``attempt`` (0 first): exponential from ``base``, capped at
    ``cap``, with jitter that spreads a fleet's reconnects so a recovering server is not hit
    all at once."""
    return min(cap, base * 2.0**attempt) * random.uniform(0.5, 1.0)


def close_sockets(pubsub: Any, clients: Any, what: str) -> None:
    """Close the sockets of a subscription and its clients from another thread, which wakes
    the thread blocked reading them. Their owner may be tearing them down at the same moment:
    each is read once, and nothing here raises (``what`` names them in the debug log)."""
    try:
        connection = pubsub.connection if pubsub is not None else None
        if connection is not None:
            connection.disconnect()
        for client in clients:
            pool = getattr(client, "connection_pool", None)
            if pool is not None:
                pool.disconnect()
            else:  # a cluster client: one pool per node
                client.disconnect_connection_pools()
    except Exception:
        log.debug("error while closing %s", what, exc_info=True)

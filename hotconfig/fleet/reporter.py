"""This instance's health reports on ``health:status:{namespace}`` and its registration.

A :class:`Reporter` follows one client from outside, through the client's public API and the
module-level signals, and runs with it once attached (``config.attach(reporter)``; a client
made with ``health=True`` attaches one by itself when it starts). On each applied version, on
each status change, on each rejection and every ``interval`` seconds it runs one script on a
connection of its own that refreshes the instance's registration and publishes its report (see
:mod:`hotconfig.fleet.registry` for the keys and the format). It never raises into the
client: a Redis error is counted in :attr:`Reporter.errors`, logged at DEBUG, and the report is
tried again at the next tick.

Each report names the server's id of the client's listener connection (``stats.connection_id``,
reported again whenever it changes): the server forgets it when the process dies, however it
died, and the fleet's observers then drop the instance at once. With signing keys (the
client's, or ``signing_keys=``) every report is signed.

After ``os.fork()`` the child's reporter drops the parent's connection unread and, if it was
running, starts again under a new instance id: the child is another instance.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import socket
import threading
import time
from collections import deque
from collections.abc import Mapping
from typing import Any, Final, Protocol

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from .. import signals
from .._config.snapshot import Snapshot
from .._config.stats import Stats
from .._redis import forking
from .._redis.connection import Target
from .._redis.keyspace import Keyspace
from ..security.signing import KeyRing
from ..signals import Status
from .registry import (
    COUNTS,
    REPORT_SCRIPT,
    Registry,
    Rejection,
    ReportEvent,
    channel_for,
    describe,
    sign_report,
)


class Reported(Protocol):
    """What a reporter reads of the client it reports: part of :class:`hotconfig.HotConfig`'s
    public API (so the fleet depends on no part of the client's code)."""

    url: str
    service: str | None
    scopes: tuple[str, ...]
    keyspace: Keyspace

    @property
    def version(self) -> int: ...

    @property
    def status(self) -> Status: ...

    @property
    def stats(self) -> Stats: ...

    @property
    def signing_keys(self) -> KeyRing | None: ...

    def snapshot(self) -> Snapshot: ...

    def redis_client(self, **options: Any) -> Any: ...

    def wait_for_version(self, version: int, timeout: float | None = None) -> bool: ...


__all__ = ["Reported", "Reporter", "new_instance_id"]

log = logging.getLogger("hotconfig.health")

_KEEP_REJECTIONS: Final = 10
# The longest the reporter thread sleeps between two looks at its flags: a new version wakes it
# at once (wait_for_version); a status move, a rejection or close() within this.
_SLICE: Final = 0.05
# In a burst of versions, one report per this many seconds carries the latest: the first
# version after a quiet spell is reported at once (the barrier's latency), the rest of the
# burst does not take the listener's CPU time report by report.
_BURST_SPACING: Final = 0.005
_SOCKET_TIMEOUT: Final = 1.0


def new_instance_id() -> str:
    """``host:pid:random``: stable for a process, new in a forked child."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


class Reporter:
    """Publishes one client's health and keeps it registered while the client runs.

    ``url`` is where to report; by default the server the client follows, with its password
    and connection options (``config.redis_client``). ``ttl`` is how long a registration
    outlives the last report (default three intervals): an instance that stops reporting
    while its process lives on (frozen, cut off) leaves the registry that long after its last
    report; one whose process died leaves at once for observers that can look up its
    connection (see :mod:`hotconfig.fleet.registry`). ``framework`` says which integration
    runs the client. ``signing_keys`` sign the reports (default: the client's own ring, if it
    can sign). Either attach it (``config.attach(reporter)``: it starts and stops with the
    client) or call :meth:`start` and :meth:`close` yourself.
    """

    def __init__(
        self,
        config: Reported,
        *,
        namespace: str | None = None,
        interval: float = 5.0,
        ttl: float | None = None,
        framework: str | None = None,
        url: str | None = None,
        signing_keys: KeyRing | str | Mapping[str, bytes] | None = None,
    ) -> None:
        if not interval > 0 or (ttl is not None and not ttl > 0):
            raise ValueError("interval and ttl must be positive numbers of seconds")
        self._config = config
        # Where to report: a server of the caller's choosing, or the client's own.
        target = None if url is None else Target(url)
        self._connect = config.redis_client if target is None else target.command_client
        self._where = config.url if target is None else target.redacted
        self.namespace = namespace or config.keyspace.namespace
        # The listener's connection id means something only on the server holding this registry.
        same_server = target is None or target.redacted == config.url
        self._named = same_server and self.namespace == config.keyspace.namespace
        self._ring = _signer(config.signing_keys if signing_keys is None else signing_keys)
        self.registry = Registry(self.namespace)
        self.channel = channel_for(self.namespace)
        self.interval = interval
        self.ttl = ttl if ttl is not None else 3 * interval
        self.framework = framework
        self.errors = 0
        """Reports that failed (a Redis error); each is retried at the next tick."""
        self.reports = 0
        """Reports published."""
        self._rejections: deque[Rejection] = deque(maxlen=_KEEP_REJECTIONS)
        self._running = False
        self._reset()
        signals.status_changed.connect(self._on_status, sender=config)
        signals.config_rejected.connect(self._on_rejected, sender=config)
        forking.track(self, forking.Stage.REPORTERS)

    def _reset(self) -> None:
        # Everything a forked child must not share with its parent.
        self.instance = new_instance_id()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._wake: ReportEvent | None = ReportEvent.START
        self._thread: threading.Thread | None = None
        self._redis: redis.Redis | None = None
        self._script: Any = None

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> None:
        """Start reporting on a daemon thread; idempotent."""
        with self._lock:
            if self._running:
                return
            self._running = True
            self._stop.clear()
            self._thread = threading.Thread(
                target=self._run, name=f"hotconfig-health-{self._config.service or os.getpid()}"
            )
            self._thread.daemon = True
            self._thread.start()

    def close(self, timeout: float = 1.5) -> None:
        """Leave the registry (a last report, event ``leave``) and stop; bounded, idempotent."""
        with self._lock:
            running, self._running = self._running, False
            thread = self._thread
        self._stop.set()
        if running and thread is not None:
            thread.join(timeout)
            if thread.is_alive():
                log.debug("the health reporter thread did not stop within %ss", timeout)
        signals.status_changed.disconnect(self._on_status, sender=self._config)
        signals.config_rejected.disconnect(self._on_rejected, sender=self._config)
        forking.untrack(self)

    @property
    def running(self) -> bool:
        return self._running

    # -- receivers: on the client's listener thread (or close()'s caller); never block ---------

    def _on_status(self, sender: object, **kwargs: Any) -> None:
        self._wake = ReportEvent.STATUS

    def _on_rejected(self, sender: object, **kwargs: Any) -> None:
        version = kwargs.get("version")
        if not isinstance(version, int):
            version = self._config.version  # the rejected write's version is already swapped in
        key = kwargs.get("key")
        reason = describe(str(kwargs.get("reason", "rejected")), kwargs.get("error"))
        self._rejections.append(Rejection(key if isinstance(key, str) else None, version, reason))
        self._wake = ReportEvent.REJECTED

    # -- the thread ---------------------------------------------------------------------------

    def _run(self) -> None:
        config, stop = self._config, self._stop
        seen = -1  # the version last reported (or tried)
        connected: int | None = None  # the connection id last reported (or tried)
        next_tick = 0.0
        spaced_until = 0.0  # a version found before then waits for it: see _BURST_SPACING
        while not stop.is_set():
            now = time.monotonic()
            event = self._wake
            if config.status is Status.CLOSED:
                break  # the client is gone; leave the registry
            if event is None and config.version != seen:
                if now < spaced_until:
                    stop.wait(spaced_until - now)
                    continue
                event = ReportEvent.VERSION
                spaced_until = now + _BURST_SPACING
            if event is None and self._connection() != connected:
                event = ReportEvent.STATUS  # a new connection: register it at once
            if event is None and now >= next_tick:
                event = ReportEvent.TICK
            if event is not None:
                self._wake = None
                seen, connected = config.version, self._connection()
                # A failed report is tried again soon, whatever the interval.
                next_tick = now + (self.interval if self._report(event) else min(self.interval, 1))
            # Returns as soon as a newer version's receivers have run, else after the slice.
            config.wait_for_version(seen + 1, timeout=min(_SLICE, max(0.0, next_tick - now)))
        self._report(ReportEvent.LEAVE)
        client, self._redis = self._redis, None
        if client is not None:
            client.close()

    def _report(self, event: str) -> bool:
        try:
            if self._redis is None:
                # No retries inside redis-py: the next tick is the retry, and close() is bounded.
                self._redis = self._connect(
                    socket_timeout=_SOCKET_TIMEOUT,
                    socket_connect_timeout=_SOCKET_TIMEOUT,
                    retry=Retry(NoBackoff(), 0),
                )
                self._script = self._redis.register_script(REPORT_SCRIPT)
            head, version = self._head(event)
            keys = [
                self.registry.instances,
                self.registry.instance(self.instance),
                self._config.keyspace.version,
                self._config.keyspace.history,
            ]
            ttl_ms = int(self.ttl * 1000)
            leave = "1" if event is ReportEvent.LEAVE else "0"
            args = [self.channel, self.instance, ttl_ms, version, head, leave]
            self._script(keys=keys, args=args)
        except Exception as exc:  # a report must never break the client: count, retry later
            self.errors += 1
            log.debug("health report failed (%s), retrying at the next tick: %s", event, exc)
            return False
        self.reports += 1
        return True

    def _connection(self) -> int | None:
        return self._config.stats.connection_id if self._named else None

    def _head(self, event: str) -> tuple[str, int]:
        config = self._config
        snapshot, stats = config.snapshot(), config.stats
        report: dict[str, Any] = {
            "type": "report",
            "event": event,
            "service": config.service,
            "instance": self.instance,
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "framework": self.framework,
            "version": snapshot.version,
            "epoch": snapshot.epoch,
            "digest": snapshot.digest,
            "status": str(config.status),
            "scopes": list(config.scopes),
            "counts": {name: getattr(stats, name) for name in COUNTS},
            "rejections": [
                {"key": r.key, "version": r.version, "reason": r.reason}
                for r in list(self._rejections)
            ],
            "interval": self.interval,
            "connection": stats.connection_id if self._named else None,
        }
        if self._ring is not None:
            report["sig"] = sign_report(report, self._ring, self.channel)
        text = json.dumps(report, separators=(",", ":"), ensure_ascii=False)
        return text[:-1], snapshot.version  # the script closes the object

    # -- fork and exit (hotconfig._redis.forking) ----------------------------------------------

    def _fork_lock(self) -> None:
        return None

    def _after_fork_in_child(self) -> None:
        # The parent's thread does not exist here and its socket is the parent's: drop both
        # unread (redis-py only shuts a socket down in the process that opened it).
        running = self._running
        self._running = False
        self._reset()
        if running:
            self.start()

    def __repr__(self) -> str:
        return f"<Reporter {self.instance} {self._where} running={self._running}>"


def _signer(keys: KeyRing | str | Mapping[str, bytes] | None) -> KeyRing | None:
    ring = KeyRing.resolve(keys) if keys is not None else None
    if ring is not None and not ring.can_sign:
        log.warning(
            "this instance's health reports go unsigned: its key ring %r can only verify (an "
            "Ed25519 public key), and a fleet that checks signatures ignores them; give the "
            "reporter a ring that can sign, Reporter(config, signing_keys=...)",
            ring,
        )
        return None
    return ring

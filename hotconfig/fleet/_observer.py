"""Fleet: the consumer side of health reporting — who runs, what they applied, did it land.

::

    fleet = hotconfig.Fleet("redis://localhost:6379/0")
    fleet.instances()  # live instances' latest reports, expired ones excluded
    version = store.set("ai.model.default", "gpt-4o")
    result = fleet.wait(version, timeout=5.0, service="billing")
    if not result.ok:
        print(result.rejected, result.behind, result.gone)

:meth:`Fleet.wait` is a convergence barrier: it subscribes to the health channel *first*, then
reads the registry (each instance's latest report is stored in the same script that publishes
it, so nothing falls between the two), and then decides on every report as it arrives.

An instance whose process died is dropped within a second, whatever killed it: every read of
the registry, and every half second of a wait or a watch, asks the server whether the
instances' connections are still there (:mod:`hotconfig.fleet._presence`); where it cannot
tell, the registration's expiry still does. With signing keys, a report that is not signed
by one of them is ignored and counted (:attr:`Fleet.ignored`).
"""

from __future__ import annotations

import enum
import threading
import time
from collections.abc import Iterator, Mapping
from types import TracebackType
from typing import Any, NamedTuple

import redis

from .._config.wire import DEFAULT_CHANNEL, Entry, Limits, parse
from .._redis.connection import Target, resolve
from .._redis.keyspace import DEFAULT_NAMESPACE, Keyspace, as_text
from .._redis.session import await_subscribed
from ..security.signing import KeyRing
from ..signals import Status
from ._roster import Registrations, Roster
from .registry import Report, ReportEvent

__all__ = ["ChangeNotice", "Convergence", "Fleet", "Gone", "Outcome", "Watch"]

_POLL = 0.2  # how often a blocked watch looks at close()
_LOOK = 0.5  # how often a wait or a watch asks whether the instances' connections are there
_SUBSCRIBE_TIMEOUT = 5.0


class Convergence(NamedTuple):
    """What :meth:`Fleet.wait` found: ``ok`` when at least one instance was waited for and
    every one applied the version (nobody registered confirms nothing: :attr:`empty`).
    ``rejected`` pairs an instance with its reason; ``behind`` had not applied it by the
    timeout; ``gone`` left (or its registration expired) without applying it. ``reports``
    holds the latest report of every instance named here."""

    ok: bool
    version: int
    applied: tuple[str, ...]
    rejected: tuple[tuple[str, str], ...]
    behind: tuple[str, ...]
    gone: tuple[str, ...]
    elapsed: float
    reports: dict[str, Report]

    @property
    def empty(self) -> bool:
        """No instance (of the service asked for) was registered: nothing was confirmed."""
        return not self.reports


class Outcome(enum.StrEnum):
    """Where :meth:`Fleet.wait` left an instance."""

    APPLIED = "applied"  # it applied the version (or a later one)
    REJECTED = "rejected"  # it refused the version (the reason is in Convergence.rejected)
    GONE = "gone"  # it left, or its registration expired, without applying it
    BEHIND = "behind"  # it had not applied it when the wait timed out


class Gone(NamedTuple):
    """An instance that left without a word: its process died (its connection is gone), or
    its registration expired with no report (frozen, cut off)."""

    instance: str
    last: Report


class ChangeNotice(NamedTuple):
    """A message seen on the changes channel (``Fleet.watch(changes=True)``). ``reload``: a
    change too large for one message, announced without its entries (clients load it)."""

    version: int | None
    entries: tuple[Entry, ...]
    reload: bool = False


class Fleet:
    """The instances reporting under one store namespace, read from Redis.

    Thread-safe for :meth:`instances`; each :meth:`wait` and :meth:`watch` uses a subscription
    of its own. ``redis_kwargs`` are connection options the URL cannot carry (TLS files, say),
    and ``sharded`` (None: the URL's ``?sharded=``) says the store SPUBLISHes its changes, as
    the fleet's clients and store are told. ``signing_keys`` (default:
    ``$HOTCONFIG_SIGNING_KEYS``): only reports signed by one of them count; the others are
    ignored and counted in :attr:`ignored`.
    """

    def __init__(
        self,
        url: str | None = None,
        namespace: str = DEFAULT_NAMESPACE,
        *,
        channel: str = DEFAULT_CHANNEL,
        redis_kwargs: Mapping[str, Any] | None = None,
        sharded: bool | None = None,
        signing_keys: KeyRing | str | Mapping[str, bytes] | None = None,
    ) -> None:
        self._target = Target(resolve(url), redis_kwargs, sharded=sharded)
        self.url = self._target.redacted
        self.sharded = self._target.sharded  # the store SPUBLISHes its changes (a cluster)
        self.namespace = namespace
        self.channel = channel
        self._keyspace = Keyspace(namespace)
        self._redis = self._target.command_client()
        ring = KeyRing.resolve(signing_keys)
        self._registrations = Registrations(self._redis, namespace, ring)
        self.registry = self._registrations.registry
        self.health_channel = self._registrations.channel

    @property
    def ignored(self) -> dict[str, int]:
        """Reports ignored so far, by reason: ``unsigned`` and ``bad_signature`` (signing is
        on), ``malformed`` (not a report), or a decoding reason (``too_deep``, ...)."""
        return self._registrations.ignored

    def instances(self, service: str | None = None) -> list[Report]:
        """The latest report of every live instance (of ``service``), by service and instance.

        An instance whose process died is not listed, from the moment the server dropped its
        connection (or, where that cannot be seen, from its registration's expiry)."""
        return sorted(
            self._registrations.read(service).reports.values(),
            key=lambda r: (r.service or "", r.instance),
        )

    def _subscribe(
        self, *channels: str, shard: str | None = None, owner: redis.Redis | None = None
    ) -> redis.client.PubSub:
        """A subscription to ``channels``; with ``shard``, an SSUBSCRIBE to that shard channel
        too, through ``owner``: a client of the master serving its slot, the only node that
        carries it (a classic SUBSCRIBE, broadcast to every node, may share it). The caller
        keeps ``owner`` until the subscription ends: a client collected closes its pool, and
        with it the subscription's connection."""
        if owner is None:
            pubsub: redis.client.PubSub = self._redis.pubsub()
        else:
            pubsub = owner.pubsub()
        if shard is not None:
            pubsub.ssubscribe(shard)
        pubsub.subscribe(*channels)
        try:
            await_subscribed(pubsub, len(channels) + (shard is not None), _SUBSCRIBE_TIMEOUT)
        except BaseException:
            pubsub.close()
            raise
        return pubsub

    def wait(
        self, version: int, timeout: float = 5.0, *, service: str | None = None
    ) -> Convergence:
        """Wait until every live instance (of ``service``) has applied ``version``.

        Returns as soon as each instance has applied it, rejected it or gone, or after
        ``timeout`` seconds with the rest named ``behind``. Instances that register while it
        waits count too; one whose process died before the wait is not waited for, one that
        dies during it is ``gone`` within a second. With no live instance at all it returns at
        once, not ``ok`` and :attr:`~Convergence.empty`: a fleet being restarted has confirmed
        nothing.
        """
        started = time.monotonic()
        deadline = started + timeout
        registrations = self._registrations
        pubsub = self._subscribe(self.health_channel)
        try:
            roster = registrations.read(service)
            settled: dict[str, Outcome] = {}
            for instance in list(roster.reports):
                _settle(roster, instance, version, settled)
            look = started + _LOOK
            while len(settled) < len(roster.reports):
                now = time.monotonic()
                pending = [i for i in roster.reports if i not in settled]
                if now >= look:
                    look = now + _LOOK
                    settled |= dict.fromkeys(registrations.departed(roster, pending), Outcome.GONE)
                for instance in pending:
                    if instance not in settled and now > roster.expiry(instance):
                        settled[instance] = Outcome.GONE
                pending = [i for i in roster.reports if i not in settled]
                if not pending or now >= deadline:
                    break
                wake = min([deadline, look, *(roster.expiry(i) for i in pending)])
                report = registrations.received(pubsub.get_message(timeout=max(0.0, wake - now)))
                if report is not None and roster.add(report):
                    settled.pop(report.instance, None)
                    _settle(roster, report.instance, version, settled)
        finally:
            pubsub.close()
        return _result(roster, version, settled, time.monotonic() - started)

    def watch(self, timeout: float | None = None, *, changes: bool = False) -> Watch:
        """A live feed of reports (and :class:`Gone` instances; with ``changes``, also every
        :class:`ChangeNotice` on the changes channel), for ``timeout`` seconds or until closed."""
        channels = [self.health_channel, *([self.channel] if changes else [])]
        # A sharded store SPUBLISHes its changes in its own slot; a raw publisher may still
        # PUBLISH on the classic channel: the feed follows both.
        shard = self._keyspace.shard_channel(self.channel) if changes and self.sharded else None
        owner = None
        if shard is not None:
            owner = self._target.shard_subscriber(shard, socket_timeout=_SUBSCRIBE_TIMEOUT)
        pubsub = self._subscribe(*channels, shard=shard, owner=owner)
        changes_channels = {self.channel, shard or self.channel}
        roster = self._registrations.read(None)
        return Watch(pubsub, roster, self._registrations, changes_channels, timeout, owner=owner)

    def close(self) -> None:
        self._redis.close()

    def __enter__(self) -> Fleet:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Fleet {self.url} namespace={self.namespace!r}>"


class Watch(Iterator["Report | Gone | ChangeNotice"]):
    """An iterator over what happens in the fleet; ends at its timeout or at :meth:`close`
    (which may be called from another thread: the iterator notices within 0.2 s)."""

    def __init__(
        self,
        pubsub: redis.client.PubSub,
        roster: Roster,
        registrations: Registrations,
        changes_channels: set[str],
        timeout: float | None,
        *,
        owner: redis.Redis | None = None,
    ) -> None:
        self._pubsub = pubsub
        self._owner = owner  # the client the subscription's connection belongs to, if its own
        self._roster = roster
        self._registrations = registrations
        self._look = time.monotonic() + _LOOK
        self._changes = changes_channels
        self._deadline = None if timeout is None else time.monotonic() + timeout
        self._lock = threading.Lock()
        self._closed = False
        self._reading = False  # a thread is in get_message: only it may close the connection
        self._released = False

    def __next__(self) -> Report | Gone | ChangeNotice:
        with self._lock:
            if self._closed:
                self._release()
                raise StopIteration
            self._reading = True
        try:
            event = self._next()
        finally:
            with self._lock:
                self._reading = False
                if self._closed:
                    self._release()  # close() from another thread left it to this one
        if event is None:
            raise StopIteration
        return event

    def _next(self) -> Report | Gone | ChangeNotice | None:
        roster = self._roster
        departed: set[str] = set()
        while not self._closed:
            now = time.monotonic()
            if now >= self._look:
                self._look = now + _LOOK
                departed = self._registrations.departed(roster, list(roster.reports))
            for instance in list(roster.reports):
                if instance in departed or now > roster.expiry(instance):
                    return Gone(instance, roster.reports.pop(instance))
            if self._deadline is not None and now >= self._deadline:
                break
            wait = min([_POLL, self._look - now, *(roster.expiry(i) - now for i in roster.reports)])
            if self._deadline is not None:
                wait = min(wait, self._deadline - now)
            message = self._pubsub.get_message(timeout=max(0.0, wait))
            if message is None or message.get("type") not in ("message", "smessage"):
                continue
            if as_text(message["channel"]) in self._changes:
                notice = _notice(message["data"])
                if notice is not None:
                    return notice
                continue
            report = self._registrations.received(message)
            if report is not None:
                if report.event == "leave":
                    roster.reports.pop(report.instance, None)
                else:
                    roster.add(report)
                return report
        self._closed = True
        return None

    def close(self) -> None:
        """End the feed; from another thread, the reading thread lets go within 0.2 s."""
        with self._lock:
            self._closed = True
            if not self._reading:
                self._release()

    def _release(self) -> None:
        if not self._released:
            self._released = True
            self._pubsub.close()
            if self._owner is not None:
                self._owner.close()

    def __enter__(self) -> Watch:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _settle(roster: Roster, instance: str, version: int, settled: dict[str, Outcome]) -> None:
    report = roster.reports[instance]
    if report.rejection_of(version) is not None:
        settled[instance] = Outcome.REJECTED
    elif report.version >= version:
        settled[instance] = Outcome.APPLIED
    elif report.event == ReportEvent.LEAVE or report.status == Status.CLOSED:
        settled[instance] = Outcome.GONE


def _result(
    roster: Roster, version: int, settled: dict[str, Outcome], elapsed: float
) -> Convergence:
    def named(outcome: Outcome) -> tuple[str, ...]:
        return tuple(sorted(i for i, o in settled.items() if o == outcome))

    rejected = []
    for instance in named(Outcome.REJECTED):
        rejection = roster.reports[instance].rejection_of(version)
        if rejection is None:
            rejected.append((instance, Outcome.REJECTED.value))
        else:
            where = f"{rejection.key}: " if rejection.key else ""
            rejected.append((instance, where + rejection.reason))
    behind = tuple(sorted(i for i in roster.reports if i not in settled))
    applied, gone = named(Outcome.APPLIED), named(Outcome.GONE)
    ok = bool(roster.reports) and not (rejected or behind or gone)
    return Convergence(
        ok, version, applied, tuple(rejected), behind, gone, elapsed, dict(roster.reports)
    )


def _notice(data: bytes) -> ChangeNotice | None:
    try:
        parsed = parse(data, Limits())
    except ValueError:
        return None
    return ChangeNotice(parsed.version, parsed.entries, parsed.reload)

"""What every fault test ends with: the invariant hotconfig promises (DESIGN §4).

*Every subscriber converges to the store's state within a bounded time after any fault; no
applied version is ever lost or regressed.* A :class:`Fleet` holds a test's store and clients;
each client it makes carries a :class:`VersionLog` fed by an ``on_change("*")`` receiver, and
:meth:`Fleet.assert_converged` checks both halves of the promise::

    def test_something(fleet: Fleet, server: EmbeddedServer) -> None:
        config = fleet.client()
        ...  # inject a fault, write through fleet.store
        fleet.assert_converged()

The fixtures that make these (``fleet``, ``fleet_factory``, ``proxy``) live in conftest.py.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import redis
from pydantic import BaseModel

from hotconfig import Change, ConfigStore, HotConfig, Status, signals
from tests.waiting import eventually

__all__ = [
    "CONVERGE_TIMEOUT",
    "NO_POLL",
    "Fleet",
    "Gate",
    "StatusLog",
    "VersionLog",
    "effective",
    "kill_pubsub",
    "pubsub_clients",
]

# Long enough for a reconnect with the default backoff and socket timeout on a loaded CI box;
# a client that has not converged by then never will.
CONVERGE_TIMEOUT = 15.0
# A poll_interval that never comes during a test: where the anti-entropy poll would repair a
# client anyway, it would hide whether the mechanism under test did.
NO_POLL = 300.0


class VersionLog:
    """The ``(epoch, version)`` of every change one client applied, in the order it applied them.

    Fed on the client's listener thread (receivers run after the new snapshot is live, and the
    listener is the only writer, so ``snapshot()`` there is the one the change belongs to).
    """

    def __init__(self, config: HotConfig[Any]) -> None:
        self._config = config
        self._lock = threading.Lock()
        self.entries: list[tuple[str | None, int]] = []
        self.changes: list[Change] = []
        config.on_change("*")(self._record)

    def _record(self, change: Change) -> None:
        snapshot = self._config.snapshot()
        with self._lock:
            self.entries.append((snapshot.epoch, change.version))
            self.changes.append(change)

    def problems(self) -> list[str]:
        """Regressions within an epoch, and epochs that came back after another one began."""
        with self._lock:
            entries = list(self.entries)
        found: list[str] = []
        finished: set[str] = set()
        for (epoch, version), (prev_epoch, prev_version) in zip(entries[1:], entries, strict=False):
            if epoch == prev_epoch and version < prev_version:
                found.append(f"version went back from {prev_version} to {version} in {epoch}")
            if epoch != prev_epoch:
                if prev_epoch is not None:
                    finished.add(prev_epoch)
                if epoch in finished:
                    found.append(f"epoch {epoch} came back after it had ended")
        return found


class StatusLog:
    """Every status move of one client, from the ``status_changed`` signal."""

    def __init__(self, config: HotConfig[Any]) -> None:
        self.moves: list[tuple[Status, Status, float]] = []
        self._cond = threading.Condition()
        signals.status_changed.connect(self._record, sender=config, weak=False)
        self._config = config

    def _record(self, sender: Any, old: Status, new: Status) -> None:
        with self._cond:
            self.moves.append((old, new, time.monotonic()))
            self._cond.notify_all()

    def wait_for(self, status: Status, after: float, timeout: float) -> float:
        """When the client first moved to ``status`` at or after ``after`` (monotonic time)."""
        found: list[float] = []

        def moved() -> bool:
            found[:] = [t for _, new, t in self.moves if new is status and t >= after]
            return bool(found)

        with self._cond:
            assert self._cond.wait_for(moved, timeout), (
                f"no move to {status} within {timeout}s; moves: {self.moves}"
            )
        return found[0]

    def disconnect(self) -> None:
        signals.status_changed.disconnect(self._record, sender=self._config)


class Gate:
    """Holds a client's listener thread inside a change receiver while the test arranges what
    waits on its socket; released, the listener reads all of that in one batch.

    Hold it for less than the client's liveness deadline (or give the client a long
    ``ping_interval``), or the listener will count the hold as a dead connection.
    """

    KEY = "gate.hold"

    def __init__(self, config: HotConfig[Any]) -> None:
        self._inside = threading.Event()
        self._open = threading.Event()
        self._open.set()
        self._count = itertools.count(1)
        config.on_change(self.KEY)(self._hold)

    def _hold(self, change: Change) -> None:
        if not self._open.is_set():
            self._inside.set()
            self._open.wait(timeout=CONVERGE_TIMEOUT)

    @contextmanager
    def closed(self, write: Callable[[str, int], object]) -> Iterator[int]:
        """Change the gate key with ``write(key, value)``, wait until the listener is held
        there, and release it on exit; yields the value written."""
        self._open.clear()
        self._inside.clear()
        value = next(self._count)
        try:
            write(self.KEY, value)
            assert self._inside.wait(CONVERGE_TIMEOUT), "the listener never reached the gate"
            yield value
        finally:
            self._open.set()


def effective(store: ConfigStore, scopes: Sequence[str]) -> tuple[str | None, int, dict[str, Any]]:
    """The store's ``(epoch, version, effective values)`` for ``scopes`` (low → high)."""
    stored = store.snapshot(scopes)
    epoch, version, layers = stored.epoch, stored.version, stored.layers
    merged: dict[str, Any] = {}
    for scope in scopes:
        merged.update(layers[scope])
    return epoch, version, merged


class Fleet:
    """One test's store and clients; closes them all at the end of the test."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.store = ConfigStore(url)
        self.clients: list[HotConfig[Any]] = []
        self.logs: dict[int, VersionLog] = {}
        self._defaults: dict[int, dict[str, Any]] = {}
        self._status_logs: list[StatusLog] = []

    def client(
        self,
        url: str | None = None,
        *,
        start: bool = True,
        timeout: float = 10.0,
        model: type[BaseModel] | None = None,
        **kwargs: Any,
    ) -> HotConfig[Any]:
        """A client of the store, with a version log; started and LIVE unless ``start=False``."""
        config: HotConfig[Any] = HotConfig(url or self.url, model=model, **kwargs)
        self.clients.append(config)
        self.logs[id(config)] = VersionLog(config)
        self._defaults[id(config)] = _model_defaults(model)
        if start:
            assert config.start(timeout=timeout), f"{config!r} did not start: {config.stats!r}"
        return config

    def status_log(self, config: HotConfig[Any]) -> StatusLog:
        log = StatusLog(config)
        self._status_logs.append(log)
        return log

    def expected(self, config: HotConfig[Any]) -> tuple[str | None, int, dict[str, Any]]:
        epoch, version, values = effective(self.store, config.scopes)
        return epoch, version, {**self._defaults[id(config)], **values}

    def assert_converged(
        self,
        clients: Iterable[HotConfig[Any]] | None = None,
        *,
        timeout: float = CONVERGE_TIMEOUT,
        extra: Mapping[str, Any] | None = None,
    ) -> float:
        """The invariant: each client's snapshot equals the store's effective state, at the
        store's version and epoch, within ``timeout``; no client's versions ever went back.

        ``extra`` holds effective values that are expected on top of the store's (raw,
        unversioned publishes that survive a resync). Returns how long convergence took.
        """
        targets = list(self.clients if clients is None else clients)
        started = time.monotonic()
        lagging: list[str] = []

        def all_converged() -> bool:
            lagging[:] = [d for c in targets if (d := self._difference(c, extra))]
            return not lagging

        converged = eventually(all_converged, timeout=timeout, interval=0.01)
        took = time.monotonic() - started
        assert converged, (
            f"{len(lagging)} of {len(targets)} clients did not converge in {timeout}s:\n"
            + "\n".join(lagging[:5])
        )
        regressions = [
            f"{config!r}: {problem}"
            for config in targets
            for problem in self.logs[id(config)].problems()
        ]
        assert not regressions, "\n".join(regressions)
        return took

    def _difference(self, config: HotConfig[Any], extra: Mapping[str, Any] | None) -> str:
        epoch, version, values = self.expected(config)
        values.update(extra or {})
        snapshot = config.snapshot()
        if (
            config.status is Status.LIVE
            and snapshot == values
            and (snapshot.epoch, snapshot.version) == (epoch, version)
        ):
            return ""
        have = dict(snapshot)
        missing = sorted(k for k in values if k not in have)
        unexpected = sorted(k for k in have if k not in values)
        wrong = sorted(k for k in values if k in have and have[k] != values[k])
        return (
            f"{config!r} epoch={snapshot.epoch} (store {epoch}) version={snapshot.version} "
            f"(store {version}); missing {missing[:5]} ({len(missing)}), unexpected "
            f"{unexpected[:5]} ({len(unexpected)}), different {wrong[:5]} ({len(wrong)}); "
            f"{config.stats!r}"
        )

    def close(self) -> None:
        for log in self._status_logs:
            log.disconnect()
        for config in self.clients:
            config.close()
        self.store.close()


def _model_defaults(model: type[BaseModel] | None) -> dict[str, Any]:
    # A client that never reached the store serves exactly its model's defaults.
    if model is None:
        return {}
    return dict(HotConfig("redis://127.0.0.1:1/0", model=model).snapshot())


def pubsub_clients(r: redis.Redis) -> list[dict[str, Any]]:
    """The server's Pub/Sub connections (``CLIENT LIST TYPE pubsub``)."""
    listed: list[dict[str, Any]] = r.client_list(_type="pubsub")
    return listed


def kill_pubsub(r: redis.Redis) -> int:
    """``CLIENT KILL TYPE pubsub``: drop every subscriber at once; returns how many."""
    return int(r.client_kill_filter(_type="pubsub"))

"""Prometheus metrics for hotconfig clients: counters, version and status of each one.

Needs ``prometheus_client`` (``pip install 'hotconfig[metrics]'``)::

    from hotconfig.fleet import metrics

    metrics.register(config)  # into prometheus_client's default REGISTRY
    # then expose it as usual, e.g. prometheus_client.start_http_server(9100)

Every scrape reads ``config.stats``, ``config.version`` and ``config.status`` — nothing is
counted twice and nothing runs between scrapes. Clients are held weakly: one that is garbage
collected drops out of the output. Each series is labelled with the client's ``service`` and
a ``client`` number (the order of registration in this process), so several clients of one
process never collide.
"""

from __future__ import annotations

import itertools
import threading
import weakref
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Final

try:
    from prometheus_client import REGISTRY, CollectorRegistry
    from prometheus_client.core import (
        CounterMetricFamily,
        GaugeMetricFamily,
        StateSetMetricFamily,
    )
    from prometheus_client.metrics_core import Metric
except ImportError:  # pragma: no cover - depends on the installed extras
    raise ImportError(
        "hotconfig.fleet.metrics needs prometheus_client: pip install 'hotconfig[metrics]'"
    ) from None

from ..signals import Status

if TYPE_CHECKING:
    from ..client import HotConfig

__all__ = ["HotConfigCollector", "register", "unregister"]

# Stats field -> (metric name without the _total suffix, help).
_COUNTERS: Final = {
    "received": ("hotconfig_messages_received", "Messages read off the changes channel."),
    "applied": ("hotconfig_messages_applied", "Messages applied to the snapshot."),
    "skipped": ("hotconfig_messages_skipped", "Duplicates and versions already applied."),
    "rejected": ("hotconfig_rejections", "Messages or values refused."),
    "resyncs": ("hotconfig_resyncs", "Snapshots loaded from the store."),
    "reconnects": ("hotconfig_reconnects", "New connections after the first."),
    "receiver_errors": ("hotconfig_receiver_errors", "Change receivers that raised."),
    "coalesced": ("hotconfig_coalesced", "Changes an async receiver skipped for a newer one."),
}
_LABELS: Final = ("service", "client")


class HotConfigCollector:
    """A Prometheus collector over a weak set of clients; see :func:`register`."""

    def __init__(self) -> None:
        self._clients: weakref.WeakKeyDictionary[HotConfig[Any], str] = weakref.WeakKeyDictionary()
        self._numbers = itertools.count(1)
        self._lock = threading.Lock()

    def add(self, config: HotConfig[Any]) -> None:
        with self._lock:
            if config not in self._clients:
                self._clients[config] = str(next(self._numbers))

    def discard(self, config: HotConfig[Any]) -> None:
        with self._lock:
            self._clients.pop(config, None)

    def describe(self) -> list[Metric]:
        # Registering must not scrape; the names are fixed, so nothing needs describing.
        return []

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            clients = list(self._clients.items())
        counters = {
            field: CounterMetricFamily(name, doc, labels=_LABELS)
            for field, (name, doc) in _COUNTERS.items()
        }
        version = GaugeMetricFamily(
            "hotconfig_version", "The store version the client's snapshot reflects.", labels=_LABELS
        )
        status = StateSetMetricFamily(
            "hotconfig_status", "Where the client is (one state is 1).", labels=_LABELS
        )
        for config, number in clients:
            labels = [config.service or "", number]
            stats, current = config.stats, config.status
            for field, family in counters.items():
                family.add_metric(labels, getattr(stats, field))
            version.add_metric(labels, config.version)
            status.add_metric(labels, {state.value: state is current for state in Status})
        yield from counters.values()
        yield version
        yield status


_collectors: weakref.WeakKeyDictionary[CollectorRegistry, HotConfigCollector] = (
    weakref.WeakKeyDictionary()
)
_collectors_lock = threading.Lock()


def register(config: HotConfig[Any], registry: CollectorRegistry | None = None) -> None:
    """Expose ``config``'s metrics in ``registry`` (default: prometheus_client's REGISTRY).

    One collector serves every client of a registry; registering a client twice is harmless.
    """
    registry = REGISTRY if registry is None else registry
    with _collectors_lock:
        collector = _collectors.get(registry)
        if collector is None:
            collector = _collectors[registry] = HotConfigCollector()
            registry.register(collector)
    collector.add(config)


def unregister(config: HotConfig[Any], registry: CollectorRegistry | None = None) -> None:
    """Stop exposing ``config`` in ``registry``."""
    collector = _collectors.get(REGISTRY if registry is None else registry)
    if collector is not None:
        collector.discard(config)

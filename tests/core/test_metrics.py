"""The Prometheus collector: what a scrape shows is each client's own counters, version, status."""

from __future__ import annotations

import gc
from typing import Any

import pytest

from hotconfig import ConfigStore, HotConfig
from hotconfig.testing.server import EmbeddedServer
from tests.waiting import eventually

pytest.importorskip("prometheus_client")

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from hotconfig.fleet import metrics


def scrape(registry: CollectorRegistry) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a scrape, parsed back from the text format, by name and labels."""
    text = generate_latest(registry).decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_a_scrape_shows_each_clients_counters_version_and_status(
    server: EmbeddedServer, store: ConfigStore
) -> None:
    registry = CollectorRegistry()
    store.set("seed", 0)  # the store's first write: clients check its new epoch with a resync
    with (
        HotConfig(server.url, service="billing") as billing,
        HotConfig(server.url, service="search") as search,
    ):
        metrics.register(billing, registry)
        metrics.register(search, registry)
        metrics.register(search, registry)  # twice is once
        version = store.set("a", 1)
        assert billing.wait_for_version(version, 5)
        assert search.wait_for_version(version, 5)
        samples = scrape(registry)
        one = (("client", "1"), ("service", "billing"))
        two = (("client", "2"), ("service", "search"))
        assert samples[("hotconfig_version", one)] == version
        assert samples[("hotconfig_version", two)] == version
        assert samples[("hotconfig_messages_applied_total", one)] == billing.stats.applied == 1
        assert samples[("hotconfig_resyncs_total", two)] == search.stats.resyncs
        live = (("client", "1"), ("hotconfig_status", "LIVE"), ("service", "billing"))
        assert samples[("hotconfig_status", live)] == 1
        closed = (("client", "1"), ("hotconfig_status", "CLOSED"), ("service", "billing"))
        assert samples[("hotconfig_status", closed)] == 0
        assert len([k for k in samples if k[0] == "hotconfig_version"]) == 2


def test_a_closed_and_dropped_client_leaves_the_output(server: EmbeddedServer) -> None:
    registry = CollectorRegistry()
    config: Any = HotConfig(server.url, service="short-lived")
    metrics.register(config, registry)
    config.start()
    assert any(name == "hotconfig_version" for name, _ in scrape(registry))
    config.close()
    state = (("client", "1"), ("hotconfig_status", "CLOSED"), ("service", "short-lived"))
    assert scrape(registry)[("hotconfig_status", state)] == 1
    del config
    assert eventually(lambda: gc.collect() >= 0 and not scrape(registry))


def test_unregister_stops_exposing_a_client(server: EmbeddedServer) -> None:
    registry = CollectorRegistry()
    with HotConfig(server.url) as config:
        metrics.register(config, registry)
        metrics.unregister(config, registry)
        assert scrape(registry) == {}

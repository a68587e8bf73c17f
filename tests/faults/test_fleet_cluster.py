"""Health reports and the convergence barrier on a real Redis Cluster: the registry shares the
store's hash tag, so its scripts run on the store's slot; in sharded mode the listener's
connection is on that slot's master too, where the fleet sees a dead process's go at once."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from hotconfig import ConfigStore, Fleet, HotConfig
from hotconfig.fleet.reporter import Reporter
from hotconfig.testing import ServerKind
from tests.faults.topology import Cluster
from tests.instances import spawned_instance
from tests.waiting import eventually

pytestmark = [pytest.mark.faults, pytest.mark.slow]


@pytest.fixture
def cluster(server_kind: ServerKind) -> Iterator[Cluster]:
    topology = Cluster(server_kind)
    yield topology
    topology.close()


def test_the_barrier_confirms_every_instance_on_a_cluster(cluster: Cluster) -> None:
    configs: list[HotConfig[Any]] = [
        HotConfig(cluster.url, service=f"s{i}", health=False) for i in range(3)
    ]
    reporters = [Reporter(config, url=cluster.url) for config in configs]
    try:
        for config, reporter in zip(configs, reporters, strict=True):
            assert config.start(timeout=10)
            reporter.start()
        with ConfigStore(cluster.url) as store, Fleet(cluster.url) as fleet:
            assert eventually(lambda: len(fleet.instances()) == 3)
            result = fleet.wait(store.set("k", 1), timeout=3)
            assert result.ok, result
            assert set(result.applied) == {r.instance for r in reporters}
            assert all(r.errors == 0 for r in reporters)
    finally:
        for reporter in reporters:
            reporter.close()
        for config in configs:
            config.close()


def test_a_killed_instance_leaves_a_sharded_cluster_s_fleet_at_once(cluster: Cluster) -> None:
    url = cluster.url + "?sharded=1"
    with (
        Fleet(url) as fleet,
        spawned_instance(url, service="victim", interval=5.0, ttl=15.0) as victim,
    ):
        [report] = fleet.instances()
        assert (report.instance, report.connection is not None) == (victim.instance, True)
        victim.kill()
        assert eventually(lambda: fleet.instances() == [], timeout=2)

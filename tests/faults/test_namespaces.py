"""Two stores (namespaces) sharing the default channel: each client follows its own store only."""

from __future__ import annotations

import pytest

from hotconfig import ConfigStore, Timings
from hotconfig.testing import EmbeddedServer
from tests.faults.harness import NO_POLL, Fleet
from tests.waiting import eventually

pytestmark = pytest.mark.faults


def test_another_namespaces_writes_never_land_in_this_one(
    server: EmbeddedServer, fleet: Fleet
) -> None:
    with ConfigStore(server.url, namespace="other") as other:
        config = fleet.client(
            namespace="other", timings=Timings(poll_interval=NO_POLL)
        )  # its store is empty
        fleet.store.set("shared.key", "from-default")  # version 1 of the default store
        assert eventually(lambda: config.stats.skipped == 1, timeout=5), config.stats
        assert config.get("shared.key") is None
        assert config.version == 0
        version = other.set("shared.key", "from-other")  # its own version 1
        assert version == 1
        assert config.wait_for_version(version, timeout=5)
        assert config.get("shared.key") == "from-other"
        fleet.store.set("shared.key", "from-default-again")
        assert eventually(lambda: config.stats.skipped == 2, timeout=5), config.stats
        assert config.get("shared.key") == "from-other"
        assert dict(config.snapshot()) == other.get_all()
        assert config.stats.rejected == 0  # another store's messages are not errors

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


def test_a_store_in_another_database_of_the_server_is_never_applied_even_briefly(
    server: EmbeddedServer, fleet: Fleet
) -> None:
    # Pub/Sub ignores database numbers: db 1's PUBLISH reaches db 0's subscribers too.
    staging_url = server.url.removesuffix("/0") + "/1"
    with ConfigStore(staging_url) as staging:
        config = fleet.client(timings=Timings(poll_interval=NO_POLL))  # db 0: no store yet
        assert config.version == 0
        staging.set("shared.key", "from-db-1")  # version 1 of a new epoch, db 1's first write
        assert eventually(lambda: config.stats.skipped == 1, timeout=5), config.stats
        # Not adopted as this store's first write, not even until a resync reverts it.
        assert config.get("shared.key") is None
        assert config.version == 0
        assert config.stats.rejected == 0
        version = fleet.store.set("shared.key", "from-db-0")
        assert config.wait_for_version(version, timeout=5)
        assert config.get("shared.key") == "from-db-0"
        # And the other way: a client of db 1 hears db 1 only.
        follower = fleet.client(staging_url, timings=Timings(poll_interval=NO_POLL))
        assert follower.get("shared.key") == "from-db-1"
        fleet.store.set("shared.key", "from-db-0-again")
        assert eventually(lambda: follower.stats.skipped == 1, timeout=5), follower.stats
        staging.set("shared.key", "from-db-1-again")
        assert eventually(lambda: follower.get("shared.key") == "from-db-1-again", timeout=5)
        assert config.get("shared.key") == "from-db-0-again"

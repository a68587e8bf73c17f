"""A server that crashes and comes back empty, or is not there when the client starts.

The embedded servers keep nothing on disk, so ``restart()`` is a Redis that lost its data: a
new epoch. A client must follow the store there too, even to an empty one, and a client
started while Redis is down must serve defaults (or its last-known-good file) and go LIVE by
itself once Redis is back.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
from pydantic import BaseModel

from hotconfig import Status
from hotconfig.testing.server import EmbeddedServer, free_port
from tests.conftest import ServerFactory
from tests.faults.harness import Fleet
from tests.waiting import eventually

pytestmark = pytest.mark.faults

SCOPES = ("global", "service:billing")
# Once the server answers again: at most one backoff step (capped at 1 s by default), then
# connect, subscribe and resync. DESIGN §4: "LIVE within seconds of the server coming back".
BACK_LIVE_BOUND = 3.0


class Settings(BaseModel):
    limit: int = 10
    feature_x: bool = False


def test_after_a_restart_without_persistence_keys_are_dropped_with_delete_signals(
    fleet: Fleet, server: EmbeddedServer
) -> None:
    fleet.store.set_many({"a": 1, "b": 2}, scope="global")
    fleet.store.set("b", 3, scope="service:billing")
    config = fleet.client(scopes=SCOPES)
    status = fleet.status_log(config)
    old_epoch = config.snapshot().epoch
    assert (config.get("a"), config.get("b")) == (1, 3)

    restarted_at = time.monotonic()
    server.restart()  # no persistence: the store is empty, a new epoch begins
    back_at = time.monotonic()
    status.wait_for(Status.INTERRUPTED, restarted_at, timeout=10)
    live_at = status.wait_for(Status.LIVE, restarted_at, timeout=10)
    assert live_at - back_at < BACK_LIVE_BOUND
    fleet.assert_converged()
    assert len(config.snapshot()) == 0
    deletes = {(c.key, c.old) for c in fleet.logs[id(config)].changes if c.op == "delete"}
    assert deletes == {("a", 1), ("b", 3)}

    version = fleet.store.set("a", "new")
    assert version == 1
    assert config.wait_for_version(version, timeout=10)
    assert config.snapshot().epoch not in (None, old_epoch)
    assert config.get("a") == "new"
    fleet.store.set("b", "new", scope="service:billing")
    fleet.assert_converged()


def test_a_client_started_while_the_server_is_down_serves_defaults_and_goes_live_alone(
    fleet: Fleet, server: EmbeddedServer
) -> None:
    server.kill()
    config = fleet.client(model=Settings, start=False)  # the default backoff is under test
    status = fleet.status_log(config)
    started = time.monotonic()
    assert config.start(timeout=0.5) is False
    assert time.monotonic() - started < 0.5 + 0.3
    assert config.status is Status.STARTING
    assert (config.get("limit"), config.settings.feature_x) == (10, False)
    assert eventually(lambda: config.stats.last_error is not None)

    server.restart()
    back_at = time.monotonic()
    version = fleet.store.set("limit", 42)
    live_at = status.wait_for(Status.LIVE, started, timeout=10)
    assert live_at - back_at < BACK_LIVE_BOUND
    assert config.wait_for_version(version, timeout=5)
    assert config.settings.limit == 42
    fleet.store.set("feature_x", True)
    fleet.assert_converged()
    assert config.settings.feature_x is True


def test_a_client_goes_live_when_a_server_first_starts_on_its_port(
    fleet_factory: Callable[[str], Fleet], server_factory: ServerFactory
) -> None:
    port = free_port()
    fleet = fleet_factory(f"redis://127.0.0.1:{port}/0")
    config = fleet.client(start=False)
    status = fleet.status_log(config)
    assert config.start(timeout=0.3) is False
    assert config.get("limit") is None

    server_factory(port=port)
    up_at = time.monotonic()
    live_at = status.wait_for(Status.LIVE, up_at - 1, timeout=10)
    assert live_at - up_at < BACK_LIVE_BOUND
    fleet.store.set("limit", 1)
    fleet.assert_converged()


def test_the_last_known_good_file_is_served_while_the_server_is_down(
    fleet: Fleet, server: EmbeddedServer, tmp_path: Path
) -> None:
    cache = tmp_path / "hotconfig.json"
    fleet.store.set_many({"limit": 5, "name": "from the store"})
    fleet.store.set("limit", 7, scope="service:billing")
    first = fleet.client(scopes=SCOPES, cache_path=cache)
    fleet.assert_converged([first])
    first.close()
    assert cache.exists()
    epoch, version = fleet.store.epoch, fleet.store.version

    server.kill()
    second = fleet.client(scopes=SCOPES, cache_path=cache, start=False)
    assert second.start(timeout=0.3) is False
    assert second.status is Status.STARTING
    assert dict(second.snapshot()) == {"limit": 7, "name": "from the store"}
    assert (second.snapshot().epoch, second.version) == (epoch, version)

    # The server comes back empty: the store is the truth, the cached values go.
    server.restart()
    fleet.store.set("name", "after the restart")
    fleet.assert_converged([second])
    assert dict(second.snapshot()) == {"name": "after the restart"}

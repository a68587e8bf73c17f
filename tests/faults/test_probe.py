"""The delivery probe: each client proves, on a private channel, that what is published comes
back on its subscription — without disturbing any other subscriber."""

from __future__ import annotations

import time

import pytest
import redis

from hotconfig import Status, Timings
from tests.faults.harness import NO_POLL, Fleet
from tests.waiting import eventually

pytestmark = pytest.mark.faults


def publishes(r: redis.Redis) -> int:
    stats = r.info("commandstats").get("cmdstat_publish", {})
    return int(stats.get("calls", 0))


def test_probing_clients_stay_live_and_nobody_else_sees_the_probes(
    fleet: Fleet, redis_client: redis.Redis
) -> None:
    # A probe not echoed within liveness_timeout would drop the connection: keep it short.
    probing = [
        fleet.client(
            timings=Timings(probe_interval=0.05, liveness_timeout=0.5, poll_interval=NO_POLL)
        )
        for _ in range(2)
    ]
    plain = fleet.client(timings=Timings(poll_interval=NO_POLL))
    before = publishes(redis_client)
    time.sleep(1.0)
    assert publishes(redis_client) - before >= 10  # the probes really went out
    for config in (*probing, plain):
        assert config.status is Status.LIVE
        assert config.stats.reconnects == 0  # every probe came back in time
        assert config.stats.rejected == 0
        assert config.stats.received == 0  # private: no client read a probe as a change
    fleet.store.set("after", 1)
    assert eventually(lambda: all(c.get("after") == 1 for c in fleet.clients))
    fleet.assert_converged()

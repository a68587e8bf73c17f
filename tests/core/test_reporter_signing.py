"""Signed health reports on real servers: with signing keys, every report a client's reporter
writes is signed with its ring, and a fleet with the keys counts only those — a raw PUBLISH on
the health channel can no longer make the barrier believe that a frozen instance applied."""

from __future__ import annotations

import base64
import json
import logging
import secrets
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from hotconfig import ConfigStore, Fleet, HotConfig, Status
from hotconfig.fleet import Convergence, Report
from hotconfig.fleet.reporter import Reporter
from hotconfig.security import KeyRing
from hotconfig.testing.server import EmbeddedServer
from tests.waiting import eventually

RING = KeyRing.parse("k1=" + base64.b64encode(secrets.token_bytes(32)).decode())


@pytest.fixture
def admin(server: EmbeddedServer) -> Iterator[redis.Redis]:
    client = server.client()
    yield client
    client.close()


@pytest.fixture
def signed_fleet(server: EmbeddedServer) -> Iterator[Fleet]:
    with Fleet(server.url, signing_keys=RING) as fleet:
        yield fleet


@pytest.fixture
def web(server: EmbeddedServer) -> Iterator[HotConfig[Any]]:
    """A LIVE client of a signed store, with the reporter it starts by itself."""
    with HotConfig(server.url, service="web", signing_keys=RING) as config:
        assert config.status is Status.LIVE
        yield config


@pytest.fixture
def frozen(server: EmbeddedServer) -> Iterator[Reporter]:
    """The reporter of a client that never started: it reports version 0, STARTING."""
    config: HotConfig[Any] = HotConfig(
        server.url, service="frozen", signing_keys=RING, health=False
    )
    reporter = Reporter(config)
    reporter.start()
    assert eventually(lambda: reporter.reports > 0)
    yield reporter
    reporter.close()
    config.close()


def health_subscribers(client: redis.Redis) -> int:
    return int(client.pubsub_numsub("health:status:hotconfig")[0][1])


def test_a_forged_report_cannot_confirm_a_frozen_instance(
    server: EmbeddedServer,
    admin: redis.Redis,
    signed_fleet: Fleet,
    web: HotConfig[Any],
    frozen: Reporter,
) -> None:
    with ConfigStore(server.url, signing_keys=RING) as store:
        version = store.set("feature", True)
    assert eventually(lambda: len(signed_fleet.instances()) == 2, timeout=5)
    results: list[Convergence] = []
    waiting = threading.Thread(target=lambda: results.append(signed_fleet.wait(version, 1.0)))
    waiting.start()
    assert eventually(lambda: health_subscribers(admin) == 1)
    # Anyone who may publish on the health channel says the frozen instance applied it.
    forged = {"instance": frozen.instance, "service": "frozen", "version": version}
    admin.publish("health:status:hotconfig", json.dumps(forged))
    admin.publish("health:status:hotconfig", json.dumps(forged | {"sig": "k1:bm90LWEtbWFj"}))
    waiting.join(5)
    [result] = results
    assert not result.ok
    assert result.behind == (frozen.instance,)
    assert result.reports[frozen.instance].version == 0
    assert len(result.applied) == 1
    assert signed_fleet.ignored == {"unsigned": 1, "bad_signature": 1}


def test_every_report_of_a_signing_client_is_signed_and_read_by_any_fleet(
    server: EmbeddedServer, web: HotConfig[Any], signed_fleet: Fleet
) -> None:
    [report] = eventually_listed(signed_fleet)
    with Fleet(server.url) as plain:  # signing off: a signed report is a report like any
        assert [r.instance for r in plain.instances()] == [report.instance]
    with server.client() as raw:
        stored = raw.get(f"{{hotconfig}}:health:instance:{report.instance}")
    assert stored is not None
    assert json.loads(stored)["sig"].startswith("k1:")
    other = KeyRing({"k1": secrets.token_bytes(32)})
    with pytest.raises(ValueError, match="signature does not verify"):
        Report.from_json(stored, other, "health:status:hotconfig")
    assert signed_fleet.ignored == {}


def eventually_listed(fleet: Fleet) -> list[Report]:
    assert eventually(lambda: fleet.instances(), timeout=5)
    return fleet.instances()


def test_a_fleet_with_keys_ignores_a_client_that_does_not_sign(
    server: EmbeddedServer, signed_fleet: Fleet
) -> None:
    with HotConfig(server.url, service="unsigned") as config:  # signing off on this client
        assert config.status is Status.LIVE
        with Fleet(server.url) as plain:
            assert eventually(lambda: plain.instances(service="unsigned"), timeout=5)
        assert signed_fleet.instances() == []
        assert signed_fleet.wait(config.version, timeout=0.2).empty
    assert signed_fleet.ignored["unsigned"] >= 2


def test_a_ring_that_can_only_verify_reports_unsigned_and_says_so(
    server: EmbeddedServer, caplog: pytest.LogCaptureFixture
) -> None:
    pytest.importorskip("cryptography")  # Ed25519 keys need the signing extra
    public = base64.b64encode(secrets.token_bytes(32)).decode()
    with HotConfig(server.url, signing_keys=f"k1=ed25519-public:{public}", health=False) as config:
        with caplog.at_level(logging.WARNING, "hotconfig.health"):
            reporter = Reporter(config)
        assert "can only verify" in caplog.text
        assert "Reporter(config, signing_keys=...)" in caplog.text
        signer = Reporter(config, signing_keys=RING)  # a ring of its own, that can sign
        for each in (reporter, signer):
            config.attach(each)
        with Fleet(server.url, signing_keys=RING) as fleet:
            assert eventually(lambda: fleet.instances() and len(fleet.ignored) == 1, timeout=5)
            assert [r.instance for r in fleet.instances()] == [signer.instance]
            assert set(fleet.ignored) == {"unsigned"}  # the reporter that cannot sign

"""Which registered connections the server still has (hotconfig.fleet._presence), asked of real
servers: a closed connection is missing at once; a replica, a user that may not list clients
and a report that names no connection never make an instance missing."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest
import redis

from hotconfig.fleet import Report
from hotconfig.fleet._presence import Presence
from hotconfig.fleet.registry import Registry
from hotconfig.testing.server import EmbeddedServer
from tests.conftest import ServerFactory
from tests.waiting import eventually

KEY = Registry().instances


def report(instance: str, connection: int | None) -> Report:
    return Report.from_json(json.dumps({"instance": instance, "connection": connection}))


@pytest.fixture
def admin(server: EmbeddedServer) -> Iterator[redis.Redis]:
    client = server.client()
    yield client
    client.close()


def connected(client: redis.Redis) -> int:
    """The id of ``client``'s connection, held open."""
    return int(client.client_id())


def test_a_closed_connection_is_missing_and_an_open_one_is_not(
    server: EmbeddedServer, admin: redis.Redis
) -> None:
    alive, dying = server.client(), server.client()
    ids = connected(alive), connected(dying)
    reports = [report("alive", ids[0]), report("dying", ids[1])]
    presence = Presence(admin, KEY)
    assert presence.missing(reports) == set()
    dying.close()  # as when the process holding it dies: the server drops it
    assert eventually(lambda: presence.missing(reports) == {"dying"}, timeout=2)
    alive.close()


def test_a_report_that_names_no_connection_is_never_missing(admin: redis.Redis) -> None:
    # An older reporter, a user without CLIENT ID, a classic cluster subscription: only the
    # registration's expiry can tell, as before.
    assert Presence(admin, KEY).missing([report("old", None)]) == set()


def test_a_replica_is_not_asked_to_vouch_for_the_master_s_clients(
    server: EmbeddedServer, server_factory: ServerFactory, admin: redis.Redis
) -> None:
    replica = server_factory()
    with replica.client() as follower:
        follower.replicaof(server.host, server.port)
        gone = report("gone", 1_000_000)  # an id nobody has, anywhere
        assert Presence(follower, KEY).missing([gone]) == set()
        assert Presence(admin, KEY).missing([gone]) == {"gone"}


def test_a_user_that_may_not_list_clients_leaves_it_to_the_expiry_and_is_told_once(
    server: EmbeddedServer, admin: redis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    admin.acl_setuser(
        "narrow", enabled=True, passwords=["+pw"], commands=["+@all", "-client|list"], keys=["*"]
    )
    with redis.Redis(server.host, server.port, username="narrow", password="pw") as narrow:
        presence = Presence(narrow, KEY)
        with caplog.at_level(logging.WARNING, "hotconfig.fleet"):
            assert presence.missing([report("gone", 1_000_000)]) == set()
            assert presence.missing([report("gone", 1_000_000)]) == set()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "+client|list" in warnings[0]

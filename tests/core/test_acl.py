"""Least privilege on real servers: users made from acl.rules() can do their job and no more."""

from __future__ import annotations

import logging
import re
import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from hotconfig import ConfigStore, HotConfig, Status, StoreError, Timings
from hotconfig.fleet import Fleet
from hotconfig.fleet.reporter import Reporter
from hotconfig.security import acl
from hotconfig.testing.server import EmbeddedServer
from tests.waiting import eventually

PASSWORD = "acl-test-pw"


@pytest.fixture
def admin(server: EmbeddedServer) -> Iterator[redis.Redis]:
    client = server.client()
    yield client
    client.close()


def user_url(server: EmbeddedServer, admin: redis.Redis, role: acl.Role) -> str:
    # A replay publisher names its channels (it may PUBLISH on them); the others need none.
    replayed = ["chat:*"] if role == "replay-publisher" else None
    admin.execute_command(  # type: ignore[no-untyped-call]
        "ACL", "SETUSER", role, "on", ">" + PASSWORD, *acl.rules(role, replay_channels=replayed)
    )
    return f"redis://{role}:{PASSWORD}@{server.host}:{server.port}/0"


def test_a_subscriber_follows_the_store_but_cannot_publish_or_write(
    server: EmbeddedServer, admin: redis.Redis
) -> None:
    url = user_url(server, admin, "subscriber")
    with ConfigStore(server.url) as store, HotConfig(url, service="billing") as config:
        assert config.status is Status.LIVE, config.stats
        version = store.set("feature.on", True)
        assert config.wait_for_version(version, timeout=5)
        assert config.get("feature.on") is True
        with redis.Redis.from_url(url) as sub:
            with pytest.raises(redis.exceptions.NoPermissionError):
                sub.publish("config:changes", '{"key": "feature.on", "value": false}')
            with pytest.raises(redis.exceptions.NoPermissionError):
                sub.hset("{hotconfig}:scope:global", "feature.on", "false")
            with ConfigStore(url) as forger, pytest.raises(StoreError, match="refused the write"):
                forger.set("feature.on", False)
            sub.publish("health:status:hotconfig", "{}")  # its own reports, in the selector
        assert config.get("feature.on") is True
        assert config.stats.rejected == 0


def test_a_publisher_writes_the_store_but_reads_nothing_else(
    server: EmbeddedServer, admin: redis.Redis
) -> None:
    admin.set("payments:api-key", "not for the config service")
    url = user_url(server, admin, "publisher")
    with ConfigStore(url) as store, HotConfig(server.url) as config:
        version = store.set_many({"limit": 5, "name": "x"})
        store.delete("name")
        assert config.wait_for_version(version + 1, timeout=5)
        assert (config.get("limit"), "name" in config) == (5, False)
        assert store.get("limit") == 5
        assert [entry.version for entry in store.history()] == [version + 1, version]
        with redis.Redis.from_url(url) as pub:
            with pytest.raises(redis.exceptions.NoPermissionError):
                pub.get("payments:api-key")
            with pytest.raises(redis.exceptions.NoPermissionError):
                pub.hgetall("{other}:scope:global")


def test_doctor_tells_a_subscriber_it_cannot_publish(
    server: EmbeddedServer, admin: redis.Redis
) -> None:
    report = acl.doctor(user_url(server, admin, "subscriber"))
    assert report.user == "subscriber"
    assert report.method == "transaction"  # ACL DRYRUN is not a subscriber's to run
    assert report.can("PUBLISH to config:changes") is False
    assert report.can("write stored values (HSET)") is False
    assert report.can("SUBSCRIBE to config:changes") is True
    assert report.can("read the store (EVAL)") is True
    text = "\n".join(report.lines())
    assert "this user cannot PUBLISH to config:changes" in text
    assert PASSWORD not in repr(report) + text
    assert report.eviction_policy is None  # CONFIG GET is not granted: told, not raised
    assert not any("PUBLISH" in warning for warning in report.warnings)
    assert admin.dbsize() == 0  # the probes were discarded, never run


def test_doctor_warns_that_the_default_user_can_publish(server: EmbeddedServer) -> None:
    report = acl.doctor(server.url)
    assert (report.user, report.method) == ("default", "dryrun")
    assert report.can("PUBLISH to config:changes") is True
    assert report.can("read keys outside the store") is True
    assert any("can PUBLISH to config:changes" in warning for warning in report.warnings)
    assert report.eviction_policy == "noeviction"
    assert report.pubsub_buffer_limit is not None
    assert "this user can PUBLISH to config:changes" in report.lines()


def test_every_role_is_accepted_by_the_server(server: EmbeddedServer, admin: redis.Redis) -> None:
    for role in acl.ROLES:
        user_url(server, admin, role)
        user_url(server, admin, role)  # applied again, the rules replace rather than add
    described: Any = admin.acl_getuser("subscriber")
    assert "+publish" not in described["commands"]
    assert len(described["selectors"]) == 1  # not one more per application
    bridge = acl.doctor(user_url(server, admin, "bridge"))
    assert bridge.can("SUBSCRIBE to config:changes") is True
    assert bridge.can("PUBLISH to config:changes") is False
    assert bridge.can("read stored values (HGETALL)") is False
    replay = acl.doctor(user_url(server, admin, "replay-publisher"))
    assert replay.can("PUBLISH to config:changes") is False  # only its chat:* channels
    assert replay.can("SUBSCRIBE to config:changes") is False
    assert replay.can("read keys outside the store") is False
    with pytest.raises(ValueError, match="unknown role"):
        acl.rules("admin")  # type: ignore[arg-type]


def test_rules_for_another_namespace_and_channel_keep_to_them(
    server: EmbeddedServer, admin: redis.Redis
) -> None:
    tokens = acl.rules("subscriber", namespace="shop", channel="shop:changes")
    admin.execute_command(  # type: ignore[no-untyped-call]
        "ACL", "SETUSER", "shop", "on", ">" + PASSWORD, *tokens
    )
    url = f"redis://shop:{PASSWORD}@{server.host}:{server.port}/0"
    with (
        ConfigStore(server.url, namespace="shop", channel="shop:changes") as store,
        HotConfig(url, namespace="shop", channel="shop:changes") as config,
    ):
        assert config.status is Status.LIVE, config.stats
        assert config.wait_for_version(store.set("theme", "dark"), timeout=5)
        assert config.get("theme") == "dark"
    report = acl.doctor(url, namespace="hotconfig")
    assert report.can("read the store (EVAL)") is False  # the default namespace is not its own
    assert report.can("SUBSCRIBE to config:changes") is False


def test_an_operator_can_write_and_follow(server: EmbeddedServer, admin: redis.Redis) -> None:
    url = user_url(server, admin, "operator")
    with ConfigStore(url) as store, HotConfig(url) as config:
        assert config.status is Status.LIVE, config.stats
        assert config.wait_for_version(store.set("limit", 3), timeout=5)
        assert config.get("limit") == 3
    assert acl.doctor(url).eviction_policy == "noeviction"  # CONFIG GET is an operator's


def test_a_subscriber_reports_its_health_and_an_operator_sees_it(
    server: EmbeddedServer, admin: redis.Redis
) -> None:
    url = user_url(server, admin, "subscriber")
    admin.acl_log_reset()
    # The delivery probe is on by default only on Sentinel and Cluster; it is forced on here.
    # Its own reporter, reporting often, instead of the built-in one.
    with HotConfig(
        url, service="billing", timings=Timings(probe_interval=0.1), health=False
    ) as config:
        reporter = Reporter(config, url=url, interval=0.1)
        reporter.start()
        try:
            assert eventually(lambda: reporter.reports > 3), f"{reporter.errors} errors"
            with Fleet(user_url(server, admin, "operator")) as fleet:
                assert [r.service for r in fleet.instances()] == ["billing"]
                # The subscriber may name its connection, the operator look it up.
                [listed] = fleet.instances()
                assert listed.connection == config.stats.connection_id is not None
        finally:
            reporter.close()
        assert reporter.errors == 0
        assert (config.status, config.stats.reconnects) == (Status.LIVE, 0)
    # Not one command of the client, its probe or its reports was refused, but for two left out
    # on purpose, both optional: CONFIG GET (it would show requirepass) and redis-py's CLIENT
    # SETINFO (Redis 7.0 does not know it, so no rule can name it).
    optional = {"config|get", "client|setinfo"}
    refused = [entry for entry in admin.acl_log() if entry.get("object") not in optional]
    assert refused == []
    report = acl.doctor(url)
    assert report.can("PUBLISH to health:status:hotconfig") is True
    assert report.can("register its health (SET)") is True
    assert report.can("tell its connection's id (CLIENT ID)") is True
    assert report.can("see which instances are connected (CLIENT LIST)") is False
    assert report.can("PUBLISH to config:changes") is False
    operator = acl.doctor(user_url(server, admin, "operator"))
    assert operator.can("see which instances are connected (CLIENT LIST)") is True


def test_a_subscriber_made_by_older_rules_still_reports_and_dies_at_its_expiry(
    server: EmbeddedServer, admin: redis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    # Rules from before CLIENT ID was granted: the client follows and reports as before, and
    # says once what its registration lacks.
    older = [token for token in acl.rules("subscriber") if token != "+client|id"]
    setuser = ("ACL", "SETUSER", "older", "on", ">" + PASSWORD, *older)
    admin.execute_command(*setuser)  # type: ignore[no-untyped-call]
    url = f"redis://older:{PASSWORD}@{server.host}:{server.port}/0"
    with (
        caplog.at_level(logging.WARNING, "hotconfig.listener"),
        HotConfig(url, service="older") as config,
        Fleet(server.url) as fleet,
    ):
        assert config.status is Status.LIVE
        assert eventually(lambda: fleet.instances(), timeout=5)
        assert [r.connection for r in fleet.instances()] == [None]
        assert config.stats.connection_id is None
    [told] = [r.getMessage() for r in caplog.records if "CLIENT ID" in r.getMessage()]
    assert "+client|id" in told


def test_the_recipes_in_the_docs_are_the_rules() -> None:
    doc = (Path(__file__).parents[2] / "docs" / "security.md").read_text()
    block = doc[doc.index("```text\n# subscriber:") :]
    block = block[: block.index("```", 8)]
    users: dict[str, acl.Role] = {"billing": "subscriber", "config-service": "publisher"}
    users |= {"ops": "operator", "bridge": "bridge", "chat-service": "replay-publisher"}
    recipes = re.findall(r"ACL SETUSER (\S+) on >\.\.\. (.*?)(?=\n\n|\n#|$)", block, re.DOTALL)
    assert sorted(user for user, _ in recipes) == sorted(users)
    for user, body in recipes:
        tokens = [" ".join(token.split()) for token in shlex.split(body)]
        replayed = ["chat:*"] if user == "chat-service" else None
        assert tokens == acl.rules(users[user], replay_channels=replayed), user

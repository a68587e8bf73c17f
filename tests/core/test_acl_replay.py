"""Least privilege for replayable channels, on real servers: a bridge user made from
``acl.rules("bridge")`` follows and resumes a replayable channel, a ``replay-publisher`` user
publishes to it, and neither can do anything outside its grant.

The real components run as those users; the server's ACL log shows that nothing they do was
refused, and each refusal outside the grant is asked of the server itself (as the user, or
with ``ACL DRYRUN``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from hotconfig.bridge import Bridge, Event, Replayable, ReplayPublisher
from hotconfig.bridge._history import PUBLISH_SCRIPT, history_keys
from hotconfig.security import acl
from hotconfig.testing.server import EmbeddedServer
from tests.bridging import run, subscribed

PASSWORD = "acl-replay-pw"
CLASSES = {"chat:*": Replayable(maxlen=100)}
# Left out of every role on purpose (see docs/security.md): optional to hotconfig.
OPTIONAL = {"config|get", "client|setinfo"}


@pytest.fixture
def admin(server: EmbeddedServer) -> Iterator[redis.Redis]:
    client = server.client(decode_responses=True)
    yield client
    client.close()


def make_user(server: EmbeddedServer, admin: redis.Redis, name: str, tokens: list[str]) -> str:
    admin.execute_command("ACL", "SETUSER", name, "on", ">" + PASSWORD, *tokens)  # type: ignore[no-untyped-call]
    return f"redis://{name}:{PASSWORD}@{server.host}:{server.port}/0"


def refused(admin: redis.Redis) -> list[Any]:
    return [entry for entry in admin.acl_log() if entry.get("object") not in OPTIONAL]


def dryrun(admin: redis.Redis, user: str, *command: str) -> bool:
    """Whether the server would let ``user`` run ``command`` (nothing is run)."""
    reply = admin.execute_command("ACL", "DRYRUN", user, *command)  # type: ignore[no-untyped-call]
    return bool(reply == "OK")


@pytest.fixture
def users(server: EmbeddedServer, admin: redis.Redis) -> tuple[str, str]:
    """A bridge that forwards chat:* and dashboard:*, of which chat:* is replayable, and the
    publisher of chat:*; the ACL log starts empty."""
    bridge = acl.rules(
        "bridge", bridge_channels=["chat:*", "dashboard:*"], replay_channels=["chat:*"]
    )
    publisher = acl.rules("replay-publisher", replay_channels=["chat:*"])
    urls = make_user(server, admin, "bridge", bridge), make_user(server, admin, "chat", publisher)
    admin.acl_log_reset()
    return urls


async def take(subscription: Any, count: int) -> list[Event]:
    async with asyncio.timeout(10):
        return [await anext(subscription) for _ in range(count)]


def test_a_bridge_user_follows_and_resumes_a_replayable_channel_published_by_a_replay_user(
    users: tuple[str, str], admin: redis.Redis
) -> None:
    bridge_url, publisher_url = users
    with ReplayPublisher(publisher_url) as publisher, Bridge(bridge_url, classes=CLASSES) as bridge:
        ids = [publisher.publish("chat:room-1", f"m{n}") for n in range(3)]

        async def follow_then_resume() -> tuple[list[Event], list[Event]]:
            # Everything the history holds, then the live messages.
            async with bridge.subscribe("chat:room-1", last_event_id=":0") as first:
                await subscribed(first)
                replayed = await take(first, 3)
                publisher.publish("chat:room-1", "live")
                replayed += await take(first, 1)
            # A browser back with its last id: what it missed since, once.
            missed = [publisher.publish("chat:room-1", f"missed {n}") for n in range(2)]
            async with bridge.subscribe("chat:room-1", last_event_id=replayed[-1].id) as again:
                resumed = await take(again, 2)
            assert [e.id for e in resumed] == missed
            return replayed, resumed

        replayed, resumed = run(follow_then_resume)
        assert [e.data for e in replayed] == ["m0", "m1", "m2", "live"]
        assert [e.id for e in replayed[:3]] == ids
        assert [e.data for e in resumed] == ["missed 0", "missed 1"]
        assert (bridge.stats.replayed, bridge.stats.replay_errors) == (5, 0)
        assert bridge.stats.reconnects == 0
    assert refused(admin) == []  # neither component was refused anything it does


def test_a_bridge_user_reads_histories_but_cannot_write_them_publish_or_read_other_keys(
    users: tuple[str, str], admin: redis.Redis
) -> None:
    bridge_url, _ = users
    admin.set("payments:api-key", "not for the bridge")
    meta, stream = history_keys("chat:room-1")
    with redis.Redis.from_url(bridge_url) as client:
        # Its own script cannot be turned into a write: each command inside is checked.
        with pytest.raises(redis.exceptions.ResponseError):
            client.eval(PUBLISH_SCRIPT, 2, meta, stream, "chat:room-1", "forged", 10, "0", "x")
        in_script = [(e["username"], e["context"], e["object"]) for e in refused(admin)]
        assert in_script == [("bridge", "lua", "hsetnx")]  # its first write, refused
        for command in (("PUBLISH", "chat:room-1", "x"), ("GET", "payments:api-key")):
            with pytest.raises(redis.exceptions.NoPermissionError):
                client.execute_command(*command)
    assert admin.exists(meta, stream) == 0  # nothing was written
    assert dryrun(admin, "bridge", "SUBSCRIBE", "chat:room-1")
    assert dryrun(admin, "bridge", "SUBSCRIBE", "dashboard:refresh:sales")
    assert not dryrun(admin, "bridge", "SUBSCRIBE", "config:changes")
    assert not dryrun(admin, "bridge", "XADD", stream, "*", "m", "forged")
    assert not dryrun(admin, "bridge", "HSET", meta, "offset", "0")
    # Histories of channels that are not replayable here are not its to read.
    assert not dryrun(admin, "bridge", "EVAL", "return 1", "1", history_keys("dashboard:x")[0])


def test_a_replay_publisher_user_publishes_its_channels_only_and_subscribes_to_nothing(
    users: tuple[str, str], admin: redis.Redis
) -> None:
    _, publisher_url = users
    with ReplayPublisher(publisher_url) as publisher:
        publisher.publish("chat:room-2", "allowed")
        with pytest.raises(redis.exceptions.NoPermissionError):
            publisher.publish("secret:payroll", "not its channel")  # neither its keys nor channel
    assert admin.exists(*history_keys("secret:payroll")) == 0
    assert not dryrun(admin, "chat", "PUBLISH", "config:changes", "{}")
    assert not dryrun(admin, "chat", "SUBSCRIBE", "chat:room-2")
    assert not dryrun(admin, "chat", "XRANGE", history_keys("chat:room-2")[1], "-", "+")
    assert not dryrun(admin, "chat", "GET", "{hotconfig}:version")
    assert refused(admin)  # the refusals above were the server's, and it logged them


def test_sharded_variants_add_ssubscribe_and_spublish_on_the_same_channels(
    server: EmbeddedServer, admin: redis.Redis
) -> None:
    bridge = acl.rules("bridge", bridge_channels=["chat:*"], sharded=True)
    publisher = acl.rules("replay-publisher", replay_channels=["chat:*"], sharded=True)
    make_user(server, admin, "sharded-bridge", bridge)
    make_user(server, admin, "sharded-chat", publisher)
    assert dryrun(admin, "sharded-bridge", "SSUBSCRIBE", "chat:room-3")
    assert not dryrun(admin, "sharded-bridge", "SPUBLISH", "chat:room-3", "x")
    assert dryrun(admin, "sharded-chat", "SPUBLISH", "chat:room-3", "x")
    assert dryrun(admin, "sharded-chat", "PUBLISH", "chat:room-3", "x")  # during a rollout
    assert not dryrun(admin, "sharded-chat", "SPUBLISH", "config:changes", "x")
    assert not dryrun(admin, "sharded-chat", "SSUBSCRIBE", "chat:room-3")
    assert "+spublish" not in acl.rules("replay-publisher", replay_channels=["chat:*"])


def test_a_bridge_without_replayable_channels_is_granted_no_key_and_a_publisher_needs_its_own(
    server: EmbeddedServer, admin: redis.Redis
) -> None:
    tokens = acl.rules("bridge", bridge_channels=["dashboard:*"], replay_channels=())
    assert not [t for t in tokens if t.startswith("~") or t == "+eval"]
    make_user(server, admin, "plain-bridge", tokens)
    assert not dryrun(admin, "plain-bridge", "EVAL", "return 1", "1", history_keys("chat:x")[0])
    # Its own channel keeps its connection in Pub/Sub mode while no browser follows anything.
    assert dryrun(admin, "plain-bridge", "SUBSCRIBE", "hotconfig:bridge:0123456789abcdef")
    with pytest.raises(ValueError, match="needs replay_channels"):
        acl.rules("replay-publisher")  # never every channel, config:changes with them

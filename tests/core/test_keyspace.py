"""The store's key names and its snapshot reader, including hashes somebody wrote by hand."""

from __future__ import annotations

from typing import Any

import pytest
import redis
from redis.crc import key_slot

from hotconfig import ConfigStore, HotConfig, signals
from hotconfig._config.wire import parse
from hotconfig._redis.keyspace import Keyspace, decode_hash
from hotconfig.testing.server import EmbeddedServer
from tests.recording import Recorder


def test_every_key_of_a_namespace_shares_one_hash_tag() -> None:
    # One hash tag: the write script's keys all live on one Redis Cluster slot.
    keyspace = Keyspace("billing")
    names = [
        keyspace.version,
        keyspace.epoch,
        keyspace.history,
        keyspace.scopes,
        keyspace.digest,
        keyspace.scope("service:billing"),
    ]
    assert all(name.startswith("{billing}:") for name in names)
    assert len(set(names)) == len(names)
    assert Keyspace().scope("global") == "{hotconfig}:scope:global"


def test_a_store_names_its_database_in_its_messages_only_when_it_is_not_0(
    server: EmbeddedServer,
) -> None:
    assert Keyspace("billing").identity(0) == '"ns":"billing"'
    assert Keyspace("billing").identity(3) == '"ns":"billing","db":3'
    url = server.url.removesuffix("/0") + "/3"
    client = redis.Redis.from_url(url)
    pubsub = redis.Redis.from_url(url).pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe("config:changes")
    pubsub.get_message(timeout=1)  # reads the subscription's acknowledgement
    with ConfigStore(client=client) as store:
        store.set("a", 1)
    message = pubsub.get_message(timeout=5)
    assert message is not None
    parsed = parse(message["data"])
    assert (parsed.ns, parsed.db, parsed.version) == ("hotconfig", 3, 1)
    pubsub.close()


@pytest.mark.parametrize("namespace", ["hotconfig", "billing", "a:b", "x" * 40])
def test_the_shard_channel_lives_in_the_slot_of_the_store_keys(namespace: str) -> None:
    # The write script may SPUBLISH only on a shard channel of the slot its keys are in.
    keyspace = Keyspace(namespace)
    channel = keyspace.shard_channel("config:changes")
    assert channel == "{" + namespace + "}:config:changes"
    assert key_slot(channel.encode()) == key_slot(keyspace.version.encode())


def test_decode_hash_decodes_every_value() -> None:
    flat = [b"a", b"1", b"b", b'{"x": [1, 2]}', b"c", b'"text"', b"d", b"null"]
    assert decode_hash(flat) == ({"a": 1, "b": {"x": [1, 2]}, "c": "text", "d": None}, [])
    assert decode_hash([]) == ({}, [])


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"not json", "invalid_json"),
        (b'{"x": 1', "invalid_json"),
        (b"80,443", "invalid_json"),  # one JSON value per field: a comma cannot split it in two
        (b"\xff", "not_utf8"),
    ],
)
def test_a_hand_written_value_that_is_not_json_is_skipped_and_the_rest_kept(
    raw: bytes, reason: str
) -> None:
    decoded, skipped = decode_hash([b"a", b"1", b"bad", raw, b"c", b'"ok"'])
    assert decoded == {"a": 1, "c": "ok"}
    assert [(item.key, item.error.reason) for item in skipped] == [("bad", reason)]


def test_the_snapshot_of_an_empty_store(server: EmbeddedServer) -> None:
    with ConfigStore(server.url) as store:
        snapshot = store.snapshot(["global", "env:prod"])
    assert (snapshot.epoch, snapshot.version) == (None, 0)
    assert snapshot.layers == {"global": {}, "env:prod": {}}
    assert snapshot.sizes == {"global": 0, "env:prod": 0}


def test_the_snapshot_reads_every_scope_at_one_version(server: EmbeddedServer) -> None:
    with ConfigStore(server.url) as store:
        store.set("limit", 1)
        version = store.set("limit", 2, scope="env:prod")
        snapshot = store.snapshot(["global", "env:prod", "never:written"])
    assert snapshot.epoch is not None
    assert snapshot.version == version
    assert snapshot.layers == {
        "global": {"limit": 1},
        "env:prod": {"limit": 2},
        "never:written": {},
    }
    assert snapshot.digest
    assert snapshot.sizes == {"global": 1, "env:prod": 1, "never:written": 0}


def test_a_client_skips_a_hand_written_value_that_is_not_json_and_keeps_the_rest(
    server: EmbeddedServer, redis_client: redis.Redis
) -> None:
    with ConfigStore(server.url) as store:
        store.set_many({"limit": 5, "name": "billing"})
        # Somebody edits the hash with redis-cli: one valid JSON value, two that are not.
        redis_client.hset(
            store.keyspace.scope("global"),
            mapping={"mode": '"fast"', "bad": "x", "ports": "80,443"},
        )
        rejected = Recorder()
        config: HotConfig[Any] = HotConfig(server.url)
        signals.config_rejected.connect(rejected, sender=config)
        try:
            assert config.start(timeout=5), config.stats.last_error
            assert dict(config.snapshot()) == {"limit": 5, "name": "billing", "mode": "fast"}
            assert sorted(call["key"] for call in rejected.calls) == ["bad", "ports"]
            assert config.stats.rejected == 2
            version = store.set("limit", 6)  # the next write still applies as usual
            assert config.wait_for_version(version, timeout=5)
            assert config.get("limit") == 6
        finally:
            config.close()
            signals.config_rejected.disconnect(rejected, sender=config)

"""Signed changes on real servers: only the store's (or a key holder's) messages apply.

With a key ring on the clients, anyone else's PUBLISH — raw, or a forged next version — changes
nothing and is counted; the store's signed writes apply, races between signing writers retry,
and a key rotation with two keys accepted loses nothing.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable

import pytest
import redis

from hotconfig import ConfigStore, Entry, Status, Timings
from hotconfig.security.signing import KeyRing, signed_message
from hotconfig.testing import EmbeddedServer
from tests.faults.harness import NO_POLL, Fleet
from tests.waiting import eventually

pytestmark = pytest.mark.faults

CHANNEL = "config:changes"
OLD = {"k1": b"k1-secret-0123456789abcdef"}
NEW = {"k2": b"k2-secret-0123456789abcdef"}


@pytest.fixture
def signed(server: EmbeddedServer, fleet_factory: Callable[[str], Fleet]) -> Fleet:
    fleet = fleet_factory(server.url)
    fleet.store.close()
    fleet.store = ConfigStore(server.url, signing_keys=OLD)
    return fleet


def test_only_signed_changes_apply(signed: Fleet, redis_client: redis.Redis) -> None:
    signed.store.set("limit", 1)
    config = signed.client(signing_keys=OLD, timings=Timings(poll_interval=NO_POLL))
    epoch, version = signed.store.epoch, signed.store.version
    assert config.get("limit") == 1

    redis_client.publish(CHANNEL, json.dumps({"key": "limit", "value": "raw"}))
    forged = {"version": version + 1, "epoch": epoch, "key": "limit", "value": "forged"}
    redis_client.publish(CHANNEL, json.dumps(forged))
    wrong = KeyRing({"k1": b"not-the-real-key-0123456789"})
    redis_client.publish(CHANNEL, signed_message([Entry("limit", "wrong key")], wrong, CHANNEL))
    assert eventually(lambda: config.stats.rejected == 3, timeout=5), config.stats
    assert config.get("limit") == 1
    assert "bad_signature" in (config.stats.last_rejection or "")

    real = signed.store.set("limit", 2)
    assert real == version + 1
    assert config.wait_for_version(real, timeout=5)
    assert config.get("limit") == 2
    assert config.stats.resyncs == 1  # nothing forged ever cost a reload
    signed.assert_converged()


def test_a_key_holder_can_publish_raw_signed_changes_once(
    signed: Fleet, redis_client: redis.Redis
) -> None:
    config = signed.client(signing_keys=OLD, timings=Timings(poll_interval=NO_POLL))
    message = signed_message([Entry("flag", True)], KeyRing(OLD), CHANNEL)
    redis_client.publish(CHANNEL, message)
    assert eventually(lambda: config.get("flag") is True, timeout=5)
    config_values_before = dict(config.snapshot())
    redis_client.publish(CHANNEL, message)  # the same message again: a replay
    stale = signed_message([Entry("flag", False)], KeyRing(OLD), CHANNEL, now=time.time() - 600)
    redis_client.publish(CHANNEL, stale)
    assert eventually(lambda: config.stats.rejected == 2, timeout=5)
    assert dict(config.snapshot()) == config_values_before
    signed.store.set("after", 1)
    signed.assert_converged(extra={"flag": True})


def test_a_rotation_with_both_keys_accepted_loses_nothing(
    server: EmbeddedServer, signed: Fleet
) -> None:
    clients = [
        signed.client(signing_keys={**OLD, **NEW}, timings=Timings(poll_interval=NO_POLL))
        for _ in range(2)
    ]
    signed.store.set("a", 1)  # signed with k1
    with ConfigStore(server.url, signing_keys={**NEW, **OLD}) as rotated:  # k2 signs now
        version = 0
        for value in range(20):
            store = rotated if value % 2 else signed.store
            version = store.set("a", value)
    for config in clients:
        assert config.wait_for_version(version, timeout=5)
        assert config.stats.rejected == 0
        assert config.stats.resyncs == 1
    signed.assert_converged()


def test_signing_writers_racing_each_other_all_land(server: EmbeddedServer, signed: Fleet) -> None:
    config = signed.client(signing_keys=OLD, timings=Timings(poll_interval=NO_POLL))
    stores = [ConfigStore(server.url, signing_keys=OLD) for _ in range(4)]
    versions: list[int] = []
    lock = threading.Lock()

    def write(store: ConfigStore, n: int) -> None:
        for i in range(25):
            v = store.set(f"writer.{n}", i)
            with lock:
                versions.append(v)

    threads = [threading.Thread(target=write, args=(s, n)) for n, s in enumerate(stores)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for store in stores:
        store.close()
    assert sorted(versions) == list(range(1, 101))  # each write got its own signed version
    assert config.wait_for_version(100, timeout=10)
    assert config.stats.rejected == 0
    assert config.status is Status.LIVE
    signed.assert_converged()


def test_a_client_without_the_key_of_a_signing_store_refuses_its_changes(
    signed: Fleet,
) -> None:
    config = signed.client(signing_keys=NEW, timings=Timings(poll_interval=NO_POLL))
    signed.store.set("limit", 5)
    assert eventually(lambda: config.stats.rejected == 1, timeout=5)
    assert config.get("limit") is None


def test_services_holding_only_an_ed25519_public_key_follow_the_store(
    server: EmbeddedServer, fleet_factory: Callable[[str], Fleet]
) -> None:
    pytest.importorskip("cryptography")
    import base64

    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    private = ed25519.Ed25519PrivateKey.generate()
    secret = private.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    public = private.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    fleet = fleet_factory(server.url)
    fleet.store.close()
    fleet.store = ConfigStore(
        server.url, signing_keys=f"ed=ed25519:{base64.b64encode(secret).decode()}"
    )
    verify_only = f"ed=ed25519-public:{base64.b64encode(public).decode()}"
    config = fleet.client(signing_keys=verify_only, timings=Timings(poll_interval=NO_POLL))
    version = fleet.store.set("limit", 7)
    assert config.wait_for_version(version, timeout=5)
    assert config.get("limit") == 7
    assert config.stats.rejected == 0
    fleet.assert_converged()

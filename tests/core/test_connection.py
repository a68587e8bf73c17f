"""One place resolves, validates and redacts Redis URLs, for the client and the store alike."""

from __future__ import annotations

from typing import Any

import pytest
import redis

from hotconfig import ConfigStore, Connection, HotConfig, Status
from hotconfig._redis.connection import DEFAULT_URL, Target, Topology, redacted
from hotconfig.testing import EmbeddedServer
from tests.conftest import ServerFactory

PASSWORD = "pw-Secr3t"


@pytest.fixture
def no_url_in_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HOTCONFIG_URL", raising=False)


def test_a_misspelt_scheme_raises_at_once_instead_of_retrying_forever() -> None:
    with pytest.raises(ValueError, match=r"reddis://x.*redis://"):
        HotConfig("reddis://x")
    with pytest.raises(ValueError, match="reddis://"):
        ConfigStore("reddis://x")


@pytest.mark.parametrize(
    "url",
    [
        "reddis://:pw-Secr3t@h/0",  # a bad scheme
        "redis://:pw-Secr3t@h/abc",  # a database that is not a number
        "redis://user:pw-Secr3t@h:port/0",  # a port that is not a number
    ],
)
def test_the_error_for_a_bad_url_names_it_without_its_password(url: str) -> None:
    with pytest.raises(ValueError, match="Redis URL") as raised:
        HotConfig(url)
    assert PASSWORD not in str(raised.value)
    assert "***" in str(raised.value)


@pytest.mark.parametrize("url", ["redis://h/abc", "redis://h:port/0", "redis:///0", "h:6379"])
def test_urls_that_can_never_work_are_refused_by_client_and_store(url: str) -> None:
    with pytest.raises(ValueError, match="Redis URL"):
        HotConfig(url)
    with pytest.raises(ValueError, match="Redis URL"):
        ConfigStore(url)


def test_url_and_repr_of_the_client_hide_the_password() -> None:
    config = HotConfig(f"redis://:{PASSWORD}@h/0")
    assert PASSWORD not in config.url
    assert PASSWORD not in repr(config)
    assert config.url == "redis://:***@h/0"
    config.close()


def test_the_store_repr_hides_the_password() -> None:
    with ConfigStore(f"redis://:{PASSWORD}@127.0.0.1:1/0") as store:
        assert PASSWORD not in repr(store)
        assert store.url is not None
        assert PASSWORD not in store.url
        assert "127.0.0.1:1" in repr(store)


@pytest.mark.usefixtures("no_url_in_env")
@pytest.mark.parametrize("env", [None, "", "   "])
def test_an_unset_or_empty_hotconfig_url_means_localhost_for_client_and_store(
    monkeypatch: pytest.MonkeyPatch, env: str | None
) -> None:
    if env is not None:
        monkeypatch.setenv("HOTCONFIG_URL", env)
    config = HotConfig()
    store = ConfigStore()
    try:
        assert config.url == store.url == DEFAULT_URL == "redis://localhost:6379/0"
    finally:
        config.close()
        store.close()


@pytest.mark.usefixtures("no_url_in_env")
def test_hotconfig_url_is_used_when_no_url_is_given_and_validated_like_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HOTCONFIG_URL", f"redis://:{PASSWORD}@cache.internal:6380/2")
    config = HotConfig()
    store = ConfigStore()
    try:
        assert config.url == store.url == "redis://:***@cache.internal:6380/2"
        with ConfigStore("redis://other/0") as explicit:
            assert explicit.url == "redis://other/0"  # an argument wins
    finally:
        config.close()
        store.close()
    monkeypatch.setenv("HOTCONFIG_URL", f"reddis://:{PASSWORD}@h/0")
    with pytest.raises(ValueError, match="reddis") as raised:
        ConfigStore()
    assert PASSWORD not in str(raised.value)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://localhost:6379/0", "redis://localhost:6379/0"),
        ("redis://:pw@h:1/0", "redis://:***@h:1/0"),
        ("redis://alice:pw@h:1/0", "redis://alice:***@h:1/0"),
        ("rediss://pw@h:1/0", "rediss://***@h:1/0"),  # redis-py reads a lone name as a password
        ("unix://:pw@/run/redis.sock?db=1", "unix://:***@/run/redis.sock?db=1"),
        ("redis://:p%40ss@h/0", "redis://:***@h/0"),
    ],
)
def test_redacted_hides_every_form_of_password(url: str, shown: str) -> None:
    assert redacted(url) == shown


def test_a_client_with_a_password_connects_and_never_shows_it(
    server_factory: ServerFactory,
) -> None:
    server = server_factory(password=PASSWORD)
    with ConfigStore(server.url) as store, HotConfig(server.url) as config:
        version = store.set("limit", 3)
        assert config.wait_for_version(version, timeout=5)
        assert config.status is Status.LIVE
        assert config.get("limit") == 3
        shown: list[Any] = [config.url, repr(config), repr(config.stats), store.url, repr(store)]
        assert all(PASSWORD not in str(text) for text in shown), shown


# -- sharded Pub/Sub: a cluster URL's ?sharded=, or sharded=True; refused anywhere else ----------

CLUSTER = "redis+cluster://127.0.0.1:7000,127.0.0.1:7001"


@pytest.mark.parametrize(
    ("url", "sharded", "expected"),
    [
        (CLUSTER, None, False),
        (CLUSTER + "?sharded=1", None, True),
        (CLUSTER + "?sharded=true", None, True),
        (CLUSTER + "?sharded=0", None, False),
        (CLUSTER, True, True),
        (CLUSTER + "?sharded=1", False, False),  # the argument wins over the URL
    ],
)
def test_sharded_mode_comes_from_the_cluster_url_or_the_argument(
    url: str, sharded: bool | None, expected: bool
) -> None:
    assert Target(url, sharded=sharded).sharded is expected
    assert Target(url, sharded=sharded).topology is Topology.CLUSTER


@pytest.mark.parametrize(
    "url",
    [
        "redis://127.0.0.1:6379/0?sharded=1",
        "unix:///run/redis.sock?sharded=1",
        "redis+sentinel://127.0.0.1:26379/mymaster?sharded=1",
    ],
)
def test_sharded_mode_in_a_url_without_a_cluster_is_refused(url: str) -> None:
    with pytest.raises(ValueError, match=r"only in a Redis Cluster.*redis\+cluster://"):
        HotConfig(url)
    with pytest.raises(ValueError, match=r"only in a Redis Cluster.*redis\+cluster://"):
        ConfigStore(url)


def test_sharded_true_without_a_cluster_is_refused_by_client_and_store(
    redis_client: redis.Redis, server: EmbeddedServer
) -> None:
    for url in (server.url, "redis+sentinel://127.0.0.1:26379/mymaster"):
        with pytest.raises(ValueError, match=r"sharded=True.*redis\+cluster://"):
            HotConfig(url, connection=Connection(sharded=True))
        with pytest.raises(ValueError, match=r"sharded=True.*redis\+cluster://"):
            ConfigStore(url, sharded=True)
    with pytest.raises(ValueError, match=r"sharded=True needs a redis\+cluster:// URL"):
        ConfigStore(client=redis_client, sharded=True)
    with pytest.raises(ValueError, match="not a Redis Cluster URL"):
        Target(server.url).shard_node("{hotconfig}:config:changes")
    # Off, the same server serves as before.
    with ConfigStore(server.url, sharded=False) as store, HotConfig(server.url) as config:
        assert config.wait_for_version(store.set("limit", 1), timeout=5)


def test_a_sharded_flag_that_is_not_a_boolean_is_refused() -> None:
    with pytest.raises(ValueError, match="sharded must be 1 or 0"):
        Target(CLUSTER + "?sharded=maybe")

"""One place resolves, validates and redacts Redis URLs, for the client and the store alike."""

from __future__ import annotations

from typing import Any

import pytest

from hotconfig import ConfigStore, HotConfig, Status
from hotconfig.connection import DEFAULT_URL, redacted
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

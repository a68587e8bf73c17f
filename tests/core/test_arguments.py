"""Mistakes in arguments fail at once with a ValueError that names the argument; secrets stay
hidden by whole-word names."""

from __future__ import annotations

import pytest

from hotconfig import (
    Change,
    ConfigStore,
    HotConfig,
    InvalidMessageError,
)
from hotconfig.security.redaction import add_secret_patterns, looks_secret

UNREACHABLE = "redis://127.0.0.1:1/0"


def test_scopes_given_as_a_string_is_one_scope() -> None:
    assert HotConfig(UNREACHABLE, scopes="service:billing").scopes == ("service:billing",)


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"scopes": []}, "scopes"),
        ({"scopes": ["no spaces"]}, "scopes"),
        ({"timings": {"poll_interval": 0}}, "poll_interval"),
        ({"timings": {"ping_interval": -1.0}}, "ping_interval"),
        ({"limits": {"max_message_bytes": 0}}, "max_message_bytes"),
        ({"limits": {"max_depth": True}}, "max_depth"),
        ({"connection": {"sharded": "yes"}}, "sharded"),
        ({"channel": 5}, "channel"),
        ({"channel": ""}, "channel"),
        ({"channel": "config changes"}, "channel"),
        ({"channel": "config:\x00changes"}, "channel"),
        ({"channel": "c" * 1025}, "channel"),
        ({"namespace": "a b"}, "namespace"),
        ({"namespace": ""}, "namespace"),
        ({"namespace": "{tag}"}, "namespace"),
        ({"service": 5}, "service"),
        ({"service": ""}, "service"),
        ({"health": "yes"}, "health"),
        ({"model": 5}, "model"),
        ({"model": dict}, "model"),
        ({"cache_path": 5}, "cache_path"),
        ({"cache_path": ""}, "cache_path"),
    ],
)
def test_a_bad_client_argument_names_itself(options: dict[str, object], named: str) -> None:
    with pytest.raises(ValueError, match=named) as info:
        HotConfig(UNREACHABLE, **options)  # type: ignore[arg-type]
    assert not isinstance(info.value, InvalidMessageError)


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"channel": 5}, "channel"),
        ({"channel": "a\nb"}, "channel"),
        ({"namespace": "a b"}, "namespace"),
        ({"history_size": 0}, "history_size"),
        ({"history_size": "10"}, "history_size"),
        ({"max_message_bytes": -1}, "max_message_bytes"),
    ],
)
def test_a_bad_store_construction_names_its_argument(
    options: dict[str, object], named: str
) -> None:
    with pytest.raises(ValueError, match=named):
        ConfigStore(UNREACHABLE, **options)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("call", "named"),
    [
        (lambda store: store.set("bad key", 1), "key"),
        (lambda store: store.set("ok", 1, scope="bad scope"), "scope"),
        (lambda store: store.delete(""), "key"),
        (lambda store: store.get("ok", scope="x y"), "scope"),
    ],
)
def test_a_bad_store_argument_names_itself(call: object, named: str) -> None:
    store = ConfigStore(UNREACHABLE)
    with pytest.raises(ValueError, match=f"^{named}:") as info:
        call(store)  # type: ignore[operator]
    assert not isinstance(info.value, InvalidMessageError)
    store.close()


@pytest.mark.parametrize(
    "key",
    [
        "db.password",
        "api_token",
        "stripeApiKey",
        "auth.client-secret",
        "OPENAI_API_KEY",
        "pwd.passwd",
    ],
)
def test_secret_names_are_matched_as_words(key: str) -> None:
    assert looks_secret(key)
    assert "hunter2" not in repr(Change(key, "hunter2", "hunter3", "global", 1, "set"))


@pytest.mark.parametrize("key", ["max_tokens", "tokenizer.name", "ai.model.default", "keyboard"])
def test_names_that_merely_contain_a_secret_word_are_shown(key: str) -> None:
    assert not looks_secret(key)
    assert "'visible'" in repr(Change(key, "visible", "visible", "global", 1, "set"))


def test_extra_secret_patterns_are_honoured() -> None:
    assert not looks_secret("billing.iban")
    add_secret_patterns("*.iban")
    assert looks_secret("billing.iban")
    assert looks_secret("Billing.IBAN")


def test_secrets_nested_in_a_value_are_hidden_too() -> None:
    change = Change(
        "upstream", {"url": "x", "auth": {"password": "s3cret"}}, None, "global", 1, "set"
    )
    assert "s3cret" not in repr(change)
    assert "'url': 'x'" in repr(change)

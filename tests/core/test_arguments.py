"""Mistakes in arguments fail at once with a ValueError that names the argument; secrets stay
hidden by whole-word names."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable

import pytest
import redis

from hotconfig import (
    Change,
    ConfigStore,
    Connection,
    HotConfig,
    InvalidMessageError,
    Limits,
    Timings,
)
from hotconfig.security.redaction import add_secret_patterns, looks_secret
from hotconfig.testing import EmbeddedServer
from tests.waiting import eventually

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
    ],
)
def test_a_bad_client_argument_names_itself(options: dict[str, object], named: str) -> None:
    with pytest.raises(ValueError, match=named) as info:
        HotConfig(UNREACHABLE, **options)  # type: ignore[arg-type]
    assert not isinstance(info.value, InvalidMessageError)


@pytest.mark.parametrize(
    ("make", "fix"),
    [
        (lambda: Timings(poll_interval=0), r"Timings\(poll_interval=5.0\)"),
        (lambda: Timings(probe_interval=-1), r"Timings\(probe_interval=30.0\)"),
        (lambda: Limits(max_batch=2.5), r"Limits\(max_batch=10000\)"),  # type: ignore[arg-type]
        (lambda: Connection(redis_kwargs=["ssl"]), r"redis_kwargs=\{'ssl_ca_certs'"),  # type: ignore[arg-type]
    ],
)
def test_a_bad_option_group_says_what_works(make: Callable[[], object], fix: str) -> None:
    with pytest.raises(ValueError, match=fix):
        make()


def test_the_option_groups_are_frozen_and_keep_no_reference_to_the_callers_dict() -> None:
    kwargs = {"ssl_ca_certs": "ca.pem", "password": "hunter2"}
    connection = Connection(redis_kwargs=kwargs)
    kwargs["ssl_ca_certs"] = "other.pem"
    assert connection.redis_kwargs["ssl_ca_certs"] == "ca.pem"
    assert "hunter2" not in repr(connection)
    with pytest.raises(dataclasses.FrozenInstanceError):
        Timings().poll_interval = 1.0  # type: ignore[misc]


def test_a_group_given_as_a_mapping_names_an_unknown_field() -> None:
    with pytest.raises(TypeError, match="Timings has no field poll_intervall"):
        HotConfig(UNREACHABLE, timings={"poll_intervall": 1.0})


def test_the_flat_arguments_of_earlier_releases_still_work_and_name_their_replacement(
    server: EmbeddedServer,
) -> None:
    with pytest.warns(DeprecationWarning, match="is deprecated") as w:
        config = HotConfig(server.url, max_depth=8, poll_interval=30.0, health=False)
    assert [str(m.message).split(": ")[1] for m in w] == [
        "pass limits=hotconfig.Limits(max_depth=...)",
        "pass timings=hotconfig.Timings(poll_interval=...)",
    ]
    assert all(m.filename == __file__ for m in w)  # the warning points at the caller's line
    nested: object = "x"
    for _ in range(10):
        nested = [nested]
    with config, redis.Redis(server.host, server.port) as publisher:
        publisher.publish("config:changes", json.dumps({"key": "deep", "value": nested}))
        assert eventually(lambda: config.stats.rejected == 1)
        assert str(config.stats.last_rejection).startswith("too_deep")


def test_an_unknown_argument_or_one_given_twice_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="unexpected keyword argument 'poll_intervall'"):
        HotConfig(UNREACHABLE, poll_intervall=1.0)
    with pytest.raises(TypeError, match="pass poll_interval inside timings="):
        HotConfig(UNREACHABLE, timings=Timings(), poll_interval=1.0)


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

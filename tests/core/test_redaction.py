"""Which values are never shown (hotconfig.security.redaction), and the URL redaction that
hotconfig.security exports beside it. Every output channel at once, on a real server, is
tests/faults/test_secrets.py; this file is the rules themselves."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from hotconfig.security import add_secret_patterns, looks_secret, redacted_url, redaction
from hotconfig.security.redaction import masked, shown


@pytest.fixture
def own_patterns() -> Iterator[None]:
    """Patterns added by the test are gone after it (they are process-wide)."""
    saved = list(redaction._extra)
    yield
    redaction._extra[:] = saved
    looks_secret.cache_clear()


@pytest.mark.parametrize(
    "key",
    [
        "DBPassword",  # an acronym before a word: DB, Password
        "SSH_PRIVATE_KEY",
        "accessKeyId",
        "x-api-key",
        "PRIVATEKEY",  # the joined spelling of a pair
        "credentialsFile",
        "vault.secrets.path",
        "smtp.passphrase",
        "oauth2_token",
    ],
)
def test_a_secret_word_anywhere_in_any_spelling_hides_the_value(key: str) -> None:
    assert looks_secret(key)


@pytest.mark.parametrize(
    "key",
    [
        "primary_key",  # "key" alone is not secret, only after api, private or access
        "api.version",
        "key.api",  # the pair in the other order
        "tokens",  # the count of tokens of an AI service, as in max_tokens
        "secretive",
        "passwordless.enabled",
        "",
    ],
)
def test_names_without_a_secret_word_are_shown(key: str) -> None:
    assert not looks_secret(key)


@pytest.mark.parametrize("key", ["db.password2", "dbPassword2", "api_key2"])
def test_a_numbered_secret_is_still_secret(key: str) -> None:
    assert looks_secret(key)


@pytest.mark.usefixtures("own_patterns")
def test_patterns_added_later_apply_to_names_already_asked_about() -> None:
    assert not looks_secret("billing.account_number")  # answered, and cached
    assert not looks_secret("SORTCODE")
    add_secret_patterns("*.ACCOUNT_NUMBER", "sortcode")  # several at once, in any case
    assert looks_secret("billing.account_number")
    assert looks_secret("Billing.Account_Number")
    assert looks_secret("SORTCODE")
    assert not looks_secret("billing.sortcode")  # a pattern matches the whole name


@pytest.mark.usefixtures("own_patterns")
def test_patterns_added_reach_keys_nested_inside_values() -> None:
    value = {"account": {"sortcode": "40-47-84", "bank": "X"}}
    assert masked(value) == value
    add_secret_patterns("sortcode")
    assert masked(value) == {"account": {"sortcode": "***", "bank": "X"}}


def test_masked_hides_secret_named_keys_at_any_depth_and_keeps_the_rest() -> None:
    value: dict[Any, Any] = {
        "url": "https://api",
        "auth": {"token": "t-1", "user": "svc"},
        "upstreams": [{"password": "p-1", "host": "a"}, ("x", {"apiKey": "k-1"})],
        3: "a key that is not a name",
    }
    assert masked(value) == {
        "url": "https://api",
        "auth": {"token": "***", "user": "svc"},
        "upstreams": [{"password": "***", "host": "a"}, ["x", {"apiKey": "***"}]],
        3: "a key that is not a name",
    }
    assert value["auth"]["token"] == "t-1"  # a copy: the value itself is untouched


def test_a_secret_key_hides_its_whole_value_whatever_its_type() -> None:
    assert masked({"credentials": {"user": "svc", "pw": "p-1"}}) == {"credentials": "***"}
    assert masked({"secrets": ["a", "b"]}) == {"secrets": "***"}


def test_a_value_nested_deeper_than_the_limit_is_hidden_rather_than_walked() -> None:
    deep: Any = "leaf"
    for _ in range(100):
        deep = [deep]
    walked = masked(deep)
    for _ in range(65):
        walked = walked[0]
    assert walked == "***"


def test_shown_hides_a_secret_and_cuts_a_long_value() -> None:
    assert shown("hunter2", secret=True) == "'***'"
    assert shown({"password": "hunter2"}, secret=False) == "{'password': '***'}"
    long = shown("x" * 200, secret=False, limit=20)
    assert (long, len(long)) == ("'" + "x" * 16 + "...", 20)
    assert shown(512, secret=False) == "512"


@pytest.mark.parametrize(
    ("url", "shown_as"),
    [
        (
            "redis+cluster://u:pw@h1:1,h2:2?sharded=1",
            "redis+cluster://u:***@h1:1,h2:2?sharded=1",
        ),
        (
            "redis+sentinel://:pw@h1:26379,h2:26379/mymaster/0",
            "redis+sentinel://:***@h1:26379,h2:26379/mymaster/0",
        ),
        ("redis://:p@ss@h/0", "redis://:***@h/0"),  # an unescaped @ in the password
        ("redis://u:@h/0", "redis://u:***@h/0"),  # an empty password is still not shown
        ("rediss://h:1/0?ssl_cert_reqs=none", "rediss://h:1/0?ssl_cert_reqs=none"),
        ("redis://[::1", "<unparsable URL>"),  # an error would quote it whole
    ],
)
def test_redacted_url_hides_the_password_of_every_topology(url: str, shown_as: str) -> None:
    assert redacted_url(url) == shown_as


def test_a_password_in_the_query_string_is_hidden_too() -> None:
    assert "s3cr3t" not in redacted_url("redis://h:1/0?password=s3cr3t")

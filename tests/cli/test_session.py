"""What every ``hotconfig`` command shares (hotconfig.cli.session): the app's defaults, the
store and fleet connections opened on first use with the group's options, and a
:class:`Group` that turns any server error into one line without the password."""

from __future__ import annotations

import inspect
from typing import Any

import click
import pytest
import redis
from click.testing import CliRunner

from hotconfig import ConfigStore
from hotconfig.cli.output import Output
from hotconfig.cli.session import (
    AppDefaults,
    Failure,
    Group,
    Session,
    pass_session,
)
from hotconfig.errors import HotConfigError
from hotconfig.testing.server import EmbeddedServer
from tests.conftest import ServerFactory
from tests.waiting import eventually

PASSWORD = "s3cr3t-pw"


def session_for(url: str | None, **store_options: Any) -> Session:
    out = Output(as_json=False, show_secrets=False)
    return Session(url, "shop", "shop:changes", out, store_options)


def test_app_defaults_keep_only_the_options_writes_must_share() -> None:
    client_options = {
        "channel": "c",
        "namespace": "n",
        "limits": {"max_message_bytes": 4096},
        "timings": {"poll_interval": 5.0},  # how the app's client follows: nothing to a write
        "model": object(),
    }
    defaults = AppDefaults.of("redis://h/0", client_options)
    assert defaults.url == "redis://h/0"
    assert dict(defaults.options) == {"channel": "c", "namespace": "n", "max_message_bytes": 4096}
    # What is kept, a ConfigStore takes.
    assert set(defaults.options) <= set(inspect.signature(ConfigStore).parameters)
    assert AppDefaults().options == {}


def test_without_a_url_the_session_takes_the_environment_s(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HOTCONFIG_URL", f"redis://:{PASSWORD}@127.0.0.1:1/3")
    session = session_for(None)
    assert session.url == f"redis://:{PASSWORD}@127.0.0.1:1/3"
    assert session.redacted == "redis://:***@127.0.0.1:1/3"


def test_a_url_that_is_not_redis_is_refused_before_anything_connects() -> None:
    with pytest.raises(ValueError, match="unsupported Redis URL"):
        session_for("http://example.invalid")


def test_the_store_writes_with_the_group_s_namespace_channel_and_options(
    server: EmbeddedServer, redis_client: redis.Redis
) -> None:
    session = session_for(server.url, max_message_bytes=2048)
    pubsub = redis_client.pubsub()
    pubsub.subscribe("shop:changes")
    try:
        store = session.store
        assert session.store is store  # opened once, on first use
        assert (store.channel, store.keyspace.namespace, store.max_message_bytes) == (
            "shop:changes",
            "shop",
            2048,
        )
        version = store.set("limit", 5)
        assert redis_client.get("{shop}:version") == str(version).encode()
        published: list[Any] = []

        def heard() -> bool:
            message = pubsub.get_message(timeout=0.05)
            if message is not None and message["type"] == "message":
                published.append(message["data"])
            return bool(published)

        assert eventually(heard)
        assert b'"limit"' in published[0]
    finally:
        pubsub.close()
        session.close()


def test_the_fleet_reads_the_group_s_namespace_and_channel(server: EmbeddedServer) -> None:
    session = session_for(server.url)
    try:
        fleet = session.fleet
        assert session.fleet is fleet
        assert (fleet.namespace, fleet.channel, fleet.health_channel) == (
            "shop",
            "shop:changes",
            "health:status:shop",
        )
        assert fleet.instances() == []
    finally:
        session.close()


def test_close_lets_go_of_every_connection_the_session_opened(
    server: EmbeddedServer, redis_client: redis.Redis
) -> None:
    def connections() -> int:
        return len(redis_client.client_list()) - 1  # not the one asking

    session = session_for(server.url)
    session.close()  # nothing opened yet: nothing to do
    session.store.set("a", 1)
    session.fleet.instances()
    assert connections() == 2
    session.close()
    assert eventually(lambda: connections() == 0)


# -- the Group --------------------------------------------------------------------------------


def group_raising(error: BaseException, url: str | None) -> click.Group:
    """A group whose one command, ``go``, raises ``error``; with ``url``, under a session."""

    @click.group(cls=Group)
    @click.pass_context
    def cli(ctx: click.Context) -> None:
        if url is not None:
            ctx.obj = session_for(url)

    @cli.command()
    def go() -> None:
        raise error

    return cli


@pytest.mark.parametrize(
    "error",
    [
        redis.ConnectionError("Error 111 connecting to 127.0.0.1:1. Connection refused."),
        redis.BusyLoadingError("LOADING Redis is loading the dataset in memory"),
        ConnectionRefusedError(111, "Connection refused"),
    ],
)
def test_a_server_error_is_one_line_naming_the_url_without_its_password(
    error: BaseException,
) -> None:
    url = f"redis://admin:{PASSWORD}@127.0.0.1:1/0"
    result = CliRunner().invoke(group_raising(error, url), ["go"])
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        f"Error: Redis at redis://admin:***@127.0.0.1:1/0: {error}"
    ]
    assert PASSWORD not in result.output


@pytest.mark.parametrize(
    ("error", "words"),
    [
        (
            redis.AuthenticationError("HELLO must be called with the client already authenticated"),
            "authentication failed: check the user name and password in the URL",
        ),
        (
            redis.exceptions.NoPermissionError("NOPERM this user has no permissions"),
            "permission denied (NOPERM)",
        ),
        (
            redis.exceptions.InvalidResponse('Protocol error, got "<" as reply type byte'),
            "does not speak the Redis protocol: check host and port",
        ),
    ],
)
def test_a_server_that_refuses_this_client_is_told_in_the_library_s_words(
    error: BaseException, words: str
) -> None:
    url = f"redis://admin:{PASSWORD}@127.0.0.1:1/0"
    result = CliRunner().invoke(group_raising(error, url), ["go"])
    assert result.exit_code == 2
    [line] = result.stderr.splitlines()
    assert line.startswith("Error: Redis at redis://admin:***@127.0.0.1:1/0 refused this client: ")
    assert words in line
    assert str(error) not in line


def test_a_server_error_before_any_session_says_redis_alone() -> None:
    result = CliRunner().invoke(group_raising(redis.TimeoutError("Timeout"), None), ["go"])
    assert (result.exit_code, result.stderr) == (2, "Error: Redis: Timeout\n")


@pytest.mark.parametrize(
    "error",
    [ValueError("key: must not be empty"), HotConfigError("the store refused the write")],
)
def test_a_usage_error_is_its_message_alone_with_exit_2(error: BaseException) -> None:
    result = CliRunner().invoke(group_raising(error, "redis://127.0.0.1:1/0"), ["go"])
    assert (result.exit_code, result.stderr) == (2, f"Error: {error}\n")


def test_any_other_error_is_not_hidden() -> None:
    result = CliRunner().invoke(group_raising(KeyError("bug"), "redis://127.0.0.1:1/0"), ["go"])
    assert result.exit_code == 1
    assert isinstance(result.exception, KeyError)


def test_a_failure_raised_by_a_command_exits_2() -> None:
    result = CliRunner().invoke(group_raising(Failure("no such scope"), None), ["go"])
    assert (result.exit_code, result.stderr) == (2, "Error: no such scope\n")


def test_pass_session_hands_a_command_the_group_s_session(server_factory: ServerFactory) -> None:
    server = server_factory(password=PASSWORD)
    seen: list[Session] = []

    @click.group(cls=Group)
    @click.pass_context
    def cli(ctx: click.Context) -> None:
        ctx.obj = session_for(server.url)
        ctx.call_on_close(ctx.obj.close)

    @cli.command()
    @pass_session
    def count(session: Session) -> None:
        seen.append(session)
        click.echo(session.store.set("n", 1))

    result = CliRunner().invoke(cli, ["count"], catch_exceptions=False)
    assert (result.exit_code, result.stdout) == (0, "1\n")
    [session] = seen
    assert session.redacted == f"redis://:***@{server.host}:{server.port}/0"

"""``manage.py hotconfig``: read and write the store with bounded waits, secrets never printed."""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.test import override_settings

from hotconfig import ConfigStore
from hotconfig.testing import EmbeddedServer
from hotconfig_django import config, lifecycle
from tests.integrations.django.processes import free_port
from tests.waiting import eventually


def run(*args: str) -> str:
    out = io.StringIO()
    call_command("hotconfig", *args, stdout=out)
    return out.getvalue().strip()


@pytest.fixture
def on_server(server: EmbeddedServer, hotconfig_settings: dict[str, Any]) -> Iterator[None]:
    with override_settings(HOTCONFIG={**hotconfig_settings, "URL": server.url}):
        yield


def test_set_then_get_a_value(on_server: None, server: EmbeddedServer) -> None:
    assert run("set", "banner.text", '"Sale"') == "banner.text set in global at version 1"
    assert run("set", "limits", '{"max": 5}', "--scope", "env:prod") == (
        "limits set in env:prod at version 2"
    )
    assert run("get", "banner.text") == '"Sale"'
    assert run("get", "limits", "--scope", "env:prod") == '{"max": 5}'
    with ConfigStore(server.url) as store:
        assert store.get("limits", scope="env:prod") == {"max": 5}


def test_a_value_that_is_not_json_says_how_to_quote_it(on_server: None) -> None:
    with pytest.raises(CommandError, match="quote it"):
        run("set", "greeting", "Bonjour")


def test_secret_values_are_never_printed(on_server: None) -> None:
    run("set", "payment.api_key", '"sk-live-123"')
    assert run("get", "payment.api_key") == "'***'"


def test_status_says_what_this_process_runs(on_server: None) -> None:
    run("set", "greeting", '"hi"')
    lines = run("status").splitlines()
    assert lines[1:] == [
        "store version: 1",
        "scopes in the store: global",
        "this process: a test run, listener: False",
    ]


def test_an_unreachable_server_is_a_clear_error_without_the_password(
    hotconfig_settings: dict[str, Any],
) -> None:
    down = f"redis://:hunter2@127.0.0.1:{free_port()}/0"
    with (
        override_settings(HOTCONFIG={**hotconfig_settings, "URL": down}),
        pytest.raises(CommandError, match="did not answer") as raised,
    ):
        run("--timeout", "0.5", "get", "greeting")
    assert "hunter2" not in str(raised.value)
    assert ":***@127.0.0.1" in str(raised.value)


def test_writes_are_signed_with_the_ring_the_clients_verify(
    server: EmbeddedServer, hotconfig_settings: dict[str, Any]
) -> None:
    ring = f"k1={base64.b64encode(b'a shared secret of 32 bytes!!!!').decode()}"
    signed = {**hotconfig_settings, "URL": server.url, "START": True, "SIGNING_KEYS": ring}
    with override_settings(HOTCONFIG=signed), ConfigStore(server.url) as unsigned:
        lifecycle.setup()
        assert run("set", "greeting", '"signed"') == "greeting set in global at version 1"
        assert config.wait_for_version(1, timeout=5)
        assert config.get("greeting") == "signed"
        # A write without the key is refused by the client; the signed value stays.
        unsigned.set("greeting", "forged")
        assert eventually(lambda: config.stats.rejected == 1)
        assert config.get("greeting") == "signed"

"""``hotconfig_django.config`` (hotconfig_django.lazy): one object for the whole process that
forwards to whichever client ``ready()`` built, and says what to do when there is none.

test_config.py reads through it in a real app (defaults, live changes, a read before setup in
a fresh interpreter); here is the forwarding itself and what binding and unbinding change.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.core.exceptions import AppRegistryNotReady

from hotconfig import Change, ConfigKeyError, HotConfig, NotConfiguredError
from hotconfig.testing import override
from hotconfig_django import LazyConfig, config, lifecycle
from hotconfig_django.errors import ConfigNotReadyError
from tests.integrations.django.live_settings import Settings


def test_every_read_is_the_bound_client_s(app: LazyConfig) -> None:
    client = app.client
    assert app is config
    assert app.get("greeting") == client.get("greeting") == "hello"
    assert app["items_per_page"] == 20
    assert "greeting" in app
    assert "no.such.key" not in app
    assert app.snapshot() is client.snapshot()
    assert app.settings is client.settings
    assert isinstance(app.settings, Settings)
    assert (app.version, app.status, app.stats) == (client.version, client.status, client.stats)
    assert app.wait_for_version(0, timeout=0)
    with pytest.raises(ConfigKeyError):
        app["no.such.key"]


def test_get_is_the_client_s_own_method_while_bound_and_not_after(app: LazyConfig) -> None:
    client = app.client
    assert app.get == client.get  # bound on the instance: no forwarding call per read
    lifecycle.teardown()
    assert "get" not in vars(app)
    lifecycle.setup()
    assert app.get == app.client.get
    assert app.client is not client  # a new setup, a new client


def test_receivers_registered_through_it_hear_the_client_s_changes(app: LazyConfig) -> None:
    heard: list[Change] = []

    @app.on_change("greeting")
    def on_greeting(change: Change) -> None:
        heard.append(change)

    with override(app.client, {"greeting": "bonjour"}):
        assert app.get("greeting") == "bonjour"
    assert [(c.old, c.new) for c in heard] == [("hello", "bonjour"), ("bonjour", "hello")]
    assert app.remove_receiver(on_greeting)
    assert not app.remove_receiver(on_greeting)
    with override(app.client, {"greeting": "hola"}):
        pass
    assert len(heard) == 2


def test_its_repr_says_whether_a_client_is_behind_it(app: LazyConfig) -> None:
    assert repr(app) == f"<hotconfig_django.config {app.client!r}>"
    assert repr(LazyConfig()) == "<hotconfig_django.config (not ready)>"


def test_an_object_no_setup_binds_says_what_to_do_as_the_errors_of_both_libraries() -> None:
    unbound = LazyConfig()  # the registry is loaded, but setup binds only the process's one
    with pytest.raises(ConfigNotReadyError, match="INSTALLED_APPS") as raised:
        unbound.get("greeting")
    assert isinstance(raised.value, NotConfiguredError)
    assert isinstance(raised.value, AppRegistryNotReady)
    with pytest.raises(ConfigNotReadyError):
        unbound.settings  # noqa: B018 - the read is the test


def test_a_failed_setup_is_raised_by_every_read_until_a_client_is_bound() -> None:
    failing, failure = LazyConfig(), RuntimeError("HOTCONFIG['MODEL'] cannot be imported")
    failing._fail(failure)
    for read in (lambda: failing.get("x"), lambda: failing.version, lambda: "x" in failing):
        with pytest.raises(RuntimeError) as raised:
            read()
        assert raised.value is failure
    client: HotConfig[Any] = HotConfig("redis://127.0.0.1:9/0")
    try:
        failing._bind(client)
        assert failing.get("x", "default") == "default"
    finally:
        failing._unbind()
        client.close()

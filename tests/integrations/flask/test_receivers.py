"""Change receivers the Flask way: on every app, on one app, inside that app's context."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from flask import current_app, g, has_app_context

import hotconfig
from hotconfig import ConfigStore, signals
from hotconfig_flask import HotConfig
from tests.integrations.flask.conftest import AppFactory


class Calls:
    """What receivers saw, appended from listener threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.seen: list[tuple[Any, ...]] = []

    def add(self, *call: Any) -> None:
        with self._lock:
            self.seen.append(call)


def test_each_receiver_runs_inside_the_app_the_change_belongs_to(
    make_app: AppFactory, store: ConfigStore
) -> None:
    ext: HotConfig[Any] = HotConfig()
    calls = Calls()

    @ext.on_change("greeting")  # before any app exists: the factory pattern
    def greeting_changed(change: hotconfig.Change) -> None:
        g.greeting_seen = change.new  # g is there: a real application context
        calls.add(current_app.config["HOTCONFIG_SERVICE"], change.new, ext.get("greeting"))

    billing = make_app(ext, HOTCONFIG_SCOPES=["global", "service:billing"], HOTCONFIG_SERVICE="b")
    search = make_app(ext, HOTCONFIG_SCOPES=["global", "service:search"], HOTCONFIG_SERVICE="s")
    torn_down: list[object] = []
    billing.teardown_appcontext(lambda exc: torn_down.append(g.get("greeting_seen")))
    version = store.set("greeting", "billing only", scope="service:billing")
    for app in (billing, search):
        assert app.extensions["hotconfig"].wait_for_version(version, timeout=5)
    # Only the app that follows the scope changed; its receiver read its own config.
    assert calls.seen == [("b", "billing only", "billing only")]
    assert torn_down == ["billing only"]  # the context was popped, teardown handlers and all

    version = store.set("greeting", "everyone")
    for app in (billing, search):
        assert app.extensions["hotconfig"].wait_for_version(version, timeout=5)
    assert sorted(calls.seen[1:]) == [("s", "everyone", "everyone")]  # billing's scope wins


def test_a_receiver_registered_after_init_app_reaches_the_apps_already_set_up(
    make_app: AppFactory, store: ConfigStore
) -> None:
    ext: HotConfig[Any] = HotConfig()
    first, second = make_app(ext), make_app(ext)
    calls = Calls()
    ext.on_change("feature.*")(lambda change: calls.add(change.key, change.old, change.new))
    version = store.set("feature.x", True)
    for app in (first, second):
        assert app.extensions["hotconfig"].wait_for_version(version, timeout=5)
    assert calls.seen == [("feature.x", None, True)] * 2


def test_a_receiver_for_one_app_only(make_app: AppFactory, store: ConfigStore) -> None:
    ext: HotConfig[Any] = HotConfig()
    first, second = make_app(ext), make_app(ext)
    calls = Calls()

    @ext.on_change("greeting", app=second)
    def only_second(change: hotconfig.Change) -> None:
        calls.add(current_app._get_current_object() is second, change.new, None)  # type: ignore[attr-defined]

    version = store.set("greeting", "v2")
    for app in (first, second):
        assert app.extensions["hotconfig"].wait_for_version(version, timeout=5)
    assert calls.seen == [(True, "v2", None)]
    third = make_app(ext)  # an app set up later does not get a receiver meant for one app
    version = store.set("greeting", "v3")
    assert third.extensions["hotconfig"].wait_for_version(version, timeout=5)
    assert second.extensions["hotconfig"].wait_for_version(version, timeout=5)
    assert calls.seen == [(True, "v2", None), (True, "v3", None)]


def test_with_app_context_false_a_receiver_runs_on_the_bare_listener_thread(
    make_app: AppFactory, store: ConfigStore
) -> None:
    ext: HotConfig[Any] = HotConfig()
    app = make_app(ext)
    calls = Calls()
    ext.on_change("greeting", app_context=False)(
        lambda change: calls.add(has_app_context(), change.new, None)
    )
    version = store.set("greeting", "v2")
    assert app.extensions["hotconfig"].wait_for_version(version, timeout=5)
    assert calls.seen == [(False, "v2", None)]


def test_an_async_receiver_is_refused_with_what_to_do_instead() -> None:
    ext: HotConfig[Any] = HotConfig()

    async def reload_model(change: hotconfig.Change) -> None: ...

    with pytest.raises(TypeError, match="make it a plain def"):
        ext.on_change("ai.*")(reload_model)


def test_blinker_signals_connect_to_one_apps_client_or_to_one_key(
    make_app: AppFactory, store: ConfigStore
) -> None:
    app = make_app(HotConfig())
    client = app.extensions["hotconfig"]
    calls = Calls()

    def on_status(sender: hotconfig.HotConfig[Any], old: Any, new: Any) -> None:
        calls.add("status", str(old), str(new))

    def on_greeting(key: str, change: hotconfig.Change) -> None:
        with app.app_context():  # blinker receivers get no context of their own
            calls.add(key, change.new, current_app.config["GREETING"])

    signals.status_changed.connect(on_status, sender=client)
    signals.config_changed.connect(on_greeting, sender="greeting")
    try:
        version = store.set("greeting", "v2")
        assert client.wait_for_version(version, timeout=5)
        client.close()
    finally:
        signals.status_changed.disconnect(on_status, sender=client)
        signals.config_changed.disconnect(on_greeting, sender="greeting")
    # The mirror runs before the signal: app.config already holds the new value.
    assert calls.seen == [("greeting", "v2", "v2"), ("status", "LIVE", "CLOSED")]

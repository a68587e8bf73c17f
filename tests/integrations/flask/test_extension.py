"""The extension in real Flask apps on a real server: factory pattern, several apps, errors."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from flask import Flask, current_app

import hotconfig
from hotconfig import ConfigStore, Status
from hotconfig.testing import EmbeddedServer
from hotconfig_flask import (
    AlreadyRegisteredError,
    HotConfig,
    NoAppContextError,
    NotRegisteredError,
)
from tests.conftest import ServerFactory
from tests.integrations.flask.apps import Settings, served
from tests.integrations.flask.conftest import AppFactory
from tests.waiting import eventually


def test_a_factory_app_serves_the_stored_value_and_each_change_in_its_views(
    make_app: AppFactory, store: ConfigStore
) -> None:
    store.set("greeting", "v1")
    ext: HotConfig[Settings] = HotConfig(model=Settings)
    app = make_app(ext)
    first = served(app)
    assert (first["greeting"], first["status"]) == ("v1", "LIVE")

    version = store.set("greeting", "v2")
    assert app.extensions["hotconfig"].wait_for_version(version, timeout=5)
    assert served(app)["greeting"] == "v2"
    with app.app_context():
        assert ext["greeting"] == "v2"
        assert ext.settings.greeting == "v2"
        assert ext.snapshot()["greeting"] == "v2"
        assert "greeting" in ext
        assert ext.client is app.extensions["hotconfig"]
        assert ext.get("unset.key", "fallback") == "fallback"
        with pytest.raises(hotconfig.ConfigKeyError, match=r"unset\.key"):
            ext["unset.key"]


def test_app_extensions_holds_a_started_core_client_built_from_app_config(
    make_app: AppFactory, server: EmbeddedServer
) -> None:
    app = make_app(HotConfig(), HOTCONFIG_SCOPES=["global", "service:billing"])
    client = app.extensions["hotconfig"]
    assert isinstance(client, hotconfig.HotConfig)
    assert client.status is Status.LIVE
    assert client.url == server.url
    assert client.scopes == ("global", "service:billing")
    assert client.service == app.name == app.config["HOTCONFIG_SERVICE"]
    # Defaults are written into app.config, so it shows what is in effect.
    assert app.config["HOTCONFIG_START"] is True
    assert app.config["HOTCONFIG_START_TIMEOUT"] == 5.0
    assert app.config["HOTCONFIG_OPTIONS"] == {}


def test_two_apps_in_one_process_follow_their_own_scopes_through_one_extension(
    make_app: AppFactory, store: ConfigStore
) -> None:
    store.set("greeting", "hello from global")
    store.set("greeting", "hello from billing", scope="service:billing")
    ext: HotConfig[Any] = HotConfig()
    billing = make_app(ext, HOTCONFIG_SCOPES=["global", "service:billing"])
    search = make_app(ext, HOTCONFIG_SCOPES=["global", "service:search"])
    assert billing.extensions["hotconfig"] is not search.extensions["hotconfig"]

    assert served(billing)["greeting"] == "hello from billing"
    assert served(search)["greeting"] == "hello from global"

    version = store.set("greeting", "hello from search", scope="service:search")
    assert search.extensions["hotconfig"].wait_for_version(version, timeout=5)
    assert billing.extensions["hotconfig"].wait_for_version(version, timeout=5)
    with search.app_context():
        assert ext.get("greeting") == "hello from search"
        # A context of the other app pushed inside this one: reads follow the innermost.
        with billing.app_context():
            assert ext.get("greeting") == "hello from billing"
        assert ext.get("greeting") == "hello from search"

    # Closing one app's client leaves the other app live.
    search.extensions["hotconfig"].close()
    version = store.set("greeting", "still live", scope="service:billing")
    assert billing.extensions["hotconfig"].wait_for_version(version, timeout=5)
    assert served(billing)["greeting"] == "still live"
    assert served(search)["greeting"] == "hello from search"


def test_calling_init_app_twice_on_one_app_is_refused(make_app: AppFactory) -> None:
    ext: HotConfig[Any] = HotConfig()
    app = make_app(ext)
    first = app.extensions["hotconfig"]
    with pytest.raises(AlreadyRegisteredError, match="init_app was called twice"):
        ext.init_app(app)
    with pytest.raises(AlreadyRegisteredError, match="already has a hotconfig client"):
        HotConfig(app)
    assert app.extensions["hotconfig"] is first


def test_reads_outside_an_app_context_say_so() -> None:
    ext: HotConfig[Any] = HotConfig()
    with pytest.raises(NoAppContextError, match="no Flask application context"):
        ext.get("greeting")
    with pytest.raises(NoAppContextError, match=r"with app.app_context\(\)"):
        ext["greeting"]
    with pytest.raises(NoAppContextError):
        ext.settings  # noqa: B018
    with pytest.raises(NoAppContextError):
        ext.snapshot()
    assert isinstance(NoAppContextError("x"), RuntimeError)


def test_reads_in_an_app_that_never_called_init_app_ask_whether_it_was_forgotten() -> None:
    ext: HotConfig[Any] = HotConfig()
    app = Flask("forgotten")
    with app.app_context():
        for read in (lambda: ext.get("k"), lambda: ext["k"], lambda: ext.settings, ext.snapshot):
            with pytest.raises(NotRegisteredError, match="did you forget to call init_app"):
                read()
        assert current_app.name == "forgotten"
    with pytest.raises(NotRegisteredError, match="'forgotten'"):
        ext.on_change("k", app=app)(print)


def test_a_model_given_to_the_extension_types_the_settings_of_every_app(
    make_app: AppFactory, store: ConfigStore
) -> None:
    store.set("feature_x", True)
    ext: HotConfig[Settings] = HotConfig(model=Settings)
    app = make_app(ext)
    with app.app_context():
        settings: Settings = ext.settings
        assert settings == Settings(greeting="hello", feature_x=True)
        assert app.config["HOTCONFIG_MODEL"] is Settings


def test_without_a_server_the_app_starts_on_model_defaults_within_the_timeout(
    server: EmbeddedServer,
) -> None:
    url = server.url
    server.stop()  # nothing answers on that port now
    ext: HotConfig[Settings] = HotConfig(model=Settings)
    app = Flask("offline")
    app.config.update(HOTCONFIG_URL=url, HOTCONFIG_START_TIMEOUT=0.2)
    ext.init_app(app)
    try:
        with app.app_context():
            assert ext.settings.greeting == "hello"
            assert ext.client.status is not Status.LIVE
    finally:
        app.extensions["hotconfig"].close()


def test_with_start_false_nothing_follows_the_store_until_the_app_starts_it(
    make_app: AppFactory, store: ConfigStore
) -> None:
    store.set("greeting", "stored")
    app = make_app(HotConfig(model=Settings), HOTCONFIG_START=False)
    client = app.extensions["hotconfig"]
    assert client.status is Status.STARTING
    assert served(app)["greeting"] == "hello"
    assert client.start(timeout=5)
    assert served(app)["greeting"] == "stored"


def test_without_hotconfig_url_the_app_follows_the_environment_variable(
    server: EmbeddedServer, store: ConfigStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOTCONFIG_URL", server.url)
    store.set("greeting", "from the environment")
    ext: HotConfig[Any] = HotConfig()
    app = Flask("twelve-factor")
    ext.init_app(app)
    try:
        assert app.config["HOTCONFIG_URL"] is None
        with app.app_context():
            assert ext.get("greeting") == "from the environment"
    finally:
        app.extensions["hotconfig"].close()


def test_reprs_never_show_the_password(server_factory: ServerFactory) -> None:
    guarded = server_factory(password="s3cret-Pa55")
    ext: HotConfig[Settings] = HotConfig(model=Settings)
    app = Flask("guarded")
    app.config["HOTCONFIG_URL"] = guarded.url
    ext.init_app(app)
    try:
        client = app.extensions["hotconfig"]
        assert client.status is Status.LIVE
        for text in (repr(ext), repr(client), str(client.stats)):
            assert "s3cret-Pa55" not in text
    finally:
        app.extensions["hotconfig"].close()


def test_a_wrong_password_is_reported_as_a_misconfiguration_to_fix(
    server_factory: ServerFactory, caplog: pytest.LogCaptureFixture
) -> None:
    guarded = server_factory(password="s3cret-Pa55")
    app = Flask("wrong-password")
    app.config.update(
        HOTCONFIG_URL=f"redis://:not-it@127.0.0.1:{guarded.port}/0", HOTCONFIG_START_TIMEOUT=2.0
    )
    with caplog.at_level(logging.WARNING, logger="hotconfig"):
        HotConfig(app)
    try:
        assert app.extensions["hotconfig"].status is Status.MISCONFIGURED
        assert "refused the client of the Flask app 'wrong-password'" in caplog.text
        assert "fix HOTCONFIG_URL" in caplog.text
        assert "not-it" not in caplog.text
    finally:
        app.extensions["hotconfig"].close()


def test_the_apps_client_reports_its_health_as_a_flask_instance(
    make_app: AppFactory, server: EmbeddedServer
) -> None:
    app = make_app(HOTCONFIG_SERVICE="shop")
    with hotconfig.Fleet(server.url) as fleet:
        assert eventually(lambda: [r.status for r in fleet.instances("shop")] == ["LIVE"])
        (report,) = fleet.instances("shop")
    assert (report.service, report.framework, report.status) == ("shop", "flask", "LIVE")
    assert report.version == app.extensions["hotconfig"].version

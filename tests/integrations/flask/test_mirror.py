"""HOTCONFIG_MIRROR: app.config keys that existing code reads stay equal to the live values."""

from __future__ import annotations

from typing import Any

from flask import current_app

from hotconfig import ConfigStore
from hotconfig.testing import override
from hotconfig_flask import HotConfig
from tests.integrations.flask.apps import Settings, served
from tests.integrations.flask.conftest import AppFactory


def test_a_mirrored_key_holds_the_stored_value_as_soon_as_init_app_returns(
    make_app: AppFactory, store: ConfigStore
) -> None:
    store.set("greeting", "stored")
    app = make_app()
    assert app.config["GREETING"] == "stored"


def test_code_that_reads_app_config_sees_every_change_without_an_edit(
    make_app: AppFactory, store: ConfigStore
) -> None:
    app = make_app(
        HotConfig(model=Settings),
        HOTCONFIG_MIRROR={"GREETING": "greeting", "FEATURE_X": "feature_x", "LIMIT": "limit"},
        LIMIT=100,
    )

    @app.get("/legacy")
    def legacy() -> dict[str, Any]:
        return {name: current_app.config[name] for name in ("GREETING", "FEATURE_X", "LIMIT")}

    client = app.extensions["hotconfig"]
    # Before any write: model defaults for fields; the app's own value for the untyped key.
    assert app.test_client().get("/legacy").json == {
        "GREETING": "hello",
        "FEATURE_X": False,
        "LIMIT": 100,
    }
    version = store.set_many({"greeting": "v2", "feature_x": True, "limit": 10})
    assert client.wait_for_version(version, timeout=5)
    assert app.test_client().get("/legacy").json == {
        "GREETING": "v2",
        "FEATURE_X": True,
        "LIMIT": 10,
    }
    assert served(app)["mirrored"] == "v2"


def test_a_deleted_key_gives_the_app_config_value_back(
    make_app: AppFactory, store: ConfigStore
) -> None:
    store.set("limit", 10)
    app = make_app(HOTCONFIG_MIRROR={"LIMIT": "limit", "BURST": "burst"}, LIMIT=5)
    client = app.extensions["hotconfig"]
    assert app.config["LIMIT"] == 10
    assert "BURST" not in app.config  # never set anywhere: nothing invented

    version = store.set("burst", 3)
    assert client.wait_for_version(version, timeout=5)
    assert app.config["BURST"] == 3

    store.delete("limit")
    version = store.delete("burst")
    assert client.wait_for_version(version, timeout=5)
    assert app.config["LIMIT"] == 5  # what the config file said
    assert "BURST" not in app.config


def test_one_hotconfig_key_may_feed_several_app_config_names(
    make_app: AppFactory, store: ConfigStore
) -> None:
    app = make_app(HOTCONFIG_MIRROR={"GREETING": "greeting", "WELCOME_TEXT": "greeting"})
    version = store.set("greeting", "hi")
    assert app.extensions["hotconfig"].wait_for_version(version, timeout=5)
    assert (app.config["GREETING"], app.config["WELCOME_TEXT"]) == ("hi", "hi")


def test_override_in_a_test_shows_in_the_mirrored_key_and_is_undone_after(
    make_app: AppFactory, store: ConfigStore
) -> None:
    store.set("greeting", "stored")
    app = make_app(HOTCONFIG_START=False)  # a unit test of the app needs no store at all
    # A model field always has a value: its default wins over the config file's.
    assert app.config["GREETING"] == "hello"
    with override(app.extensions["hotconfig"], {"greeting": "pinned"}):
        assert app.config["GREETING"] == "pinned"
        assert served(app)["greeting"] == "pinned"
    assert app.config["GREETING"] == "hello"

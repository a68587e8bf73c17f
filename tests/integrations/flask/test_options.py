"""The HOTCONFIG_* keys: what each one does, and the message a wrong one gets."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from pydantic import BaseModel

from hotconfig import ConfigStore
from hotconfig_flask import ExtensionSetupError, HotConfig
from tests.integrations.flask.apps import Settings
from tests.integrations.flask.conftest import AppFactory


class OtherSettings(BaseModel):
    colour: str = "blue"


class MoreSettings(Settings):
    extra: int = 7


class NoDefaults(Settings):
    required: int


def test_the_model_can_be_named_by_its_dotted_path(
    make_app: AppFactory, store: ConfigStore
) -> None:
    store.set("greeting", "typed")
    app = make_app(HotConfig(), HOTCONFIG_MODEL="tests.integrations.flask.apps:Settings")
    with app.app_context():
        assert app.extensions["hotconfig"].settings == Settings(greeting="typed")


def test_an_app_may_use_a_subclass_of_the_extension_model(make_app: AppFactory) -> None:
    ext: HotConfig[Settings] = HotConfig(model=Settings)
    app = make_app(ext, HOTCONFIG_MODEL=MoreSettings)
    with app.app_context():
        assert ext.settings == MoreSettings()


def test_a_string_is_one_scope(make_app: AppFactory) -> None:
    # FLASK_HOTCONFIG_SCOPES=env:prod reaches app.config as a string, not as a list.
    app = make_app(HotConfig(), HOTCONFIG_SCOPES="env:prod")
    assert app.extensions["hotconfig"].scopes == ("env:prod",)


def test_client_options_pass_through_to_the_core_client(
    make_app: AppFactory, store: ConfigStore
) -> None:
    app = make_app(
        HotConfig(),
        HOTCONFIG_OPTIONS={"namespace": "flask-tests", "channel": "flask-tests:changes"},
    )
    client = app.extensions["hotconfig"]
    # A write to the default namespace is not this app's; one to its own namespace is.
    store.set("greeting", "other namespace")
    with ConfigStore(client.url, namespace="flask-tests", channel="flask-tests:changes") as own:
        version = own.set("greeting", "own namespace")
    assert client.wait_for_version(version, timeout=5)
    with app.app_context():
        assert client.get("greeting") == "own namespace"


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"HOTCONFIG_SCOPES": 5}, r"list of scope names.*not 5"),
        ({"HOTCONFIG_SCOPES": []}, "at least one scope"),
        ({"HOTCONFIG_SCOPES": ["bad scope!"]}, "cannot create the client"),
        ({"HOTCONFIG_MODEL": "no.such.module:Settings"}, "cannot be imported"),
        ({"HOTCONFIG_MODEL": dict}, "pydantic BaseModel subclass"),
        ({"HOTCONFIG_MODEL": OtherSettings}, "not a subclass of Settings"),
        ({"HOTCONFIG_MODEL": NoDefaults}, "give every field a default"),
        ({"HOTCONFIG_OPTIONS": {"url": "redis://x"}}, "set HOTCONFIG_URL instead"),
        ({"HOTCONFIG_OPTIONS": {"poll_intervall": 1}}, r"unknown arguments \['poll_intervall'\]"),
        ({"HOTCONFIG_MIRROR": ["FEATURE_X"]}, r"map app.config keys to hotconfig keys"),
        ({"HOTCONFIG_MIRROR": {"HOTCONFIG_URL": "url"}}, "cannot write the extension's own"),
        ({"HOTCONFIG_START": "yes"}, "HOTCONFIG_START must be True or False"),
        ({"HOTCONFIG_START_TIMEOUT": -1}, "number of seconds"),
        ({"HOTCONFIG_SERVICE": ""}, "HOTCONFIG_SERVICE must be a non-empty string"),
    ],
)
def test_a_wrong_setting_fails_init_app_with_a_message_naming_it(
    config: dict[str, Any], message: str
) -> None:
    app = Flask("misconfigured")
    app.config.update({"HOTCONFIG_URL": "redis://127.0.0.1:1/0", **config})
    with pytest.raises(ExtensionSetupError, match=message):
        HotConfig(app, model=Settings)
    assert "hotconfig" not in app.extensions  # nothing half set up: a fixed config can retry
    assert isinstance(ExtensionSetupError("x"), ValueError)

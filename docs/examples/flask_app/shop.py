"""A factory-pattern Flask app whose configuration changes live, through ``hotconfig_flask``.

* ``hot.settings.banner`` is read in a view: typed, immutable, lock-free;
* ``MAINTENANCE_MODE`` is an ordinary ``app.config`` key, kept live by ``HOTCONFIG_MIRROR``,
  so the existing ``before_request`` hook needs no edit;
* a change receiver runs inside the app's context and logs through ``current_app.logger``.

Run it (``FLASK_HOTCONFIG_URL`` defaults to ``redis://localhost:6379/0``)::

    flask --app docs/examples/flask_app/shop.py run --debug
    gunicorn --preload -w 3 --chdir docs/examples/flask_app 'shop:create_app()'
    flask --app docs/examples/flask_app/shop.py hotconfig set banner.text 'Sale today'

``python docs/examples/flask_app/demo.py`` does all of it against an embedded Valkey.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from flask import Blueprint, Flask, current_app, jsonify
from flask.typing import ResponseReturnValue
from pydantic import BaseModel

import hotconfig
from hotconfig_flask import HotConfig


class Banner(BaseModel):
    text: str = "Welcome to the shop"
    colour: str = "blue"


class Model(BaseModel):
    default: str = "gpt-4o-mini"  # `hotconfig demo` changes it


class AI(BaseModel):
    model: Model = Model()


class Settings(BaseModel):
    banner: Banner = Banner()
    ai: AI = AI()
    maintenance: bool = False
    rate_limit: int = 100


hot: HotConfig[Settings] = HotConfig(model=Settings)
shop = Blueprint("shop", __name__)


@hot.on_change("rate_limit")
def rate_limit_changed(change: hotconfig.Change) -> None:
    """Runs on the listener thread, inside the app's context."""
    current_app.logger.warning("rate limit is now %s (was %s)", change.new, change.old)


@shop.before_app_request
def closed_for_maintenance() -> ResponseReturnValue | None:
    # Existing code that reads app.config: the mirror keeps the key live.
    if current_app.config["MAINTENANCE_MODE"]:
        return jsonify(error="back soon"), 503
    return None


@shop.get("/")
def index() -> ResponseReturnValue:
    settings = hot.settings  # one object: the banner's text and colour always belong together
    banner, model = settings.banner, settings.ai.model.default
    return jsonify(pid=os.getpid(), banner=banner.text, colour=banner.colour, model=model)


def create_app(test_config: Mapping[str, Any] | None = None) -> Flask:
    app = Flask(__name__)
    app.config.from_mapping(
        HOTCONFIG_SCOPES=["global", "service:shop"],
        HOTCONFIG_SERVICE="shop",
        HOTCONFIG_MIRROR={"MAINTENANCE_MODE": "maintenance"},
        MAINTENANCE_MODE=False,
    )
    app.config.from_prefixed_env()  # FLASK_HOTCONFIG_URL=redis://... and friends
    if test_config is not None:
        app.config.update(test_config)
    hot.init_app(app)
    app.register_blueprint(shop)
    return app

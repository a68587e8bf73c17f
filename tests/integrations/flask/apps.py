"""The factory-pattern Flask app the integration tests run, in-process and under real servers.

``create_app()`` takes no argument when a server loads it (``flask --app``, gunicorn's
``"module:create_app()"``): its ``HOTCONFIG_*`` keys then come from ``FLASK_HOTCONFIG_*``
environment variables (``app.config.from_prefixed_env``). ``GET /`` says which process
answered, what it serves through the extension and through the mirrored ``app.config`` key,
and when the value reached that process (``time.monotonic()``, one clock for every process
on the machine, so a test can compare it with the moment it wrote the value).
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from typing import Any

from flask import Flask, current_app, jsonify
from flask.typing import ResponseReturnValue
from pydantic import BaseModel

import hotconfig
from hotconfig_flask import HotConfig


class Settings(BaseModel):
    greeting: str = "hello"
    feature_x: bool = False


hot: HotConfig[Settings] = HotConfig(model=Settings)
_arrived: dict[str, float] = {}
_told: list[str] = []  # every change of greeting this process's receiver was told of


@hot.on_change("greeting")
def _remember_arrival(change: hotconfig.Change) -> None:
    """Called on the listener thread of whichever process applied the change."""
    _told.append(str(change.new))
    _arrived[str(change.new)] = time.monotonic()


def create_app(
    config: Mapping[str, Any] | None = None, *, extension: HotConfig[Any] | None = None
) -> Flask:
    ext = hot if extension is None else extension
    app = Flask(__name__)
    app.config["HOTCONFIG_MIRROR"] = {"GREETING": "greeting"}
    app.config["GREETING"] = "from the config file"
    app.config.from_prefixed_env()
    app.config.update(config or {})
    ext.init_app(app)

    @app.get("/")
    def served() -> ResponseReturnValue:
        greeting = ext.get("greeting")
        return jsonify(
            pid=os.getpid(),
            greeting=greeting,
            mirrored=current_app.config["GREETING"],
            status=str(ext.client.status),
            arrived=_arrived.get(str(greeting)),
            told=list(_told),
        )

    return app


def served(app: Flask) -> dict[str, Any]:
    """What ``GET /`` answers in ``app``, through Flask's test client."""
    response = app.test_client().get("/")
    assert response.status_code == 200, response.data
    body: dict[str, Any] = response.get_json()
    return body

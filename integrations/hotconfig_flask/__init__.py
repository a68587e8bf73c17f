"""hotconfig for Flask: live configuration in ``app.config`` style, one client per app.

::

    from hotconfig_flask import HotConfig

    hot = HotConfig()


    def create_app() -> Flask:
        app = Flask(__name__)
        app.config["HOTCONFIG_URL"] = "redis://localhost:6379/0"
        app.config["HOTCONFIG_MIRROR"] = {"FEATURE_X": "feature_x"}
        hot.init_app(app)

        @app.get("/")
        def index() -> str:
            return hot.get("greeting", "hello")  # the live value, read lock-free

        return app

See docs/flask.md for the ``HOTCONFIG_*`` keys, mirroring, signals, the CLI and testing.
"""

try:
    import flask  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised in a subprocess by the tests
    raise ImportError(
        "hotconfig_flask needs Flask, which is not installed: pip install 'hotconfig[flask]'"
    ) from exc

from .current import EXTENSION
from .errors import (
    AlreadyRegisteredError,
    ExtensionSetupError,
    NoAppContextError,
    NotRegisteredError,
)
from .extension import HotConfig

__all__ = [
    "EXTENSION",
    "AlreadyRegisteredError",
    "ExtensionSetupError",
    "HotConfig",
    "NoAppContextError",
    "NotRegisteredError",
]

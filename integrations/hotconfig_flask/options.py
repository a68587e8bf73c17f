"""The extension's settings: the ``HOTCONFIG_*`` keys of ``app.config``, read in one place.

Every key is given its default with ``app.config.setdefault`` (so ``app.config`` shows what is
in effect) and checked once, in ``init_app``: a wrong value fails the app's start with a
message naming the key, instead of a listener that retries a bad URL forever.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from flask import Flask
from pydantic import BaseModel
from werkzeug.utils import ImportStringError, import_string

import hotconfig

from .errors import ExtensionSetupError

__all__ = ["Options"]

# The HotConfig arguments HOTCONFIG_OPTIONS may pass; the rest have keys of their own.
_OWN_KEYS = frozenset({"url", "model", "scopes", "service"})
_GROUPS = (hotconfig.Timings, hotconfig.Limits, hotconfig.Connection)


@dataclass(frozen=True, slots=True)
class Options:
    """What ``init_app`` needs to build and start one app's client."""

    url: str | None
    model: type[BaseModel] | None
    scopes: tuple[str, ...]
    service: str
    client_options: Mapping[str, Any]
    mirror: Mapping[str, str]
    start: bool
    start_timeout: float | None

    @classmethod
    def from_app(cls, app: Flask, default_model: type[BaseModel] | None) -> Options:
        config = app.config
        config.setdefault("HOTCONFIG_URL", None)  # None: $HOTCONFIG_URL, else localhost
        config.setdefault("HOTCONFIG_MODEL", default_model)
        config.setdefault("HOTCONFIG_SCOPES", ["global"])
        config.setdefault("HOTCONFIG_SERVICE", app.name)
        config.setdefault("HOTCONFIG_OPTIONS", {})
        config.setdefault("HOTCONFIG_MIRROR", {})
        config.setdefault("HOTCONFIG_START", True)
        config.setdefault("HOTCONFIG_START_TIMEOUT", 5.0)
        return cls(
            url=_url(config["HOTCONFIG_URL"]),
            model=_model(config["HOTCONFIG_MODEL"], default_model),
            scopes=_scopes(config["HOTCONFIG_SCOPES"]),
            service=_text("HOTCONFIG_SERVICE", config["HOTCONFIG_SERVICE"]),
            client_options=_client_options(config["HOTCONFIG_OPTIONS"]),
            mirror=_mirror(config["HOTCONFIG_MIRROR"]),
            start=_flag("HOTCONFIG_START", config["HOTCONFIG_START"]),
            start_timeout=_timeout(config["HOTCONFIG_START_TIMEOUT"]),
        )


def _url(value: object) -> str | None:
    if value is None or value == "":
        return None
    return _text("HOTCONFIG_URL", value)


def _text(name: str, value: object) -> str:
    if not isinstance(value, str) or not value:
        raise ExtensionSetupError(f"{name} must be a non-empty string, not {type(value).__name__}")
    return value


def _flag(name: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise ExtensionSetupError(f"{name} must be True or False, not {value!r}")
    return value


def _timeout(value: object) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ExtensionSetupError(
            f"HOTCONFIG_START_TIMEOUT must be a number of seconds >= 0 (or None to wait "
            f"until the first snapshot), not {value!r}"
        )
    return float(value)


def _model(value: object, default_model: type[BaseModel] | None) -> type[BaseModel] | None:
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = import_string(value)
        except ImportStringError as exc:
            raise ExtensionSetupError(
                f"HOTCONFIG_MODEL {value!r} cannot be imported ({exc.exception}); give a "
                "class or its dotted path, e.g. 'myapp.settings:Settings'"
            ) from None
    if not (isinstance(value, type) and issubclass(value, BaseModel)):
        raise ExtensionSetupError(
            f"HOTCONFIG_MODEL must be a pydantic BaseModel subclass or its dotted path, "
            f"not {value!r}"
        )
    if default_model is not None and not issubclass(value, default_model):
        raise ExtensionSetupError(
            f"HOTCONFIG_MODEL {value.__name__} is not a subclass of {default_model.__name__}, "
            "the model this extension was created with; use that model (or a subclass), "
            "or create the extension without model="
        )
    return value


def _scopes(value: object) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)  # one scope, as hotconfig.HotConfig reads a string
    if not isinstance(value, Iterable):
        raise ExtensionSetupError(
            f"HOTCONFIG_SCOPES must be a list of scope names, low to high precedence, e.g. "
            f"['global', 'service:billing'], not {value!r}"
        )
    scopes = tuple(value)
    if not scopes or not all(isinstance(scope, str) for scope in scopes):
        raise ExtensionSetupError(
            f"HOTCONFIG_SCOPES must name at least one scope, each a string, not {value!r}"
        )
    return scopes


def _client_options(value: object) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise ExtensionSetupError(
            f"HOTCONFIG_OPTIONS must be a dict of hotconfig.HotConfig arguments, not {value!r}"
        )
    parameters = inspect.signature(hotconfig.HotConfig).parameters.values()
    accepted = {p.name for p in parameters if p.kind is p.KEYWORD_ONLY} - _OWN_KEYS
    # The flat arguments of earlier releases: HotConfig still takes them, with a warning.
    flat = {f.name for group in _GROUPS for f in dataclasses.fields(group)}
    unknown = sorted(set(value) - accepted - flat)
    if unknown:
        own = sorted(name for name in unknown if name in _OWN_KEYS)
        hint = (
            f"; set {', '.join('HOTCONFIG_' + name.upper() for name in own)} instead"
            if own
            else f"; hotconfig.HotConfig accepts {', '.join(sorted(accepted))}"
        )
        raise ExtensionSetupError(f"HOTCONFIG_OPTIONS has unknown arguments {unknown}{hint}")
    return dict(value)


def _mirror(value: object) -> dict[str, str]:
    if not isinstance(value, Mapping) or not all(
        isinstance(name, str) and isinstance(key, str) for name, key in value.items()
    ):
        raise ExtensionSetupError(
            "HOTCONFIG_MIRROR must map app.config keys to hotconfig keys, e.g. "
            f"{{'FEATURE_X': 'feature_x'}}, not {value!r}"
        )
    own = sorted(name for name in value if name.startswith("HOTCONFIG_"))
    if own:
        raise ExtensionSetupError(
            f"HOTCONFIG_MIRROR cannot write the extension's own settings {own}; mirror "
            "into other app.config keys"
        )
    return dict(value)

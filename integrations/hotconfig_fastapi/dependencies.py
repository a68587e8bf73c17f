"""Dependencies that find the app's client from the request::

    Settings = Annotated[MySettings, Depends(get_settings)]


    @app.get("/model")
    def model(settings: Settings) -> str:
        return settings.ai.model.default

FastAPI resolves a dependency once per request, so every ``Depends(get_settings)`` of one
request gets the same immutable settings object: one consistent view, even if a change lands
while the request runs. ``Depends(hot.get_settings)`` on the :class:`Lifespan` itself is the
same, typed by the lifespan's model without an annotation.

They are ``async def`` although they never wait: FastAPI runs a plain ``def`` dependency in
its thread pool, a hop that costs more than the read itself.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request

from hotconfig import HotConfig, HotConfigError, Snapshot

from .lifespan import STATE_KEY

__all__ = ["NoClientError", "get_config", "get_settings", "get_snapshot"]


class NoClientError(HotConfigError, RuntimeError):
    """A dependency ran in an app whose lifespan did not start a client."""


async def get_config(request: Request) -> HotConfig[Any]:
    """The app's :class:`hotconfig.HotConfig` (from the lifespan state, else ``app.state``)."""
    return _client(request)


def _client(request: Request) -> HotConfig[Any]:
    state = request.scope.get("state") or {}
    config = state.get(STATE_KEY) or getattr(request.app.state, STATE_KEY, None)
    if not isinstance(config, HotConfig):
        raise NoClientError(
            "no HotConfig on this app: did you forget FastAPI(lifespan=hotconfig_fastapi."
            "lifespan(...)), or to enter it in your own lifespan?"
        )
    return config


async def get_settings(request: Request) -> Any:
    """The typed settings as they are now; the same object for the whole request."""
    settings = _client(request).settings
    if settings is None:
        raise TypeError("get_settings needs a model: hotconfig_fastapi.lifespan(model=...)")
    return settings


async def get_snapshot(request: Request) -> Snapshot:
    """The current immutable mapping of every effective value, for untyped reads."""
    return _client(request).snapshot()

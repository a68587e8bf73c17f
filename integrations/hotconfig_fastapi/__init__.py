"""hotconfig for FastAPI: a lifespan, dependencies, async receivers, ``/health`` and ``/stream``,
and the channel bridge's SSE and WebSocket endpoints (:func:`bridge_router`).

::

    import hotconfig_fastapi
    from fastapi import Depends, FastAPI

    hot = hotconfig_fastapi.lifespan(model=Settings)
    app = FastAPI(lifespan=hot)
    app.include_router(hotconfig_fastapi.router(stream_keys=["ui.*"]))


    @app.get("/")
    def index(settings: Settings = Depends(hot.get_settings)) -> dict[str, str]:
        return {"banner": settings.ui.banner}
"""

from __future__ import annotations

try:
    import fastapi  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised by a subprocess test
    raise ImportError(
        "hotconfig_fastapi needs FastAPI, which is not installed: pip install 'hotconfig[fastapi]'"
    ) from exc

from .bridge import bridge_router
from .changes import ChangeFeed, StreamCounts
from .dependencies import NoClientError, get_config, get_settings, get_snapshot
from .lifespan import Lifespan, lifespan
from .router import EventStreamResponse, router

__all__ = [
    "ChangeFeed",
    "EventStreamResponse",
    "Lifespan",
    "NoClientError",
    "StreamCounts",
    "bridge_router",
    "get_config",
    "get_settings",
    "get_snapshot",
    "lifespan",
    "router",
]

"""The app the tests serve with real uvicorn and gunicorn processes.

Configured by environment variables, as a deployed service is: ``HOTCONFIG_URL``, and for the
stream ``STREAM_KEYS`` (comma-separated patterns); the channel bridge serves every channel under
``/bridge``; ``STREAM_MAX_BUFFER`` (bytes) and
``STREAM_KEEPALIVE`` (seconds). ``GET /served`` says which worker answered, what it serves,
when that value reached the worker's event loop (``time.monotonic()``, one clock for every
process on the machine) and whether the async receiver that saw it ran on the loop.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from typing import Annotated, Any

from fastapi import Depends, FastAPI
from pydantic import BaseModel

import hotconfig
import hotconfig_fastapi
from hotconfig.bridge import Bridge


class Settings(BaseModel):
    greeting: str = "hello"


hot = hotconfig_fastapi.lifespan(
    os.environ["HOTCONFIG_URL"], model=Settings, service="served-app", start_timeout=5.0
)
app = FastAPI(lifespan=hot)
app.include_router(
    hotconfig_fastapi.router(
        stream_keys=[key for key in os.environ.get("STREAM_KEYS", "").split(",") if key],
        max_buffer_bytes=int(os.environ.get("STREAM_MAX_BUFFER", str(1 << 20))),
        keepalive=float(os.environ.get("STREAM_KEEPALIVE", "15")),
    )
)

# The channel bridge beside the config stream: ``GET /bridge/sse/{channel}`` for anyone.
bridge = Bridge(os.environ["HOTCONFIG_URL"])
app.include_router(
    hotconfig_fastapi.bridge_router(bridge, prefix="/bridge", authorize=lambda _r, _c: True)
)

_arrived: dict[str, dict[str, Any]] = {}


@hot.on_change("greeting")
async def remember_arrival(change: hotconfig.Change) -> None:
    """Runs on the app's event loop (the core schedules it there from its listener thread)."""
    asyncio.get_running_loop()  # raises if there is none
    _arrived[str(change.new)] = {
        "at": time.monotonic(),
        "thread": threading.current_thread().name,
        "on_main_thread": threading.current_thread() is threading.main_thread(),
    }


@app.get("/served")
def served(settings: Annotated[Settings, Depends(hot.get_settings)]) -> dict[str, Any]:
    return {
        "pid": os.getpid(),
        "greeting": settings.greeting,
        "version": hot.config.version,
        "status": str(hot.config.status),
        "arrived": _arrived.get(settings.greeting),
    }

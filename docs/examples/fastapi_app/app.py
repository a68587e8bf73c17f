"""A FastAPI app whose page shows a setting change live, through ``/stream``.

Run it (from the repository root) against any Redis or Valkey::

    HOTCONFIG_URL=redis://127.0.0.1:6379/0 \
        uvicorn --app-dir docs/examples/fastapi_app app:app --workers 2

open http://127.0.0.1:8000/ and change the banner or the AI model, from any publisher::

    redis-cli PUBLISH config:changes '{"key": "ui.banner", "value": "Hello"}'
    python -c 'import hotconfig; hotconfig.ConfigStore().set("ui.banner", "Hi")'
    hotconfig set ai.model.default gpt-4o --wait   # what `hotconfig demo` changes
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated, Literal

from fastapi import Depends, FastAPI
from fastapi.responses import HTMLResponse
from pydantic import BaseModel

import hotconfig
import hotconfig_fastapi

log = logging.getLogger("example")


class UI(BaseModel):
    banner: str = "Welcome"
    color: str = "#2563eb"


class AIModel(BaseModel):
    # The models this service is contracted for: any other value is refused, the old one
    # stays, and the refusal shows in `hotconfig status` with its reason.
    default: Literal["gpt-4o-mini", "gpt-4o"] = "gpt-4o-mini"


class AI(BaseModel):
    model: AIModel = AIModel()


class Settings(BaseModel):
    ui: UI = UI()
    ai: AI = AI()
    checkout_enabled: bool = True


# The client follows HOTCONFIG_URL; it starts in each worker when that worker's app starts.
hot = hotconfig_fastapi.lifespan(model=Settings, service="example")
app = FastAPI(lifespan=hot)
# /health for the load balancer; /stream sends the ui.* keys and the AI model (and only those)
# to browsers.
app.include_router(hotconfig_fastapi.router(stream_keys=["ui.*", "ai.model.default"]))

CurrentSettings = Annotated[Settings, Depends(hot.get_settings)]
PAGE = (Path(__file__).parent / "index.html").read_text()


@hot.on_change("ui.*")
async def ui_changed(change: hotconfig.Change) -> None:
    """Runs on this worker's event loop, never on hotconfig's listener thread."""
    log.info("ui changed: %r", change)


@app.get("/", response_class=HTMLResponse)
def page() -> str:
    return PAGE


@app.get("/api/checkout")
def checkout(settings: CurrentSettings) -> dict[str, bool | str]:
    # One settings object for the whole request: a change mid-request cannot mix two versions.
    return {
        "enabled": settings.checkout_enabled,
        "banner": settings.ui.banner,
        "model": settings.ai.model.default,
    }

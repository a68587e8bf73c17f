"""The lifespan, the dependencies and async receivers, in real FastAPI apps on a real server.

Starlette's TestClient runs the app and its lifespan on an event loop of its own thread, as a
server would; the store writes go to a real Valkey or Redis.

No ``from __future__ import annotations`` here: the apps are built inside the tests, and
FastAPI reads a string annotation such as ``Depends(hot.get_settings)`` in the module's
globals, where a test's local ``hot`` is not.
"""

import asyncio
import os
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

import pytest
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.testclient import TestClient
from pydantic import BaseModel

import hotconfig
import hotconfig_fastapi
from hotconfig import ConfigStore, HotConfig, Status
from hotconfig.testing import EmbeddedServer, free_port
from tests.conftest import ServerFactory
from tests.integrations.fastapi.servers import ROOT
from tests.waiting import eventually


class AI(BaseModel):
    model: str = "gpt-4o-mini"


class Settings(BaseModel):
    ai: AI = AI()
    greeting: str = "hello"


SettingsDep = Annotated[Settings, Depends(hotconfig_fastapi.get_settings)]


@pytest.fixture
def store(server: EmbeddedServer) -> Iterator[ConfigStore]:
    with ConfigStore(server.url) as store:
        yield store


def test_get_settings_serves_the_typed_model_and_each_change_from_the_next_request(
    server: EmbeddedServer, store: ConfigStore
) -> None:
    store.set("ai.model", "gpt-4o")
    hot = hotconfig_fastapi.lifespan(server.url, model=Settings)
    app = FastAPI(lifespan=hot)

    @app.get("/model")
    def model(settings: SettingsDep) -> str:
        return settings.ai.model

    @app.get("/typed")
    def typed(settings: Annotated[Settings, Depends(hot.get_settings)]) -> str:
        return settings.greeting

    with TestClient(app) as client:
        assert client.get("/model").json() == "gpt-4o"
        assert client.get("/typed").json() == "hello"
        version = store.set("ai.model", "gpt-5")
        assert hot.config.wait_for_version(version, timeout=5)
        assert client.get("/model").json() == "gpt-5"
    assert hot.config.status is Status.CLOSED  # the lifespan made it, the lifespan closed it
    with pytest.raises(hotconfig.ClientClosedError, match="make a new lifespan"), TestClient(app):
        pass


def test_one_request_sees_one_settings_object_even_when_a_change_lands_during_it(
    server: EmbeddedServer, store: ConfigStore
) -> None:
    store.set("greeting", "before")
    hot = hotconfig_fastapi.lifespan(server.url, model=Settings)
    app = FastAPI(lifespan=hot)

    def first_half(settings: SettingsDep) -> str:
        # A change arrives while the request is being handled.
        version = store.set("greeting", "after")
        assert hot.config.wait_for_version(version, timeout=5)
        return settings.greeting

    def second_half(settings: SettingsDep) -> str:
        return settings.greeting

    @app.get("/both")
    def both(
        first: Annotated[str, Depends(first_half)],
        second: Annotated[str, Depends(second_half)],
        config: Annotated[HotConfig[Any], Depends(hotconfig_fastapi.get_config)],
    ) -> list[str]:
        return [first, second, config.settings.greeting]

    with TestClient(app) as client:
        assert client.get("/both").json() == ["before", "before", "after"]
        assert client.get("/both").json() == ["after", "after", "after"]


def test_an_async_receiver_runs_on_the_apps_event_loop(
    server: EmbeddedServer, store: ConfigStore
) -> None:
    app_loop: list[asyncio.AbstractEventLoop] = []
    calls: list[tuple[str, asyncio.AbstractEventLoop, str]] = []

    @asynccontextmanager
    async def own_lifespan(app: FastAPI) -> AsyncIterator[None]:
        app_loop.append(asyncio.get_running_loop())
        yield

    hot = hotconfig_fastapi.lifespan(server.url, model=Settings, lifespan=own_lifespan)
    app = FastAPI(lifespan=hot)

    @hot.on_change("greeting")
    async def greeting_changed(change: hotconfig.Change) -> None:
        await asyncio.sleep(0)  # really a coroutine on a running loop
        calls.append((change.new, asyncio.get_running_loop(), threading.current_thread().name))

    with TestClient(app):
        store.set("greeting", "hi")
        assert eventually(lambda: len(calls) == 1)
        new, loop, thread = calls[0]
        assert new == "hi"
        assert loop is app_loop[0]
        assert not thread.startswith("hotconfig-listener")


def test_an_async_handler_awaits_its_own_write_to_be_live(
    server: EmbeddedServer, store: ConfigStore
) -> None:
    hot = hotconfig_fastapi.lifespan(server.url, model=Settings)
    app = FastAPI(lifespan=hot)

    @app.post("/greeting/{value}")
    async def set_greeting(value: str) -> dict[str, Any]:
        version = await asyncio.to_thread(store.set, "greeting", value)
        # Read-your-write on this instance, awaited: the loop serves other requests meanwhile.
        live = await hot.config.wait_for_version_async(version, timeout=5)
        never = await hot.config.wait_for_version_async(version + 1000, timeout=0.05)
        return {"live": live, "never": never, "greeting": hot.config.settings.greeting}

    with TestClient(app) as client:
        assert client.post("/greeting/hey").json() == {
            "live": True,
            "never": False,
            "greeting": "hey",
        }


def test_a_stuck_async_receiver_does_not_delay_the_others(
    server: EmbeddedServer, store: ConfigStore
) -> None:
    hot = hotconfig_fastapi.lifespan(server.url, model=Settings)
    app = FastAPI(lifespan=hot)
    seen: list[str] = []
    stuck = 0

    @hot.on_change("greeting")
    async def never_finishes(change: hotconfig.Change) -> None:
        nonlocal stuck
        stuck += 1
        await asyncio.Event().wait()

    @hot.on_change("greeting")
    async def quick(change: hotconfig.Change) -> None:
        seen.append(change.new)

    with TestClient(app) as client:
        for value in ("one", "two", "three"):
            store.set("greeting", value)
            assert eventually(lambda value=value: value in seen)  # type: ignore[misc]
        assert client.get("/").status_code == 404  # the loop still serves requests
    assert stuck >= 1


def test_the_apps_own_lifespan_runs_inside_with_the_client_live(
    server: EmbeddedServer, store: ConfigStore
) -> None:
    store.set("greeting", "ready")
    inside: dict[str, Any] = {}

    @asynccontextmanager
    async def own_lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
        config = app.state.hotconfig
        inside.update(status=config.status, greeting=config.settings.greeting)
        yield {"db": "pool"}
        inside["closed_after_me"] = config.status is not Status.CLOSED

    hot = hotconfig_fastapi.lifespan(server.url, model=Settings, lifespan=own_lifespan)
    app = FastAPI(lifespan=hot)

    @app.get("/state")
    def state(request: Request, settings: SettingsDep) -> list[str]:
        return [request.state.db, settings.greeting]

    with TestClient(app) as client:
        assert client.get("/state").json() == ["pool", "ready"]
    assert inside == {"status": Status.LIVE, "greeting": "ready", "closed_after_me": True}


def test_the_lifespan_entered_inside_the_apps_own_or_on_a_router(
    server: EmbeddedServer, store: ConfigStore
) -> None:
    store.set("greeting", "nested")
    hot = hotconfig_fastapi.lifespan(server.url, model=Settings)

    @asynccontextmanager
    async def own_lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
        async with hot(app) as state:
            yield {**state, "extra": 1}

    wrapping = FastAPI(lifespan=own_lifespan)
    on_router = FastAPI()
    on_router.include_router(APIRouter(lifespan=hotconfig_fastapi.lifespan(server.url)))
    for app in (wrapping, on_router):

        @app.get("/greeting")
        def greeting(
            config: Annotated[HotConfig[Any], Depends(hotconfig_fastapi.get_config)],
        ) -> Any:
            return config.get("greeting")

        with TestClient(app) as client:
            assert client.get("/greeting").json() == "nested"


def test_an_absent_redis_does_not_stall_startup_beyond_start_timeout() -> None:
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.01)

    hot = hotconfig_fastapi.lifespan(
        f"redis://127.0.0.1:{free_port()}/0", model=Settings, start_timeout=0.5
    )

    @asynccontextmanager
    async def own_lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
        ticker = asyncio.create_task(tick())
        async with hot(app) as state:
            # The loop kept running while the client tried to reach a server that is not there.
            inside = ticks
            yield state
        ticker.cancel()
        assert inside > 5

    app = FastAPI(lifespan=own_lifespan)
    app.include_router(hotconfig_fastapi.router())

    @app.get("/greeting")
    def greeting(settings: SettingsDep) -> str:
        return settings.greeting

    with TestClient(app) as client:
        assert client.get("/greeting").json() == "hello"  # the model default
        response = client.get("/health")
        assert response.status_code == 503
        assert response.json()["status"] == "STARTING"


def test_a_client_passed_in_is_started_and_left_open(server: EmbeddedServer) -> None:
    config: HotConfig[Settings] = HotConfig(server.url, model=Settings)
    try:
        hot = hotconfig_fastapi.lifespan(config=config)
        with TestClient(FastAPI(lifespan=hot)):
            assert config.status is Status.LIVE
        assert config.status is Status.LIVE
    finally:
        config.close()


def test_a_dependency_without_the_lifespan_says_what_to_do() -> None:
    app = FastAPI()

    @app.get("/greeting")
    def greeting(settings: SettingsDep) -> str:
        return settings.greeting

    with (
        TestClient(app) as client,
        pytest.raises(hotconfig_fastapi.NoClientError, match="lifespan=hotconfig_fastapi"),
    ):
        client.get("/greeting")


def test_importing_without_fastapi_fails_with_one_clear_message() -> None:
    code = "import sys; sys.modules['fastapi'] = None; import hotconfig_fastapi"
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False,
        env={**os.environ, "PYTHONWARNINGS": "error"},
    )  # fmt: skip
    assert result.returncode == 1
    last_line = result.stderr.strip().splitlines()[-1]
    assert last_line == (
        "ImportError: hotconfig_fastapi needs FastAPI, which is not installed: "
        "pip install 'hotconfig[fastapi]'"
    )


def test_without_an_allow_list_there_is_no_stream(server: EmbeddedServer) -> None:
    app = FastAPI(lifespan=hotconfig_fastapi.lifespan(server.url))
    app.include_router(hotconfig_fastapi.router())
    with TestClient(app) as client:
        assert client.get("/stream").status_code == 404
        assert client.get("/health").status_code == 200


def test_the_public_names_are_pinned() -> None:
    assert hotconfig_fastapi.__all__ == [
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
    for name in hotconfig_fastapi.__all__:
        assert getattr(hotconfig_fastapi, name).__module__.startswith("hotconfig_fastapi.")


def test_health_tells_a_wrong_password_apart_and_never_shows_it(
    server_factory: ServerFactory,
) -> None:
    guarded = server_factory(password="right-password")
    url = guarded.url.replace("right-password", "wrong-password")
    hot = hotconfig_fastapi.lifespan(url, start_timeout=5.0)
    app = FastAPI(lifespan=hot)
    app.include_router(hotconfig_fastapi.router())
    with TestClient(app) as client:
        response = client.get("/health")
    assert response.status_code == 503
    assert response.json()["status"] == "MISCONFIGURED"
    assert "password" not in response.text

"""Several worker processes, as services are deployed: each worker starts its own client in its
own lifespan and serves a change within a second; ``--reload`` restarts with a stream open.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from hotconfig import ConfigStore
from hotconfig.testing import EmbeddedServer, free_port
from tests.integrations.fastapi.servers import (
    SERVED_APP,
    Served,
    gunicorn_command,
    serving,
    uvicorn_app,
)
from tests.integrations.fastapi.sse_client import EventReader
from tests.waiting import eventually

pytestmark = pytest.mark.slow

WORKERS = 2
FRESHNESS = 1.0  # seconds from the write until every worker serves the new value


@pytest.fixture
def store(server: EmbeddedServer) -> Iterator[ConfigStore]:
    with ConfigStore(server.url) as store:
        store.set("greeting", "v1")
        yield store


# One client for every request: a new one loads a TLS context each time (tens of ms), which
# would be counted in the times measured here. "connection: close" still lets any worker answer.
_http = httpx.Client(timeout=5, verify=False)


@pytest.fixture(scope="module", autouse=True)
def _close_http_client() -> Iterator[None]:
    yield
    _http.close()


def served(app: Served) -> dict[str, Any]:
    """One request on a fresh connection, so that any worker may take it."""
    response = _http.get(app.url + "/served", headers={"connection": "close"})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def live_workers(app: Served, greeting: str, timeout: float = 30.0) -> dict[int, dict[str, Any]]:
    """Ask until every worker has answered LIVE with ``greeting``; the last answer of each."""
    seen: dict[int, dict[str, Any]] = {}
    deadline = time.monotonic() + timeout
    while len(seen) < WORKERS or any(
        body["status"] != "LIVE" or body["greeting"] != greeting for body in seen.values()
    ):
        assert time.monotonic() < deadline, f"workers seen: {seen}"
        body = served(app)
        seen[body["pid"]] = body
    assert len(seen) == WORKERS, f"more workers than {WORKERS}: {seen}"
    return seen


def assert_every_worker_serves_a_change_within_a_second(app: Served, store: ConfigStore) -> None:
    workers = set(live_workers(app, "v1"))
    assert app.process.pid not in workers  # the workers are children, not the supervisor
    written = time.monotonic()
    version = store.set("greeting", "v2")
    arrivals = live_workers(app, "v2", timeout=10)
    assert set(arrivals) == workers
    for pid, body in arrivals.items():
        assert body["version"] == version
        arrived = body["arrived"]
        # When v2 reached the worker's async receiver, as the worker recorded it on its loop.
        assert 0 <= arrived["at"] - written < FRESHNESS, (pid, arrived["at"] - written)
        assert arrived["on_main_thread"], arrived  # uvicorn runs the loop on the main thread


def assert_a_stop_ends_open_streams_promptly(
    app: Served, server: EmbeddedServer, exit_code: int | None = None
) -> None:
    """SIGTERM to the supervisor with browsers attached, one on the config stream and one on
    the channel bridge: both streams end with ``end``, the workers exit."""
    channel = "dashboard:refresh:dash-123"
    with (
        EventReader(app.url + "/stream") as reader,
        EventReader(f"{app.url}/bridge/sse/{channel}") as bridged,
        server.client() as raw,
    ):
        assert reader.next().event == "reset"
        # The bridge's stream is live once a message published on its channel arrives.
        assert eventually(lambda: raw.publish(channel, '{"widgetId": "w1"}') > 0)
        assert bridged.next().data == '{"widgetId": "w1"}'
        stopping = time.monotonic()
        app.process.terminate()
        assert reader.until(lambda e: e.event == "end")[-1].json() == {"reason": "shutdown"}
        assert bridged.until(lambda e: e.event == "end")[-1].json() == {"reason": "shutdown"}
        code = app.stop()
        # Without the stream ending the workers would wait for it (gunicorn: 5 s, then kill).
        assert time.monotonic() - stopping < 3.0, app.output()
        if exit_code is not None:
            assert code == exit_code, app.output()


def test_uvicorn_workers_each_serve_a_change_within_a_second(
    server: EmbeddedServer, store: ConfigStore, tmp_path: Path
) -> None:
    with uvicorn_app(server, tmp_path, workers=WORKERS) as app:
        assert_every_worker_serves_a_change_within_a_second(app, store)
        assert_a_stop_ends_open_streams_promptly(app, server)


@pytest.mark.parametrize("preload", [False, True], ids=["imported-per-worker", "preload"])
def test_gunicorn_uvicorn_workers_each_serve_a_change_within_a_second(
    server: EmbeddedServer, store: ConfigStore, tmp_path: Path, preload: bool
) -> None:
    port = free_port()
    # With --preload the app (and its not yet started client) is imported once, in the master.
    command = gunicorn_command(SERVED_APP, port, workers=WORKERS) + ["--preload"] * preload
    with serving(command, port, tmp_path / "gunicorn.log", redis=server) as app:
        assert_every_worker_serves_a_change_within_a_second(app, store)
        assert_a_stop_ends_open_streams_promptly(app, server, exit_code=0)


def test_uvicorn_reload_restarts_with_an_open_stream_at_once(
    server: EmbeddedServer, store: ConfigStore, tmp_path: Path
) -> None:
    watched = tmp_path / "src"
    watched.mkdir()
    source = watched / "module.py"
    source.write_text("VALUE = 1\n")
    extra = ["--reload", "--reload-dir", str(watched)]
    with uvicorn_app(server, tmp_path, extra=extra) as app:
        before = served(app)["pid"]
        with EventReader(app.url + "/stream") as reader:
            assert reader.next().event == "reset"
            edited = time.monotonic()
            source.write_text("VALUE = 2\n")
            later = time.time() + 1
            os.utime(source, (later, later))  # a newer mtime even on a coarse clock
            end = reader.until(lambda e: e.event == "end", timeout=5)[-1]
            assert end.json() == {"reason": "shutdown"}
            # What hotconfig controls: the open stream does not hold the reload (uvicorn alone
            # waits for it without limit). The reloader polls every 0.25 s.
            ended = time.monotonic() - edited
            assert ended < 1.5, f"the stream ended {ended:.2f}s after the edit:\n{app.output()}"
        after = before
        while after == before:
            assert time.monotonic() - edited < 10, app.output()
            try:
                after = served(app)["pid"]
            except httpx.HTTPError:
                time.sleep(0.02)
        # The browser's EventSource reconnects and is served by the new process.
        with EventReader(app.url + "/stream") as reader:
            assert reader.next().event == "reset"
        # The rest is a new interpreter importing the app: about a second on a quiet machine,
        # more while other tests share its two cores.
        restarted = time.monotonic() - edited
        assert restarted < 5.0, f"restarted in {restarted:.2f}s:\n{app.output()}"

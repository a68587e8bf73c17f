"""The FastAPI integration: what a dependency costs a request, and change → browser latency.

- ``Depends(hot.get_settings)`` against a dependency returning a constant: requests driven
  straight through the ASGI app (no sockets), so the difference is the dependency alone.
- change → SSE client: a real uvicorn process serving ``/stream``; one ``ConfigStore.set``
  about every 5 ms; the SSE client (httpx) and a raw redis-py subscriber, each in a process of
  its own, note ``time.perf_counter_ns()`` (CLOCK_MONOTONIC, one clock for every process) when
  each value arrives. A value the stream merged into a newer one counts as delivered when the
  newer one was.

    python -m tests.benchmarks.fastapi_integration sse|raw URL   # one reader process
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Annotated, Any

import httpx
import redis
from fastapi import Depends, FastAPI
from pydantic import BaseModel

import hotconfig_fastapi
from hotconfig import ConfigStore
from hotconfig.testing import EmbeddedServer
from tests.integrations.fastapi.servers import ROOT, uvicorn_app

from .report import Bar, Row
from .timing import percentile

REQUESTS = 3_000
ROUNDS = 11  # interleaved, best of each: a loaded machine slows some rounds
MESSAGES = 400
WARMUP = 50
SPACING = 0.005
KEY = "ui.bench"
STOP = -1_000_000  # below every warm-up index


class Settings(BaseModel):
    greeting: str = "hello"


def measure(server: EmbeddedServer, store: ConfigStore) -> list[Row]:
    return [dependency_row(server.url), *stream_rows(server, store)]


# -- Depends(get_settings) ---------------------------------------------------------------------


def dependency_row(url: str) -> Row:
    hot = hotconfig_fastapi.lifespan(url, model=Settings)
    app = FastAPI(lifespan=hot)
    constant = Settings()

    async def constant_settings() -> Settings:
        return constant

    @app.get("/hot")
    async def from_hot(settings: Annotated[Settings, Depends(hot.get_settings)]) -> None:
        return None

    @app.get("/constant")
    async def from_constant(settings: Annotated[Settings, Depends(constant_settings)]) -> None:
        return None

    per_request = asyncio.run(_per_request(app, hot, ["/hot", "/constant"]))
    return Row(
        "fastapi_depends_settings",
        "request with Depends(get_settings) / a constant dependency",
        per_request["/hot"] * 1e6,
        "us",
        baseline=per_request["/constant"] * 1e6,
        bar=Bar("ratio", "<=", 1.1),
        details={"requests_per_round": REQUESTS, "rounds": ROUNDS},
    )


async def _per_request(
    app: FastAPI, hot: hotconfig_fastapi.Lifespan[Settings], paths: list[str]
) -> dict[str, float]:
    best = dict.fromkeys(paths, float("inf"))
    async with hot(app):
        for round_ in range(ROUNDS):
            for path in paths if round_ % 2 == 0 else reversed(paths):
                best[path] = min(best[path], await _time_requests(app, path))
    return best


async def _time_requests(app: FastAPI, path: str) -> float:
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": [(b"host", b"127.0.0.1")],
        "server": ("127.0.0.1", 80),
        "client": ("127.0.0.1", 1234),
        "root_path": "",
        "state": {},
        "app": app,
    }

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Any) -> None:
        return None

    started = time.perf_counter()
    for _ in range(REQUESTS):
        await app(dict(scope), receive, send)
    return (time.perf_counter() - started) / REQUESTS


# -- change -> SSE client ----------------------------------------------------------------------


def stream_rows(server: EmbeddedServer, store: ConfigStore) -> list[Row]:
    with TemporaryDirectory() as logs, uvicorn_app(server, Path(logs)) as app:
        readers = {"sse": _spawn("sse", app.url), "raw": _spawn("raw", server.url)}
        try:
            sent = _paced(store)
            store.set(KEY, {"i": STOP})
            received = {kind: _collect(process) for kind, process in readers.items()}
        finally:
            for process in readers.values():
                if process.poll() is None:
                    process.kill()
                    process.wait()
    sse_us = _latencies_us(sent, received["sse"])
    raw_us = _latencies_us(sent, received["raw"])
    details = {"sent": len(sent), "sse_received": len(received["sse"]),
               "raw_received": len(received["raw"])}  # fmt: skip
    return [
        Row(
            "fastapi_sse_p50",
            "change->SSE client p50 / raw redis-py subscriber",
            percentile(sse_us, 50),
            "us",
            baseline=percentile(raw_us, 50),
            bar=Bar("ratio", "<=", 1.3),
            details=details,
        ),
        Row(
            "fastapi_sse_p99",
            "change->SSE client p99 / raw redis-py subscriber",
            percentile(sse_us, 99),
            "us",
            baseline=percentile(raw_us, 99),
            details={**details, "sse_max_us": max(sse_us), "raw_max_us": max(raw_us)},
        ),
    ]


def _spawn(kind: str, url: str) -> subprocess.Popen[str]:
    """A reader process (its own GIL, like a browser): prints ``ready``, then its results."""
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.benchmarks.fastapi_integration", kind, url],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    if (line := process.stdout.readline().strip()) != "ready":
        process.kill()
        raise RuntimeError(f"the {kind} reader did not start (it said {line!r})")
    return process


def _collect(process: subprocess.Popen[str]) -> dict[int, int]:
    output, _ = process.communicate(timeout=30)
    return {int(i): at for i, at in json.loads(output.strip().splitlines()[-1]).items()}


def _paced(store: ConfigStore) -> list[int]:
    sent: list[int] = []
    next_at = time.perf_counter()
    for i in range(WARMUP + MESSAGES):
        next_at += SPACING
        index = i - WARMUP
        started = time.perf_counter_ns()
        store.set(KEY, {"i": index})
        if index >= 0:
            sent.append(started)
        pause = next_at - time.perf_counter()
        if pause > 0:
            time.sleep(pause)
    time.sleep(0.2)
    return sent


def _read_stream(url: str, received: dict[int, int]) -> None:
    with (
        httpx.Client(timeout=30, verify=False) as client,
        client.stream("GET", url + "/stream") as response,
    ):
        print("ready", flush=True)
        for line in response.iter_lines():
            if line.startswith("data: ") and KEY in line:
                arrived = time.perf_counter_ns()
                index = json.loads(line[6:]).get("value", {}).get("i", -1)
                if index == STOP:
                    return
                if index >= 0:
                    received[index] = arrived


def _read_raw(url: str, received: dict[int, int]) -> None:
    with redis.Redis.from_url(url) as client:
        pubsub = client.pubsub()
        pubsub.subscribe("config:changes")
        while (message := pubsub.get_message(timeout=1.0)) is None or message[
            "type"
        ] != "subscribe":
            pass
        print("ready", flush=True)
        while True:
            message = pubsub.get_message(timeout=1.0)
            if message is None or message["type"] != "message":
                continue
            arrived = time.perf_counter_ns()
            body = json.loads(message["data"])
            for entry in body.get("changes") or [body]:
                if entry.get("key") != KEY:
                    continue
                if entry["value"]["i"] == STOP:
                    pubsub.close()
                    return
                if entry["value"]["i"] >= 0:
                    received[entry["value"]["i"]] = arrived


def _latencies_us(sent: list[int], received: dict[int, int]) -> list[float]:
    latencies: list[float] = []
    later: int | None = None
    for index in reversed(range(len(sent))):
        later = received.get(index, later)
        if later is None:
            raise RuntimeError(f"message {index} and every later one never arrived")
        latencies.append((later - sent[index]) / 1000)
    return latencies


def _main(kind: str, url: str) -> None:
    received: dict[int, int] = {}
    (_read_stream if kind == "sse" else _read_raw)(url, received)
    print(json.dumps(received), flush=True)


if __name__ == "__main__":
    _main(sys.argv[1], sys.argv[2])

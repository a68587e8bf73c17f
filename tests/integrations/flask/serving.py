"""Run the test app under real servers (``flask run``, gunicorn) and ask it what it serves."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.waiting import eventually

ROOT = Path(__file__).resolve().parents[3]
APP = "tests.integrations.flask.apps"


def app_env(url: str, **extra: str) -> dict[str, str]:
    """The environment of a process that loads the test app against the server at ``url``."""
    return {
        **os.environ,
        "FLASK_HOTCONFIG_URL": url,
        "PYTHONPATH": str(ROOT),
        "PYTHONUNBUFFERED": "1",
        **extra,
    }


def pubsub_count(r: redis.Redis) -> int:
    """How many connections the server has in subscribe mode: one per listener following it."""
    return len(r.client_list(_type="pubsub"))


@dataclass(frozen=True)
class Served:
    """One answer of ``GET /``, and when the request went out."""

    sent: float
    pid: int
    greeting: Any
    mirrored: Any
    status: str
    arrived: float | None
    told: tuple[str, ...]  # the changes of greeting the worker's receiver ran for


def fetch(port: int, connection: http.client.HTTPConnection | None = None) -> Served:
    """``GET /`` on a new connection (or on ``connection``, already open)."""
    own = connection is None
    connection = connection or http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        sent = time.monotonic()
        connection.request("GET", "/")
        response = connection.getresponse()
        assert response.status == 200, response.read()
        body = json.loads(response.read())
        return Served(
            sent,
            body["pid"],
            body["greeting"],
            body["mirrored"],
            body["status"],
            body["arrived"],
            tuple(body["told"]),
        )
    finally:
        if own:
            connection.close()


def answers(port: int, process: subprocess.Popen[bytes], log: Path) -> bool:
    """True once the server answers ``GET /``; fails the test at once if it died."""
    if process.poll() is not None:
        pytest.fail(f"the server exited with {process.returncode}:\n{log.read_text()}")
    try:
        fetch(port)
    except (OSError, http.client.HTTPException):
        return False
    return True


@contextlib.contextmanager
def running(
    command: Sequence[str], env: dict[str, str], port: int, log: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """Start ``command`` in its own process group; yield once it answers; stop it after."""
    with log.open("wb") as output:
        process = subprocess.Popen(
            list(command),
            env=env,
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # the reloader's child goes down with its parent
        )
    try:
        assert eventually(lambda: answers(port, process, log), timeout=30), log.read_text()
        yield process
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)  # whatever of the group is left


def flask_run(port: int, *options: str) -> list[str]:
    return [
        sys.executable, "-m", "flask", "--app", APP, *options,
        "run", "--host", "127.0.0.1", "--port", str(port),
    ]  # fmt: skip


def gunicorn(port: int, workers: int, *, preload: bool) -> list[str]:
    return [
        sys.executable, "-m", "gunicorn",
        *(["--preload"] if preload else []),
        "--workers", str(workers),
        "--worker-class", "sync",
        "--bind", f"127.0.0.1:{port}",
        "--graceful-timeout", "5",
        f"{APP}:create_app()",
    ]  # fmt: skip


def serve_round(port: int, count: int) -> list[Served]:
    """One request on each of ``count`` connections, all opened before any is sent.

    A sync worker that accepted a connection blocks reading it, so connections opened first
    tend to be held by different workers; which worker answers is up to the OS anyway.
    """
    connections = [http.client.HTTPConnection("127.0.0.1", port, timeout=10) for _ in range(count)]
    try:
        for connection in connections:
            connection.connect()
        return [fetch(port, connection) for connection in connections]
    finally:
        for connection in connections:
            connection.close()

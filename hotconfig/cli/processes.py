"""The processes ``hotconfig demo`` runs: the example apps of docs/examples, each the leader
of a process group of its own, so that stopping it stops its workers too and Ctrl-C in the
terminal reaches only the demo (which then stops them, in order); and how the demo asks them
over HTTP (a page, a widget, an event stream)."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import click

from ..fleet.registry import Report

__all__ = [
    "DASHBOARD",
    "EXAMPLES",
    "HOST",
    "SESSION",
    "WORKERS",
    "App",
    "DemoError",
    "Processes",
    "Received",
    "Running",
    "SourceCommand",
    "answers",
    "apps",
    "examples_found",
    "read_stream",
    "stream_ended",
    "widget",
]

EXAMPLES = Path(__file__).resolve().parents[2] / "docs" / "examples"
HOST = "127.0.0.1"
SESSION, DASHBOARD = "demo", "sales"  # the chat page's session, the dashboard's id
Received = list[dict[str, Any]]
WORKERS = 2
_STOP_GRACE = 10.0  # seconds a process group has to exit after SIGTERM
_LOG_TAIL = 2000


def examples_found() -> bool:
    """Whether the example apps are here: in a source checkout, not in a wheel's install."""
    return (EXAMPLES / "django_app").is_dir()


class SourceCommand(click.Command):
    """A command that runs the example apps: hidden from ``--help`` where they are missing."""

    @property
    def hidden(self) -> bool:
        return not examples_found()

    @hidden.setter
    def hidden(self, value: bool) -> None:
        """Set by click.Command's constructor: whether the files are here decides instead."""


class DemoError(click.ClickException):
    """A step of the demo that could not run: a server that did not start, an app that died."""


class App(NamedTuple):
    """A process the demo runs: its name, how it is started, and where it answers."""

    name: str
    framework: str | None  # what its instances report; None: it reports none (the bridge)
    command: tuple[str, ...]
    port: int

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}/"


def apps(ports: Sequence[int]) -> list[App]:
    """The four example apps, on the given free loopback ports."""
    py, workers = sys.executable, str(WORKERS)

    def gunicorn(folder: str, target: str, port: int) -> tuple[str, ...]:
        # No --preload: its master would run the app too, and count as a third instance.
        bind = f"{HOST}:{port}"
        chdir = str(EXAMPLES / folder)
        return (py, "-m", "gunicorn", "-w", workers, "-b", bind, "--chdir", chdir, target)

    def uvicorn(folder: str, port: int, *more: str) -> tuple[str, ...]:
        where = ("--app-dir", str(EXAMPLES / folder), "--host", HOST, "--port", str(port))
        return (py, "-m", "uvicorn", "app:app", *where, "--log-level", "warning", *more)

    django, flask, fastapi, bridge = ports
    return [
        App("django", "django", gunicorn("django_app", "shop.wsgi", django), django),
        App("flask", "flask", gunicorn("flask_app", "shop:create_app()", flask), flask),
        App("fastapi", "fastapi", uvicorn("fastapi_app", fastapi, "--workers", workers), fastapi),
        App("bridge", None, uvicorn("bridge", bridge), bridge),
    ]


class Running(NamedTuple):
    app: App
    process: subprocess.Popen[bytes]
    log: Path


class Processes:
    """Every process the demo started, each the leader of its own process group, so that
    stopping it stops its workers too, and Ctrl-C in the terminal reaches only the demo."""

    def __init__(self, directory: Path, env: dict[str, str]) -> None:
        self.directory = directory
        self.env = env
        self.running: list[Running] = []

    def start(self, app: App) -> Running:
        log = self.directory / f"{app.name}.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                app.command,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        running = Running(app, process, log)
        self.running.append(running)
        return running

    def check(self) -> None:
        """Raise :class:`DemoError` with its log's tail when a process has exited."""
        for running in self.running:
            code = running.process.poll()
            if code is not None:
                tail = running.log.read_text(errors="replace")[-_LOG_TAIL:]
                raise DemoError(f"the {running.app.name} app exited with {code}:\n{tail}")

    def owner(self, report: Report) -> App | None:
        """The app whose process group holds the instance that sent ``report``, if ours."""
        for running in self.running:
            with contextlib.suppress(OSError):
                if os.getpgid(report.pid) == running.process.pid:
                    return running.app
        return None

    def stop(self) -> list[str]:
        """SIGTERM every group, SIGKILL what is left after the grace; what needed SIGKILL."""
        for running in self.running:
            _signal_group(running.process.pid, signal.SIGTERM)
        deadline = time.monotonic() + _STOP_GRACE
        killed = []
        for running in self.running:
            pgid = running.process.pid
            try:
                running.process.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                killed.append(running.app.name)
            # The leader may be gone while a worker of its group lingers.
            while _group_alive(pgid) and time.monotonic() < deadline:
                time.sleep(0.05)
            if _group_alive(pgid):
                killed.append(running.app.name)
            _signal_group(pgid, signal.SIGKILL)
            running.process.wait()
        return sorted(set(killed))


def _signal_group(pgid: int, signum: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def answers(port: int) -> bool:
    connection = http.client.HTTPConnection(HOST, port, timeout=2)
    try:
        connection.request("GET", "/")
        return connection.getresponse().status == 200
    except (OSError, http.client.HTTPException):
        return False
    finally:
        connection.close()


def read_stream(
    port: int, channel: str, received: Received, enough: Callable[[Received], bool]
) -> None:
    """Runs on the reader thread: the data of one SSE stream's default events, until enough."""
    connection = http.client.HTTPConnection(HOST, port, timeout=15)
    try:
        path = f"/bridge/sse/{channel}?session={SESSION}"
        connection.request("GET", path, headers={"Accept": "text/event-stream"})
        event = "message"
        for raw in connection.getresponse():
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            if not line:
                event = "message"
            elif line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:") and event == "message":
                received.append(json.loads(line[5:]))
                if enough(received):
                    return
    except (OSError, http.client.HTTPException, ValueError):
        return  # the caller finds what arrived incomplete and says so
    finally:
        connection.close()


def stream_ended(received: Received) -> bool:
    return bool(received) and bool(received[-1].get("done"))


def widget(port: int, name: str) -> dict[str, Any]:
    """A widget's data as the dashboard page fetches it."""
    connection = http.client.HTTPConnection(HOST, port, timeout=5)
    try:
        connection.request("GET", f"/dashboards/{DASHBOARD}/widgets/{name}")
        data: dict[str, Any] = json.loads(connection.getresponse().read())
        return data
    except (OSError, http.client.HTTPException, ValueError):
        return {}
    finally:
        connection.close()

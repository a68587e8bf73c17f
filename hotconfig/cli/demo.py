"""``hotconfig demo``: the example apps of docs/examples under real servers, changed live.

What ``make demo`` runs. It starts an embedded Valkey (unless ``--url`` names a server), the
Django, Flask and FastAPI examples with two workers each (gunicorn, gunicorn, uvicorn) and the
bridge example (uvicorn), each in a process group of its own, then:

1. sets ``ai.model.default`` and waits at the convergence barrier ``set --wait`` uses, then
   prints when each worker applied the change;
2. sets a model that only the FastAPI example's model refuses, and names who refused and why;
3. streams an AI answer through the bridge page, token by token, and publishes a dashboard
   refresh;

and keeps everything running until Ctrl-C, printing the URLs and a ``hotconfig watch`` hint.
``--once`` exits after the scenario: 0 when every step did what it should, 1 naming what did
not. On the way out each process group it started gets SIGTERM, then SIGKILL.

The demo never follows ``$HOTCONFIG_URL``: it writes ``ai.model.default``, so a server is
used only when named with ``--url``. It runs the apps of a source checkout (docs/examples is
not part of the wheel).
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import FrameType
from typing import Any, NamedTuple

import click

from ..connection import Target
from ..fleet import Convergence
from ..registry import Report
from .fleet import report_convergence
from .output import Output
from .session import Session, pass_session

__all__ = ["EXAMPLES", "demo"]

EXAMPLES = Path(__file__).resolve().parents[2] / "docs" / "examples"
KEY = "ai.model.default"
GOOD, REFUSED = "gpt-4o", "llama-3-70b"  # the FastAPI example allows gpt-4o and gpt-4o-mini
SESSION = "demo"
TOKENS = ("Revenue", " grew", " 12%", " in", " the", " EU", ".")
WORKERS = 2
_HOST = "127.0.0.1"
_STOP_GRACE = 10.0  # seconds a process group has to exit after SIGTERM
_LOG_TAIL = 2000


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
        return f"http://{_HOST}:{self.port}/"


def apps(ports: Sequence[int]) -> list[App]:
    """The four example apps, on the given free loopback ports."""
    py, workers = sys.executable, str(WORKERS)

    def gunicorn(folder: str, target: str, port: int) -> tuple[str, ...]:
        bind = f"{_HOST}:{port}"
        chdir = str(EXAMPLES / folder)
        return (py, "-m", "gunicorn", "-w", workers, "-b", bind, "--chdir", chdir, target)

    def uvicorn(folder: str, port: int, *more: str) -> tuple[str, ...]:
        where = ("--app-dir", str(EXAMPLES / folder), "--host", _HOST, "--port", str(port))
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


@click.command("demo")
@click.option("--url", default=None, help="Use this server instead of an embedded Valkey.")
@click.option("--once", is_flag=True, help="Run the scenario and exit (0 when all went well).")
@click.option("--timeout", default=60.0, show_default=True, help="Seconds for the apps to start.")
@pass_session
def demo(session: Session, url: str | None, once: bool, timeout: float) -> None:
    """Run the example apps (Django, Flask, FastAPI, bridge) and change them live."""
    if not (EXAMPLES / "django_app").is_dir():
        raise DemoError(
            f"the example apps are not in {EXAMPLES}: run the demo from a source checkout "
            "(git clone, then `make demo`)"
        )
    with contextlib.ExitStack() as stack:
        if url is None:
            url = stack.enter_context(_embedded(session.out))
        directory = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="hotconfig-")))
        failures = Demo(Session(url, session.namespace, session.channel, session.out)).run(
            Processes(directory, _environment(url, directory)), timeout, once
        )
    session.out.line("stopped every process the demo started")
    if failures:
        raise DemoError("the demo failed:\n  " + "\n  ".join(failures))


@contextlib.contextmanager
def _embedded(out: Output) -> Iterator[str]:
    from ..testing.server import EmbeddedServer, EmbeddedServerError

    try:
        server = EmbeddedServer("valkey").start()
    except EmbeddedServerError as exc:
        raise DemoError(f"{exc}; or name a server with --url") from None
    out.line(f"valkey   {server.url} (embedded, pid {server.pid})")
    try:
        yield server.url
    finally:
        server.close()


def _environment(url: str, directory: Path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key != "DJANGO_SETTINGS_MODULE"}
    return env | {
        "HOTCONFIG_URL": url,  # Django, FastAPI and the bridge
        "FLASK_HOTCONFIG_URL": url,  # the Flask example reads FLASK_-prefixed keys
        "SHOP_DB": str(directory / "shop.sqlite3"),
        "SHOP_DEBUG": "0",
    }


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt  # SIGTERM stops the demo the way Ctrl-C does


class Demo:
    """One run of the scenario against one server; it writes through the CLI's session."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.out = session.out
        self.publisher = Target(session.url).command_client()  # the AI service's messages

    def run(self, processes: Processes, timeout: float, once: bool) -> list[str]:
        """Start the apps, run the scenario and, unless ``once``, serve until Ctrl-C; the
        failures, returned once every process has been stopped."""
        from ..testing.server import free_port

        self.processes = processes
        failures: list[str] = []
        previous = signal.signal(signal.SIGTERM, _interrupt)
        try:
            for app in apps([free_port() for _ in range(4)]):
                running = processes.start(app)
                self.out.line(f"{app.name:<8} {app.url} (pid {running.process.pid})")
            self.await_fleet(timeout)
            failures += self.scenario()
            if not once:
                self.serve()
        except KeyboardInterrupt:
            self.out.line("\nstopping")
        finally:
            signal.signal(signal.SIGTERM, previous)
            killed = processes.stop()
            self.publisher.close()
            self.session.close()
        if killed:
            failures.append(f"needed SIGKILL to stop: {', '.join(killed)}")
        return failures

    @property
    def bridge(self) -> App:
        return self.processes.running[-1].app

    def await_fleet(self, timeout: float) -> None:
        """Until each framework has WORKERS instances of ours live, and the bridge answers."""
        running = self.processes.running
        wanted = {app.framework: WORKERS for app, _, _ in running if app.framework}
        deadline = time.monotonic() + timeout
        while True:
            self.processes.check()
            counts = dict.fromkeys(wanted, 0)
            for report in self.session.fleet.instances():
                app = self.processes.owner(report)
                if app is not None and app.framework in counts:
                    counts[app.framework] += 1
            if counts == wanted and _answers(self.bridge.port):
                self.out.line(f"{sum(counts.values())} instances live\n")
                return
            if time.monotonic() > deadline:
                seen = ", ".join(f"{name} {n}/{WORKERS}" for name, n in counts.items())
                raise DemoError(f"the apps did not all start within {timeout:.0f}s: {seen}")
            time.sleep(0.2)

    def scenario(self) -> list[str]:
        """The three steps; the failures, each said in one line."""
        out, failures = self.out, []
        out.line(f"1. set {KEY}={GOOD}, then the barrier (what `hotconfig set --wait` does)")
        result = self.write_and_wait(GOOD)
        ours = [i for i in result.applied if self.processes.owner(result.reports[i])]
        if not result.ok or len(ours) < 3 * WORKERS:
            failures.append(f"{KEY}={GOOD}: {len(ours)} of our {3 * WORKERS} instances applied")

        out.line(f"\n2. set {KEY}={REFUSED}: a model the FastAPI example does not allow")
        result = self.write_and_wait(REFUSED)
        refused = {self.processes.owner(result.reports[i]) for i, _ in result.rejected}
        if {app.name for app in refused if app} != {"fastapi"}:
            failures.append(f"{KEY}={REFUSED}: the fastapi instances did not refuse it")
        version = self.session.store.set(KEY, GOOD)  # leave the fleet consistent
        self.session.fleet.wait(version, 10.0)
        out.line(f"{KEY} is back to {GOOD} (version {version})")

        out.line("\n3. the bridge example: an AI answer token by token, and a dashboard refresh")
        return failures + self.stream_answer()

    def write_and_wait(self, value: str) -> Convergence:
        """Set KEY, wait at the barrier, print when each instance applied (or refused) it."""
        session = self.session
        version = session.store.set(KEY, value)
        written = _written_at(session, version)
        result = session.fleet.wait(version, 10.0)
        report_convergence(self.out, result)
        rows = []
        for instance, report in sorted(result.reports.items(), key=lambda kv: _order(kv[1])):
            app = self.processes.owner(report)
            outcome = _outcome(result, instance)
            took = "-" if outcome == "behind" else f"{(report.time - written) * 1000:.0f} ms"
            row = [report.service or "-", app.name if app else "-", report.pid, took, outcome]
            rows.append(row)
        columns = ["service", "app", "pid", "after the write", "outcome"]
        self.out.table(columns, rows, f"{KEY}={value}: version {version}")
        return result

    def stream_answer(self) -> list[str]:
        """Read the page's stream as a browser would while the AI service publishes on it."""
        channel = f"ai:stream:{SESSION}"
        received: list[dict[str, Any]] = []
        args = (self.bridge.port, channel, received)
        reader = threading.Thread(target=_read_stream, args=args, daemon=True)
        reader.start()
        deadline = time.monotonic() + 10.0
        while not self.followers(channel):
            if time.monotonic() > deadline or not reader.is_alive():
                return [f"the bridge did not subscribe to {channel} within 10s"]
            time.sleep(0.05)
        self.publish_answer(channel, delay=0.05)
        reader.join(10.0)
        tokens = "".join(m.get("token", "") for m in received if m.get("type") == "text")
        done = any(m.get("done") for m in received)
        self.out.line(f"the page's stream received {tokens!r}, done: {done}")
        refresh = json.dumps({"widgetId": "revenue", "reason": f"{KEY} changed"})
        listening = self.publisher.publish("dashboard:refresh:sales", refresh)
        self.out.line(
            f"dashboard:refresh:sales published, {listening} listening (the example page "
            "follows only its own session's answer)"
        )
        self.out.line(f"the page: {self.bridge.url}?session={SESSION}")
        if tokens != "".join(TOKENS) or not done:
            return [f"the bridge page received {tokens!r} (done: {done}), not the answer"]
        return []

    def followers(self, channel: str) -> int:
        counts = dict(self.publisher.pubsub_numsub(channel))
        return int(counts.get(channel.encode(), 0))

    def publish_answer(self, channel: str, delay: float) -> None:
        for index, token in enumerate(TOKENS):
            message = {"token": token, "index": index, "type": "text"}
            self.publisher.publish(channel, json.dumps(message))
            time.sleep(delay)
        done = {"done": True, "sql": "SELECT region, sum(revenue) FROM sales", "data": [["EU", 12]]}
        self.publisher.publish(channel, json.dumps(done))

    def serve(self) -> None:
        """Until Ctrl-C: stream the answer again to each page that opens it."""
        out, shown = self.out, self.session.redacted
        out.line("\nrunning; Ctrl-C stops every process the demo started")
        for running in self.processes.running:
            out.line(f"  {running.app.name:<8} {running.app.url}")
        out.line(f"  the bridge page: {self.bridge.url}?session={SESSION}")
        out.line(f"  watch the fleet: hotconfig --url {shown} watch")
        out.line(f"  change a value:  hotconfig --url {shown} set {KEY} gpt-4o-mini --wait")
        channel, answered = f"ai:stream:{SESSION}", False
        while True:
            self.processes.check()
            followers = self.followers(channel)
            if followers and not answered:
                time.sleep(0.5)  # let the page show that it is streaming
                self.publish_answer(channel, delay=0.2)
            answered = bool(followers)
            time.sleep(0.5)


def _answers(port: int) -> bool:
    connection = http.client.HTTPConnection(_HOST, port, timeout=2)
    try:
        connection.request("GET", "/")
        return connection.getresponse().status == 200
    except (OSError, http.client.HTTPException):
        return False
    finally:
        connection.close()


def _order(report: Report) -> tuple[str, str, int]:
    return (report.framework or "", report.service or "", report.pid)


def _outcome(result: Convergence, instance: str) -> str:
    if instance in dict(result.rejected):
        return "rejected"  # report_convergence said why, above the table
    if instance in result.applied:
        return "applied"
    return "gone" if instance in result.gone else "behind"


def _written_at(session: Session, version: int) -> float:
    """When (server clock, seconds) the store wrote ``version``: its history entry's id."""
    for entry in session.store.history(5):
        if entry.version == version:
            return int(entry.id.split("-", 1)[0]) / 1000
    raise DemoError(f"version {version} is not in the store's history")


def _read_stream(port: int, channel: str, received: list[dict[str, Any]]) -> None:
    """Runs on the reader thread: the data of one SSE stream's default events, until done."""
    connection = http.client.HTTPConnection(_HOST, port, timeout=15)
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
                if received[-1].get("done"):
                    return
    except (OSError, http.client.HTTPException, ValueError):
        return  # the caller finds the answer incomplete and says so
    finally:
        connection.close()

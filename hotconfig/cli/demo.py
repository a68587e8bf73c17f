"""``hotconfig demo``: the example apps of docs/examples under real servers, changed live.

What ``make demo`` runs. It starts an embedded Valkey (unless ``--url`` names a server), the
Django, Flask and FastAPI examples with two workers each (gunicorn, gunicorn, uvicorn) and the
bridge example (uvicorn), each in a process group of its own, then:

1. sets ``ai.model.default`` and waits at the convergence barrier ``set --wait`` uses, then
   prints when each worker applied the change;
2. sets a model that only the FastAPI example's model refuses, and names who refused and why;
3. streams an AI answer through the bridge page, token by token, and publishes a dashboard
   refresh;

and keeps everything running until Ctrl-C, printing the URLs (each app's page shows
``ai.model.default``) and what to try next: commands that run as printed, with the same
``hotconfig`` this demo runs from (``.venv-demo/bin/hotconfig`` under ``make demo``).
``--once`` exits after the scenario: 0 when every step did what it should, 1 naming what did
not. On the way out each process group it started gets SIGTERM, then SIGKILL.

The demo never follows ``$HOTCONFIG_URL``: it writes ``ai.model.default``, so a server is
used only when named with ``--url``. It runs the apps of a source checkout (docs/examples is
not part of the wheel).
"""

from __future__ import annotations

import contextlib
import os
import random
import runpy
import shlex
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType

import click
from click.core import ParameterSource

from .._redis.connection import Target
from ..fleet._observer import Convergence
from ..fleet.registry import Report
from . import processes as _processes
from .arguments import SECONDS
from .fleet import report_convergence
from .output import Output
from .processes import (
    DASHBOARD,
    SESSION,
    WORKERS,
    App,
    DemoError,
    Processes,
    Received,
    SourceCommand,
    answers,
    apps,
    examples_found,
    read_stream,
    stream_ended,
)
from .processes import (
    widget as widget_data,
)
from .session import Failure, Session, pass_session

__all__ = ["demo"]

KEY = "ai.model.default"
GOOD, REFUSED = "gpt-4o", "llama-3-70b"  # the FastAPI example allows gpt-4o and gpt-4o-mini
_REFRESH_EVERY = 5.0  # seconds between the dashboard's new figures while the demo serves


@click.command("demo", cls=SourceCommand)
@click.option("--url", default=None, help="Use this server instead of an embedded Valkey.")
@click.option("--once", is_flag=True, help="Run the scenario and exit (0 when all went well).")
@click.option(
    "--timeout",
    type=SECONDS,
    default=60.0,
    show_default=True,
    help="Seconds for the apps to start.",
)
@pass_session
def demo(session: Session, url: str | None, once: bool, timeout: float) -> None:
    """Run the example apps (Django, Flask, FastAPI, bridge) and change them live."""
    if not examples_found():
        raise Failure(
            f"the demo runs the example apps of a source checkout, which this install does not "
            f"have ({_processes.EXAMPLES}): git clone the repository, then `make demo`"
        )
    url = url or _named_url(session)
    with contextlib.ExitStack() as stack:
        if url is None:
            url = stack.enter_context(_embedded(session.out))
        directory = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="hotconfig-")))
        processes = Processes(directory, _environment(url, directory))
        run = Demo(Session(url, session.namespace, session.channel, session.out), processes)
        failures = run.run(timeout, once)
    session.out.line("stopped every process the demo started")
    if failures:
        raise DemoError("the demo failed:\n  " + "\n  ".join(failures))


def _named_url(session: Session) -> str | None:
    """The group's ``--url`` when given on the command line (never ``$HOTCONFIG_URL``)."""
    parent = click.get_current_context().parent
    given = parent is not None and parent.get_parameter_source("url") is ParameterSource.COMMANDLINE
    return session.url if given else None


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

    def __init__(self, session: Session, processes: Processes) -> None:
        self.session = session
        self.processes = processes
        self.out = session.out
        self.publisher = Target(session.url).command_client()  # the AI and BI services'
        # The bridge example's own publishing code (docs/examples/bridge/publisher.py).
        self.example = runpy.run_path(str(_processes.EXAMPLES / "bridge" / "publisher.py"))

    def run(self, timeout: float, once: bool) -> list[str]:
        """Start the apps, run the scenario and, unless ``once``, serve until Ctrl-C; the
        failures, returned once every process has been stopped."""
        from ..testing.server import free_port

        processes, failures = self.processes, []
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
            if once:
                failures.append("interrupted before the scenario ended")
        finally:
            # A second Ctrl-C must not leave half the apps running.
            interrupt = signal.signal(signal.SIGINT, signal.SIG_IGN)
            try:
                killed = processes.stop()
            finally:
                signal.signal(signal.SIGINT, interrupt)
                signal.signal(signal.SIGTERM, previous)
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
            if counts == wanted and answers(self.bridge.port):
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
        return failures + self.stream_answer() + self.refresh_dashboard()

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
        """The chat page's stream while the AI service answers, token by token."""
        channel = f"ai:stream:{SESSION}"
        got = self.through_bridge(channel, lambda: self.ai_answer(0.05), stream_ended)
        tokens = "".join(m.get("token", "") for m in got if m.get("type") == "text")
        self.out.line(f"the chat page's stream received {tokens!r}, done: {stream_ended(got)}")
        self.out.line(f"   {self.bridge.url}?session={SESSION}")
        return [] if stream_ended(got) and tokens else [f"the chat page received {got!r}"]

    def refresh_dashboard(self) -> list[str]:
        """The dashboard's stream while the BI service writes new data for each widget; then
        each widget's data, refetched as the page does on a notice."""
        widgets: list[str] = self.example["WIDGETS"]
        got = self.through_bridge(
            f"dashboard:refresh:{DASHBOARD}", self.new_figures, lambda got: len(got) >= len(widgets)
        )
        notices = {str(m.get("widgetId")): m.get("dataVersion") for m in got}
        served = {w: widget_data(self.bridge.port, w).get("dataVersion") for w in notices}
        shown = ", ".join(f"{w} v{v}" for w, v in notices.items())
        self.out.line(f"the dashboard's stream received {shown}; refetched: {served == notices}")
        self.out.line(f"   {self.bridge.url}dashboard?id={DASHBOARD}")
        if sorted(notices) != sorted(widgets) or served != notices:
            return [f"the dashboard received {notices}, its widgets serve {served}"]
        return []

    def through_bridge(
        self, channel: str, publish: Callable[[], None], enough: Callable[[Received], bool]
    ) -> Received:
        """What a browser following ``channel`` through the bridge receives while
        ``publish`` runs, until ``enough`` of it (or 10 s)."""
        received: Received = []
        args = (self.bridge.port, channel, received, enough)
        reader = threading.Thread(target=read_stream, args=args, daemon=True)
        reader.start()
        deadline = time.monotonic() + 10.0
        while not self.followers(channel):
            if time.monotonic() > deadline or not reader.is_alive():
                raise DemoError(f"the bridge did not subscribe to {channel} within 10s")
            time.sleep(0.05)
        publish()
        reader.join(10.0)
        return received

    def ai_answer(self, delay: float) -> None:
        self.example["stream_answer"](self.publisher, SESSION, delay)

    def new_figures(self) -> None:
        for widget in self.example["WIDGETS"]:
            self.example["refresh"](
                self.publisher, DASHBOARD, widget, f"{random.randint(100, 999):,}"
            )

    def followers(self, channel: str) -> int:
        counts = dict(self.publisher.pubsub_numsub(channel))
        return int(counts.get(channel.encode(), 0))

    def serve(self) -> None:
        """Until Ctrl-C: the answer again for each chat page that opens, new figures for the
        dashboard every few seconds."""
        out, shown = self.out, self.session.redacted
        out.line("\nrunning; Ctrl-C stops every process the demo started")
        for running in self.processes.running:
            out.line(f"  {running.app.name:<8} {running.app.url}")
        out.line(f"  the chat page:  {self.bridge.url}?session={SESSION}")
        out.line(f"  the dashboard:  {self.bridge.url}dashboard?id={DASHBOARD}")
        hotconfig = f"{command()} --url {shown}"
        out.line(f"\ntry next, in another terminal (each app's page shows {KEY}):")
        out.line(f"  change the model: {hotconfig} set {KEY} gpt-4o-mini --wait")
        out.line(f"  see who has it:   {hotconfig} status")
        out.line(f"  watch the fleet:  {hotconfig} watch")
        channel, answered, refreshed = f"ai:stream:{SESSION}", False, time.monotonic()
        while True:
            self.processes.check()
            followers = self.followers(channel)
            if followers and not answered:
                time.sleep(0.5)  # let the page show that it is streaming
                self.ai_answer(0.2)
            answered = bool(followers)
            if time.monotonic() - refreshed > _REFRESH_EVERY:
                self.new_figures()
                refreshed = time.monotonic()
            time.sleep(0.5)


def command() -> str:
    """The ``hotconfig`` command as a shell here runs it: the console script beside this
    interpreter (``.venv-demo/bin/hotconfig`` under ``make demo``), by name when PATH finds
    that one, else ``python -m hotconfig.cli`` with this interpreter."""
    script = Path(sys.executable).parent / "hotconfig"
    if not script.is_file():
        return f"{shlex.quote(sys.executable)} -m hotconfig.cli"
    return "hotconfig" if shutil.which("hotconfig") == str(script) else os.path.relpath(script)


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

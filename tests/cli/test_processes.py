"""The processes ``hotconfig demo`` runs (hotconfig.cli.processes), with small Python programs
in place of the example apps: each in a process group of its own, a crash reported with its
log, a report traced to its app, and every process gone after ``stop``, workers included. The
demo with the real apps is tests/cli/test_demo.py."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from hotconfig.cli import group, processes
from hotconfig.cli.processes import EXAMPLES, HOST, App, DemoError, Processes, apps
from hotconfig.fleet.registry import Report
from tests.waiting import eventually

SLEEPER = "import time; print('up', flush=True); time.sleep(60)"
# A leader that dies on SIGTERM and a worker of its group that ignores it, as a stuck worker.
STUBBORN = """
import subprocess, sys, time
worker = subprocess.Popen([sys.executable, "-c", '''
import signal, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
print("worker ready", flush=True)
time.sleep(60)
'''])
print("worker", worker.pid, flush=True)
time.sleep(60)
"""


def python(name: str, code: str) -> App:
    return App(name, None, (sys.executable, "-c", code), 0)


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie waiting to be reaped does not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def report_of(pid: int) -> Report:
    return Report.from_json(json.dumps({"instance": f"h:{pid}:x", "pid": pid}))


@pytest.fixture
def running(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Processes]:
    """A :class:`Processes` whose groups are all stopped after the test, each given half a
    second after SIGTERM (not the 10 s a real app is given)."""
    monkeypatch.setattr(processes, "_STOP_GRACE", 0.5)
    started = Processes(tmp_path, dict(os.environ, DEMO_MARK="from-the-demo"))
    yield started
    started.stop()


def test_the_four_example_apps_run_from_the_examples_on_the_ports_given() -> None:
    listed = apps([8001, 8002, 8003, 8004])
    assert [(a.name, a.framework, a.port) for a in listed] == [
        ("django", "django", 8001),
        ("flask", "flask", 8002),
        ("fastapi", "fastapi", 8003),
        ("bridge", None, 8004),
    ]
    assert listed[0].url == f"http://{HOST}:8001/"
    for app in listed:
        assert app.command[:2] == (sys.executable, "-m")
        where = "--chdir" if "--chdir" in app.command else "--app-dir"
        folder = app.command[app.command.index(where) + 1]
        assert Path(folder).parent == EXAMPLES
        assert Path(folder).is_dir(), folder
    gunicorn, uvicorn = listed[0].command, listed[2].command
    assert gunicorn[gunicorn.index("-b") + 1] == f"{HOST}:8001"
    assert gunicorn[gunicorn.index("-w") + 1] == "2"
    assert uvicorn[uvicorn.index("--workers") + 1] == "2"
    assert "--workers" not in listed[3].command  # the bridge is one process


def test_a_started_app_leads_a_group_of_its_own_with_the_demo_s_environment(
    running: Processes, tmp_path: Path
) -> None:
    code = "import os, sys; print(os.environ['DEMO_MARK'], repr(sys.stdin.read()), flush=True)"
    started = running.start(python("env", code))
    assert started.process.wait(10) == 0
    assert started.log == tmp_path / "env.log"
    assert started.log.read_text() == "from-the-demo ''\n"  # and stdin is empty, not the tty
    sleeper = running.start(python("sleeper", SLEEPER)).process
    assert os.getpgid(sleeper.pid) == sleeper.pid != os.getpgid(0)
    assert os.getsid(sleeper.pid) == sleeper.pid  # Ctrl-C in the terminal does not reach it


def test_check_names_the_app_that_exited_with_its_code_and_log(running: Processes) -> None:
    running.start(python("steady", SLEEPER))
    running.check()  # all running: nothing to say
    crash = running.start(python("crash", "print('port already in use'); raise SystemExit(3)"))
    crash.process.wait(10)
    with pytest.raises(DemoError) as failed:
        running.check()
    assert failed.value.message == "the crash app exited with 3:\nport already in use\n"


def test_a_long_log_is_cut_to_its_tail(running: Processes) -> None:
    code = "print('x' * 5000); print('the last line'); raise SystemExit(1)"
    running.start(python("noisy", code)).process.wait(10)
    with pytest.raises(DemoError) as failed:
        running.check()
    assert failed.value.message.endswith("the last line\n")
    assert len(failed.value.message) < 2100


def test_a_report_is_traced_to_the_app_whose_group_holds_its_process(
    running: Processes,
) -> None:
    sleeper = running.start(python("sleeper", SLEEPER))
    stubborn = running.start(python("stubborn", STUBBORN))
    assert eventually(lambda: "worker ready" in stubborn.log.read_text(), timeout=10)
    worker = int(stubborn.log.read_text().split("worker ", 1)[1].split()[0])
    assert running.owner(report_of(sleeper.process.pid)) == sleeper.app
    assert running.owner(report_of(worker)) == stubborn.app  # a worker, not the leader
    assert running.owner(report_of(os.getpid())) is None  # not one of ours
    assert running.owner(report_of(2**22 + 1)) is None  # no such process


def test_stop_ends_every_group_and_names_the_one_that_needed_sigkill(
    running: Processes,
) -> None:
    polite = running.start(python("polite", SLEEPER))
    stubborn = running.start(python("stubborn", STUBBORN))
    assert eventually(lambda: "worker ready" in stubborn.log.read_text(), timeout=10)
    assert eventually(lambda: "up" in polite.log.read_text(), timeout=10)
    worker = int(stubborn.log.read_text().split("worker ", 1)[1].split()[0])
    assert running.stop() == ["stubborn"]
    assert polite.process.returncode == -15  # SIGTERM was enough
    assert eventually(lambda: not alive(worker)), "the worker outlived its group's SIGKILL"


def test_demo_is_offered_only_where_the_example_apps_are(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    runner = CliRunner()
    assert processes.examples_found()  # a source checkout
    assert "  demo " in runner.invoke(group, ["--help"]).stdout
    # An install from the wheel: no docs/examples next to the package.
    monkeypatch.setattr(processes, "EXAMPLES", tmp_path / "examples")
    assert not processes.examples_found()
    assert "demo" not in runner.invoke(group, ["--help"]).stdout
    result = runner.invoke(group, ["--url", "redis://127.0.0.1:1/0", "demo", "--once"])
    assert result.exit_code == 2  # a usage error: this install cannot run it
    assert "runs the example apps of a source checkout" in result.stderr
    assert "git clone" in result.stderr

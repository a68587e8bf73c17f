"""Real processes for the Django tests: a second Django process, runserver, gunicorn, manage.py.

Every wait is bounded; every process is started in a session of its own and killed with its
children (runserver's autoreload child, gunicorn's workers) if a test leaves it running.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

from hotconfig.testing import free_port
from tests.waiting import eventually

__all__ = [
    "EXAMPLE",
    "ROOT",
    "Follower",
    "environment",
    "follower",
    "free_port",
    "manage",
    "serving",
    "state",
    "stop",
]

ROOT = Path(__file__).resolve().parents[3]
EXAMPLE = ROOT / "docs" / "examples" / "django_app"
LISTENER_NAME_PREFIX = "hotconfig-listener-"


def environment(url: str, **extra: str) -> dict[str, str]:
    """This interpreter's environment, with ``url`` as HOTCONFIG_URL and the repo importable."""
    paths = [str(ROOT), str(EXAMPLE), os.environ.get("PYTHONPATH", "")]
    env = {**os.environ, "HOTCONFIG_URL": url, "PYTHONPATH": os.pathsep.join(p for p in paths if p)}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    return env | extra


def stop(process: subprocess.Popen[Any], timeout: float = 10.0) -> int:
    """SIGTERM the process's whole session, then SIGKILL; its exit code."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)  # leftovers of the session, e.g. a child
    return process.wait()


class Follower:
    """The other end of ``python -m tests.integrations.django.follower``."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.process = process
        assert process.stdout is not None
        assert process.stdin is not None
        self._stdin: IO[str] = process.stdin
        self._lines: queue.Queue[str] = queue.Queue()
        self._reader = threading.Thread(
            target=self._read_lines, args=(process.stdout,), name="follower-reader", daemon=True
        )
        self._reader.start()

    def _read_lines(self, stdout: IO[str]) -> None:
        for line in stdout:
            self._lines.put(line)
        self._lines.put("")

    def read(self, timeout: float = 10.0) -> dict[str, Any]:
        try:
            line = self._lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"the follower said nothing for {timeout}s") from None
        assert line, f"the follower exited with {self.process.wait()}"
        message: dict[str, Any] = json.loads(line)
        return message

    def ask(self, key: str) -> dict[str, Any]:
        self._stdin.write(json.dumps({"read": key}) + "\n")
        self._stdin.flush()
        return self.read()


@contextlib.contextmanager
def follower(url: str) -> Iterator[Follower]:
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.integrations.django.follower"],
        cwd=ROOT,
        env=environment(url, HOTCONFIG_TEST_START="1"),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    follower = Follower(process)
    try:
        yield follower
    finally:
        stop(process)
        follower._reader.join(timeout=5)
        for stream in (process.stdin, process.stdout):
            if stream is not None:
                stream.close()


def get(port: int, path: str = "/state", timeout: float = 5.0) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def state(port: int) -> dict[str, Any]:
    status, body = get(port)
    assert status == 200, body
    answer: dict[str, Any] = json.loads(body)
    return answer


@contextlib.contextmanager
def serving(
    command: Sequence[str],
    env: Mapping[str, str],
    port: int,
    log: Path,
    timeout: float = 30.0,
    cwd: Path = EXAMPLE,
) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``command`` in ``cwd`` (the example project) until it answers ``GET /state`` on
    ``port``; stop it after."""
    with log.open("wb") as output:
        process = subprocess.Popen(
            list(command),
            cwd=cwd,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def answers() -> bool:
        if process.poll() is not None:
            raise AssertionError(
                f"{command[:3]} exited with {process.returncode}:\n" + log.read_text()
            )
        try:
            return get(port, timeout=1.0)[0] == 200
        except (OSError, http.client.HTTPException):
            return False

    try:
        assert eventually(answers, timeout=timeout, interval=0.05), log.read_text()
        yield process
    finally:
        stop(process)


def manage(
    args: Sequence[str], env: Mapping[str, str], timeout: float = 30.0
) -> tuple[subprocess.CompletedProcess[str], float, dict[str, Any]]:
    """Run the example's ``manage.py ARGS`` as ``python manage.py`` would, in a fresh interpreter.

    Returns the finished process, its wall time, and what the process reported at exit: the
    names of its listener threads and the client's status.
    """
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "tests.integrations.django.manage_and_report", *args],
        cwd=EXAMPLE,
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    elapsed = time.monotonic() - started
    lines = [line for line in done.stdout.splitlines() if line.startswith('{"report"')]
    report: dict[str, Any] = json.loads(lines[-1])["report"] if lines else {}
    return done, elapsed, report

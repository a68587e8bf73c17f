"""Real ASGI server processes for the FastAPI tests: uvicorn (one or more workers, --reload)
and gunicorn with uvicorn workers, bound to 127.0.0.1 on a free port."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx

from hotconfig.testing import EmbeddedServer, free_port

ROOT = Path(__file__).resolve().parents[3]
SERVED_APP = "tests.integrations.fastapi.served_app:app"
EXAMPLE_DIR = ROOT / "docs" / "examples" / "fastapi_app"
# What the served app streams unless a test says otherwise; frequent keep-alives let the
# tests' readers notice soon that they are asked to stop.
STREAM_ENV = {"STREAM_KEYS": "ui.*,greeting", "STREAM_KEEPALIVE": "0.5"}


@dataclass
class Served:
    """A running server process and where it answers."""

    process: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self, timeout: float = 15.0) -> int:
        """SIGTERM, as a supervisor or Kubernetes sends it; the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise AssertionError(
                f"the server did not stop in {timeout}s:\n{self.output()}"
            ) from None


def uvicorn_command(
    app: str, port: int, *, workers: int = 1, extra: Sequence[str] = ()
) -> list[str]:
    command = [sys.executable, "-m", "uvicorn", app, "--host", "127.0.0.1", "--port", str(port)]
    if workers > 1:
        command += ["--workers", str(workers)]
    return [*command, "--log-level", "warning", *extra]


def gunicorn_command(app: str, port: int, *, workers: int) -> list[str]:
    return [
        sys.executable, "-m", "gunicorn", app,
        "--worker-class", "uvicorn.workers.UvicornWorker",
        "--workers", str(workers),
        "--bind", f"127.0.0.1:{port}",
        "--graceful-timeout", "5",
    ]  # fmt: skip


@contextlib.contextmanager
def serving(
    command: Sequence[str],
    port: int,
    log: Path,
    *,
    redis: EmbeddedServer,
    env: Mapping[str, str] | None = None,
    ready_path: str = "/health",
    cwd: Path = ROOT,
) -> Iterator[Served]:
    """Run ``command`` until the block ends; yields once ``ready_path`` answers at all."""
    environment = {**os.environ, "HOTCONFIG_URL": redis.url, **STREAM_ENV, **(env or {})}
    with log.open("wb") as output:
        process = subprocess.Popen(
            list(command),
            cwd=cwd,
            env=environment,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    served = Served(process, port, log)
    try:
        wait_until_answering(served, ready_path)
        yield served
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def wait_until_answering(served: Served, path: str = "/health", timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if served.process.poll() is not None:
            raise AssertionError(
                f"the server exited with {served.process.returncode}:\n{served.output()}"
            )
        with contextlib.suppress(httpx.HTTPError), httpx.Client(timeout=2.0, verify=False) as http:
            http.get(served.url + path)
            return
        time.sleep(0.02)
    raise AssertionError(f"the server did not answer in {timeout}s:\n{served.output()}")


@contextlib.contextmanager
def uvicorn_app(
    redis: EmbeddedServer,
    log_dir: Path,
    *,
    env: Mapping[str, str] | None = None,
    workers: int = 1,
    extra: Sequence[str] = (),
    app: str = SERVED_APP,
    cwd: Path = ROOT,
) -> Iterator[Served]:
    """``uvicorn`` serving ``app`` (the tests' app by default) on a free port."""
    port = free_port()
    command = uvicorn_command(app, port, workers=workers, extra=extra)
    log = log_dir / f"uvicorn-{port}.log"
    with serving(command, port, log, redis=redis, env=env, cwd=cwd) as s:
        yield s

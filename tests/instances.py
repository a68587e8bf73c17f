"""Instances in other processes: a real client with a health reporter, to be killed for real.

with spawned_instance(server.url, service="victim", ttl=0.5) as child:
    ...  # child.instance is its id in the registry
    child.kill()  # SIGKILL: no leave report; the server drops its connections at once
    child.freeze()  # SIGSTOP instead: its connections stay open, its registration expires

With ``forks=True`` the process forks once it is registered, and its child (another instance,
``child.forked`` its pid) lives on when the process is killed, killed itself at exit.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass

__all__ = ["Spawned", "spawned_instance"]

# The child prints its instance id (and the pid of its own child, if it forks: 0 if not) once
# its client is LIVE and its first report is out.
_CHILD = """
import os, sys, time
from hotconfig import HotConfig
from hotconfig.fleet.reporter import Reporter

url, service, interval, ttl = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
config = HotConfig(url, service=service, health=False)
config.start(timeout=10)
reporter = Reporter(config, interval=interval, ttl=ttl)
reporter.start()
deadline = time.monotonic() + 10
while reporter.reports == 0 and time.monotonic() < deadline:
    time.sleep(0.01)
forked = os.fork() if sys.argv[5] == "fork" else 0
if forked == 0 and sys.argv[5] == "fork":
    time.sleep(120)  # the forked child: another instance, holding copies of the parent's sockets
    os._exit(0)
print(reporter.instance, forked, flush=True)
time.sleep(120)
"""


@dataclass
class Spawned:
    process: subprocess.Popen[str]
    instance: str
    forked: int = 0  # the pid of the child it forked, if it did

    def kill(self) -> None:
        """SIGKILL: the instance dies without a word, as under the OOM killer."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def freeze(self) -> None:
        """SIGSTOP: the process stops without dying (its sockets stay open); killed at exit.
        Returns once it has stopped (a signal is delivered when the process is next run)."""
        self.process.send_signal(signal.SIGSTOP)
        os.waitpid(self.process.pid, os.WUNTRACED)


@contextlib.contextmanager
def spawned_instance(
    url: str, *, service: str, interval: float = 0.2, ttl: float = 0.6, forks: bool = False
) -> Iterator[Spawned]:
    """A client in a child process, LIVE and registered; killed at exit if still running."""
    arguments = [url, service, str(interval), str(ttl), "fork" if forks else "-"]
    process = subprocess.Popen(
        [sys.executable, "-c", _CHILD, *arguments],
        stdout=subprocess.PIPE,
        text=True,
    )
    forked = 0
    try:
        assert process.stdout is not None
        line = process.stdout.readline().strip()
        if not line:
            raise AssertionError(f"the instance process said nothing (exit {process.poll()})")
        instance, forked_pid = line.split()
        forked = int(forked_pid)
        yield Spawned(process, instance, forked)
    finally:
        if forked:
            with contextlib.suppress(ProcessLookupError):
                os.kill(forked, signal.SIGKILL)
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
        if process.stdout is not None:
            process.stdout.close()

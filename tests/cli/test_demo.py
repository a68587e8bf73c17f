"""``hotconfig demo --once``: the example apps under gunicorn and uvicorn, changed live, then
stopped — every process it started, workers included."""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

import pytest

from hotconfig import ConfigStore
from hotconfig.testing.server import EmbeddedServer
from tests.waiting import eventually

# Real servers with two workers each, four apps: seconds, not milliseconds. One server kind is
# enough: what is tested is the demo, not the server.
pytestmark = [pytest.mark.slow, pytest.mark.parametrize("server_kind", ["valkey"], indirect=True)]

ROOT = Path(__file__).resolve().parents[2]
ROW = re.compile(r"^\S+\s+(django|flask|fastapi)\s+(\d+)\s+(\d+) ms\s+(applied|rejected)$")


def demo(*args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "hotconfig.cli", "demo", *args]
    env = {k: v for k, v in os.environ.items() if k != "HOTCONFIG_URL"}
    return subprocess.run(
        command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=90, check=False
    )


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie waiting for its parent to reap it does not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def started_pids(output: str) -> set[int]:
    """Every pid the demo printed: the apps' masters and every worker in its tables."""
    pids = {int(pid) for pid in re.findall(r"\(pid (\d+)\)", output)}
    rows = [ROW.match(line) for line in output.splitlines()]
    return pids | {int(row.group(2)) for row in rows if row}


def steps(output: str) -> list[list[tuple[str, str]]]:
    """Per numbered step, the (app, outcome) of each instance in its table."""
    found: list[list[tuple[str, str]]] = []
    for line in output.splitlines():
        if re.match(r"^\d\. ", line):
            found.append([])
        elif (row := ROW.match(line)) and found:
            found[-1].append((row.group(1), row.group(4)))
    return found


def test_six_workers_apply_the_change_one_service_refuses_a_model_and_all_stops(
    server: EmbeddedServer,
) -> None:
    ran = demo("--once", "--url", server.url)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    out = ran.stdout

    first, second, bridge = steps(out)
    assert Counter(first) == {("django", "applied"): 2, ("flask", "applied"): 2,
                              ("fastapi", "applied"): 2}  # fmt: skip
    assert Counter(second) == {("django", "applied"): 2, ("flask", "applied"): 2,
                               ("fastapi", "rejected"): 2}  # fmt: skip
    assert bridge == []
    reason = "ai.model.default: invalid_value: Input should be 'gpt-4o-mini' or 'gpt-4o'"
    assert out.count(f"(service example): {reason}") == 2
    assert "the chat page's stream received 'Revenue grew 12% in the EU.', done: True" in out
    assert "the dashboard's stream received revenue v1, orders v1, churn v1; refetched: True" in out

    pids = started_pids(out)
    assert len(pids) == 4 + 6  # four servers' first processes, six workers
    assert [pid for pid in pids if alive(pid)] == []
    with ConfigStore(server.url) as store:
        assert store.get("ai.model.default") == "gpt-4o"  # the refused value was put back


def test_apps_that_do_not_start_in_time_fail_the_demo_and_are_stopped(
    server: EmbeddedServer,
) -> None:
    ran = demo("--once", "--url", server.url, "--timeout", "0")
    assert ran.returncode == 1
    assert "the apps did not all start within 0s" in ran.stderr
    pids = started_pids(ran.stdout)
    assert len(pids) == 4
    assert [pid for pid in pids if alive(pid)] == []


def watchers(server: EmbeddedServer) -> int:
    """How many connections follow the changes channel."""
    with server.client() as redis:
        return int(dict(redis.pubsub_numsub("config:changes"))[b"config:changes"])


def run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False
    )


def suggestions(lines: Iterable[str]) -> dict[str, list[str]]:
    """The demo's three "try next" commands, read from its output as it serves."""
    found: dict[str, list[str]] = {}
    for line in lines:
        hint = re.match(r"^  (change the model|see who has it|watch the fleet): +(.+)$", line)
        if hint:
            found[hint.group(1)] = shlex.split(hint.group(2))
        if len(found) == 3:
            break
    return found


def test_the_commands_it_suggests_work_as_printed(server: EmbeddedServer) -> None:
    """Without --once the demo serves and says what to try next; each command, run as printed
    while it serves, does what it says: the model changes on every instance, status lists them,
    watch shows the change."""
    command = [sys.executable, "-m", "hotconfig.cli", "demo", "--url", server.url]
    env = {k: v for k, v in os.environ.items() if k != "HOTCONFIG_URL"}
    with subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as running:
        assert running.stdout is not None
        try:
            suggested = suggestions(running.stdout)
            before = watchers(server)
            with subprocess.Popen(
                suggested["watch the fleet"], cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True
            ) as watch:
                # What watch shows starts once it follows the changes channel.
                assert eventually(lambda: watchers(server) > before, timeout=30)
                changed = run(suggested["change the model"], env)
                status = run(suggested["see who has it"], env)
                watch.send_signal(signal.SIGINT)
                watched, _ = watch.communicate(timeout=30)
        finally:
            running.send_signal(signal.SIGTERM)
            running.communicate(timeout=60)
    assert suggested["change the model"][-3:] == ["ai.model.default", "gpt-4o-mini", "--wait"]
    assert changed.returncode == 0, changed.stdout + changed.stderr
    version = re.search(r"version (\d+): 6 applied, 0 rejected, 0 behind, 0 gone", changed.stdout)
    assert version is not None, changed.stdout
    live = re.findall(rf"\s{version.group(1)}\s+LIVE\s", status.stdout)  # the six, at that version
    assert len(live) == 6, status.stdout
    assert watch.returncode == 0
    assert re.search(r"change +v\d+ set global ai.model.default=.?gpt-4o-mini", watched), watched
    with ConfigStore(server.url) as store:
        assert store.get("ai.model.default") == "gpt-4o-mini"

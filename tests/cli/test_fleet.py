"""``set --wait``, ``status`` and ``watch`` against real clients, one of them in a process that
is killed for real; and the installed console script run as a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from hotconfig import ConfigStore, HotConfig
from hotconfig.fleet.reporter import Reporter
from hotconfig.testing.server import EmbeddedServer
from tests.cli.conftest import Run
from tests.instances import spawned_instance
from tests.waiting import eventually


class Strict(BaseModel):
    k: int = 0


Instances = Callable[..., list[Reporter]]


@pytest.fixture
def instances(server: EmbeddedServer) -> Iterator[Instances]:
    """Start ``n`` LIVE clients with reporters (``typed`` of them with the Strict model)."""
    made: list[tuple[HotConfig[Any], Reporter]] = []

    def start(services: list[str], typed: int = 0) -> list[Reporter]:
        reporters = []
        for index, service in enumerate(services):
            model = Strict if index < typed else None
            config: HotConfig[Any] = HotConfig(
                server.url, service=service, model=model, health=False
            )
            assert config.start(timeout=5)
            reporter = Reporter(config, framework="plain")
            reporter.start()
            made.append((config, reporter))
            reporters.append(reporter)
        assert eventually(lambda: all(r.reports for r in reporters))
        return reporters

    yield start
    for config, reporter in made:
        reporter.close()
        config.close()


def test_set_wait_names_the_instance_that_rejected_and_why(run: Run, instances: Instances) -> None:
    typed, web_a, web_b = instances(["worker", "web", "web"], typed=1)
    result = run("set", "k", "v", "--wait")
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert lines[1].startswith("version 1: 2 applied, 1 rejected, 0 behind, 0 gone")
    assert lines[2] == (
        f"rejected  {typed.instance} (service worker): k: invalid_value: "
        "Input should be a valid integer, unable to parse string as an integer"
    )
    scripted = json.loads(run("--json", "set", "k", "w", "--wait").stdout)
    assert scripted["version"] == 2
    assert scripted["convergence"]["ok"] is False
    assert scripted["convergence"]["rejected"][0]["instance"] == typed.instance
    assert sorted(scripted["convergence"]["applied"]) == sorted([web_a.instance, web_b.instance])
    # Only the web service: it applied the value, so the barrier holds.
    assert run("set", "k", "x", "--wait", "--service", "web").exit_code == 0


def test_set_wait_exits_0_within_a_second_when_all_are_healthy(
    run: Run, instances: Instances
) -> None:
    instances(["a", "b", "c"])
    started = time.monotonic()
    result = run("set", "k", "v", "--wait", "--timeout", "5")
    elapsed = time.monotonic() - started
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[1].startswith("version 1: 3 applied, 0 rejected")
    assert elapsed < 1.0


def test_a_frozen_instance_shows_as_gone(
    run: Run, instances: Instances, server: EmbeddedServer
) -> None:
    instances(["web"])
    with spawned_instance(server.url, service="victim", ttl=0.6) as victim:
        assert victim.instance in run("status").stdout
        victim.freeze()  # alive but silent: its registration expires
        result = run("set", "k", "1", "--wait", "--timeout", "3")
        assert result.exit_code == 1
        assert f"gone      {victim.instance} (service victim)" in result.stdout
        assert "1 applied, 0 rejected, 0 behind, 1 gone" in result.stdout
        assert victim.instance not in run("status").stdout  # expired: no longer listed


def test_a_killed_instance_leaves_status_and_set_wait_at_once(
    run: Run, instances: Instances, server: EmbeddedServer
) -> None:
    # The default timings: its registration would outlive it by up to 15 s.
    instances(["web"])
    with spawned_instance(server.url, service="victim", interval=5.0, ttl=15.0) as victim:
        assert victim.instance in run("status").stdout
        victim.kill()
        started = time.monotonic()
        assert eventually(lambda: victim.instance not in run("status").stdout, timeout=2)
        result = run("set", "k", "1", "--wait", "--timeout", "20")
        elapsed = time.monotonic() - started
    assert result.exit_code == 0, result.output
    assert "1 applied, 0 rejected, 0 behind, 0 gone" in result.stdout
    assert victim.instance not in result.stdout
    assert elapsed < 2.5


def test_set_wait_names_an_instance_behind_at_the_timeout(run: Run, server: EmbeddedServer) -> None:
    config: HotConfig[Any] = HotConfig(server.url, service="stalled", health=False)  # never started
    reporter = Reporter(config)
    reporter.start()
    try:
        assert eventually(lambda: reporter.reports > 0)
        result = run("set", "k", "1", "--wait", "--timeout", "0.3")
        assert result.exit_code == 1
        expected = f"behind    {reporter.instance} (service stalled): at version 0, STARTING"
        assert expected in result.stdout
        assert run("status").exit_code == 1
    finally:
        reporter.close()


def test_status_lists_instances_and_fails_on_a_rejection_of_the_latest(
    run: Run, instances: Instances, store: ConfigStore
) -> None:
    assert run("status").stderr == "no live instance is registered\n"
    typed, _plain = instances(["worker", "web"], typed=1)
    store.set("k", 1)
    assert eventually(lambda: run("status").exit_code == 0)
    table = run("status").stdout.splitlines()
    assert table[0].split() == [
        "SERVICE", "INSTANCE", "FRAMEWORK", "VERSION", "STATUS", "LAG", "REJECTED", "LAST",
        "REJECTION",
    ]  # fmt: skip
    store.set("k", "not an int")
    assert eventually(lambda: run("status").exit_code == 1)
    data = json.loads(run("--json", "status").stdout)
    worker = next(i for i in data["instances"] if i["instance"] == typed.instance)
    assert worker["rejections"][-1]["version"] == data["store_version"] == 2
    assert "not an int" not in run("status").stdout


def test_watch_shows_changes_and_rejections(
    run: Run, instances: Instances, store: ConfigStore
) -> None:
    typed, _ = instances(["worker", "web"], typed=1)
    writer = threading.Timer(0.3, lambda: store.set("k", "bad"))
    writer.start()
    result = run("watch", "--timeout", "1.2")
    writer.join()
    assert result.exit_code == 0
    assert ' change  v1 set global k="bad"' in result.stdout
    assert f" rejected {typed.instance} (service worker) v1 LIVE rejected v1 k: " in result.stdout


def test_the_console_script_runs(server: EmbeddedServer) -> None:
    script = Path(sys.executable).with_name("hotconfig")
    assert script.exists(), "the package is not installed with its console script"
    env = {**os.environ, "HOTCONFIG_URL": server.url}
    done = subprocess.run(
        [str(script), "set", "k", "[1, 2]", "--wait", "--timeout", "1", "--allow-empty"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == "no live instance is registered: nothing to confirm\n"
    got = subprocess.run(
        [str(script), "--json", "get", "k"], env=env, capture_output=True, text=True, timeout=30
    )
    assert json.loads(got.stdout)["value"] == [1, 2]


def test_set_wait_with_no_instance_registered_fails_unless_allowed(
    run: Run, store: ConfigStore
) -> None:
    refused = run("set", "k", "1", "--wait", "--timeout", "1")
    assert refused.exit_code == 1
    assert "no live instance is registered: nothing confirmed the write" in refused.stderr
    assert "--allow-empty" in refused.stderr
    assert store.get("k") == 1  # the write itself is done; only the confirmation is missing
    as_json = run("--json", "set", "k", "2", "--wait", "--timeout", "1")
    assert as_json.exit_code == 1
    convergence = json.loads(as_json.stdout)["convergence"]
    assert (convergence["ok"], convergence["empty"]) == (False, True)
    allowed = run("set", "k", "3", "--wait", "--timeout", "1", "--allow-empty")
    assert allowed.exit_code == 0, allowed.stderr


def test_watch_survives_an_outage_and_says_when_it_lost_and_regained_the_server(
    server: EmbeddedServer,
) -> None:
    env = {**os.environ, "HOTCONFIG_URL": server.url, "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, "-m", "hotconfig.cli", "watch", "--timeout", "60"]
    lines: list[str] = []

    def said(word: str) -> bool:
        return any(line.split()[1:2] == [word] for line in lines if line.strip())

    with subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    ) as watcher:
        reader = threading.Thread(target=lambda: lines.extend(watcher.stdout or ()), daemon=True)
        reader.start()
        try:
            with ConfigStore(server.url) as store:
                # Subscribed once the first change comes through.
                assert eventually(lambda: store.set("k", 1) > 0 and said("change"), timeout=10)
                server.kill()
                assert eventually(lambda: said("lost"), timeout=10), lines
                assert watcher.poll() is None, "watch exited at the outage"
                server.start()
                assert eventually(lambda: said("back"), timeout=20), lines
                assert eventually(lambda: store.set("k", 2) > 0 and "=2" in "".join(lines), 10)
        finally:
            watcher.terminate()
            watcher.wait(10)
            reader.join(10)
    kinds = [line.split()[1] for line in lines if line.strip()]
    assert kinds.count("lost") == 1, lines
    assert kinds.count("back") == 1, lines
    lost = next(line for line in lines if " lost " in line)
    assert f" lost    Redis at {server.url}: " in lost
    assert lost.rstrip().endswith("reconnecting")

"""Real server processes: runserver's autoreloader, gunicorn and uvicorn workers, manage.py.

These run the example project (docs/examples/django_app), or a project fresh from
``django-admin startproject``, as a user would, and count what the server sees: one subscribed
connection per process that serves, none for anything else.
"""

from __future__ import annotations

import http.client
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import redis

from hotconfig import ConfigStore, Fleet
from hotconfig.testing import EmbeddedServer
from tests.integrations.django.processes import environment, free_port, manage, serving, state
from tests.waiting import eventually

pytestmark = pytest.mark.slow

CLIENT_NAME = "hotconfig:shop"  # HOTCONFIG["SERVICE"] = "shop" names the listener's connections
FRESHNESS = 1.0  # seconds from ConfigStore.set until every worker serves the value
NO_WAIT = 4.0  # seconds: under the 5 s START_TIMEOUT a process with a listener would wait
# Seconds for a stopped worker to leave the fleet registry: well under the registration's TTL
# (15 s), the time an instance that exits without a word lingers there.
LEAVE = 5.0


def listeners(client: redis.Redis) -> list[int]:
    """Ids of the server's subscribed connections that carry the example's client name."""
    return [int(c["id"]) for c in client.client_list(_type="pubsub") if c["name"] == CLIENT_NAME]


def shop_env(url: str, tmp_path: Path) -> dict[str, str]:
    return environment(url, SHOP_DB=str(tmp_path / "db.sqlite3"), SHOP_DEBUG="0")


def test_runserver_runs_one_listener_in_the_child_and_none_in_the_autoreloader(
    server: EmbeddedServer, redis_client: redis.Redis, tmp_path: Path
) -> None:
    port = free_port()
    command = [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}"]
    with (
        ConfigStore(server.url) as store,
        serving(command, shop_env(server.url, tmp_path), port, tmp_path / "runserver.log") as rs,
    ):
        served = state(port)
        assert served["pid"] != rs.pid  # the autoreloader's child answers, not the parent
        assert served["status"] == "LIVE"
        # The parent ran ready() before it spawned the child: a listener of its own would be
        # subscribed already, as the child's is by the time it answers.
        assert len(listeners(redis_client)) == 1

        store.set("greeting", "Bonjour")
        assert eventually(lambda: state(port)["greeting"] == "Bonjour", timeout=FRESHNESS)
    assert eventually(lambda: listeners(redis_client) == [])


@pytest.mark.parametrize("command", ["migrate", "check"])
def test_manage_py_with_redis_down_finishes_fast_without_a_listener(
    command: str, tmp_path: Path
) -> None:
    down = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    done, elapsed, report = manage([command], shop_env(down, tmp_path))
    assert done.returncode == 0, done.stderr
    assert report == {"listeners": [], "status": "STARTING", "exit": 0}
    # About 1 s on an idle machine, Django's startup included. The bound is what any wait for
    # Redis would break (a listener waits START_TIMEOUT, 5 s), with room for a busy machine.
    assert elapsed < NO_WAIT, f"manage.py {command} took {elapsed:.2f}s with Redis down"
    assert "hotconfig.W001" not in done.stdout + done.stderr  # plain commands stay offline
    if command == "migrate":
        assert "Applying auth.0001_initial... OK" in done.stdout
        assert (tmp_path / "db.sqlite3").exists()


def test_check_tag_hotconfig_asks_the_server_and_warns_when_it_is_down(tmp_path: Path) -> None:
    down = f"redis://:hunter2@127.0.0.1:{free_port()}/0"
    done, _, report = manage(["check", "--tag", "hotconfig"], shop_env(down, tmp_path))
    assert done.returncode == 0, done.stderr  # a warning, not an error
    assert done.stderr.count("hotconfig.W001") == 1
    assert "does not answer" in done.stderr
    assert "hunter2" not in done.stdout + done.stderr
    assert report["listeners"] == []


def _worker_answers(port: int, count: int) -> list[dict[str, Any]]:
    """One request on each of ``count`` connections opened together (sync workers spread)."""
    connections = [http.client.HTTPConnection("127.0.0.1", port, timeout=5) for _ in range(count)]
    try:
        for connection in connections:
            connection.connect()
        answers = []
        for connection in connections:
            sent = time.monotonic()
            connection.request("GET", "/state")
            response = connection.getresponse()
            body = response.read()
            assert response.status == 200, body[:2000]
            answers.append({**json.loads(body), "sent": sent})
        return answers
    finally:
        for connection in connections:
            connection.close()


@pytest.mark.parametrize(("workers", "preload"), [(3, True), (2, False)])
def test_every_gunicorn_worker_serves_a_change_within_a_second(
    server: EmbeddedServer,
    redis_client: redis.Redis,
    tmp_path: Path,
    workers: int,
    preload: bool,
) -> None:
    port = free_port()
    command = [
        sys.executable, "-m", "gunicorn",
        *(["--preload"] if preload else []),
        "--workers", str(workers),
        "--bind", f"127.0.0.1:{port}",
        "--graceful-timeout", "5",
        "shop.wsgi",
    ]  # fmt: skip
    env = shop_env(server.url, tmp_path)
    with (
        Fleet(server.url) as fleet,
        ConfigStore(server.url) as store,
        serving(command, env, port, tmp_path / "gunicorn.log"),
    ):
        seen: dict[int, dict[str, Any]] = {}
        deadline = time.monotonic() + 20
        while len(seen) < workers or any(s["status"] != "LIVE" for s in seen.values()):
            assert time.monotonic() < deadline, f"workers seen: {seen}"
            seen.update((a["pid"], a) for a in _worker_answers(port, workers))
        assert len(seen) == workers
        # Each worker follows on a connection of its own; with --preload the master keeps one.
        expected = workers + (1 if preload else 0)
        assert eventually(lambda: len(listeners(redis_client)) == expected), listeners(redis_client)
        assert eventually(lambda: len(fleet.instances("shop")) == expected), fleet.instances()

        written = time.monotonic()
        store.set("banner.text", "Sale")
        fresh: dict[int, dict[str, Any]] = {}
        stale: list[dict[str, Any]] = []
        # Keep asking past the bound, so a worker that lags or reverts is caught too.
        while set(fresh) != set(seen) or time.monotonic() < written + FRESHNESS + 0.2:
            assert time.monotonic() < written + 20, f"the change reached {sorted(fresh)} only"
            for answer in _worker_answers(port, workers):
                assert answer["pid"] in seen, f"an unknown worker answered: {answer}"
                # The receiver's rebuild, not only the live value: it runs just after the swap.
                if answer["banner_built_from"] == "Sale":
                    fresh.setdefault(answer["pid"], answer)
                elif answer["sent"] >= written + FRESHNESS or answer["pid"] in fresh:
                    stale.append(answer)
        assert not stale, f"stale answers {FRESHNESS}s after the change: {stale}"
        # When each worker rebuilt its banner (config_updated, on its listener thread).
        lags = {pid: a["banner_built_at"] - written for pid, a in fresh.items()}
        assert all(0 <= lag < FRESHNESS for lag in lags.values()), lags
    assert eventually(lambda: listeners(redis_client) == [])
    # Each process closed its client at exit, so it left the registry rather than expiring.
    with Fleet(server.url) as fleet:
        assert eventually(lambda: fleet.instances("shop") == [], timeout=LEAVE), fleet.instances()


def test_uvicorn_workers_each_follow_the_store_under_asgi(
    server: EmbeddedServer, redis_client: redis.Redis, tmp_path: Path
) -> None:
    port = free_port()
    command = [
        sys.executable, "-m", "uvicorn", "shop.asgi:application",
        "--host", "127.0.0.1", "--port", str(port), "--workers", "2",
    ]  # fmt: skip
    env = shop_env(server.url, tmp_path)
    with ConfigStore(server.url) as store, serving(command, env, port, tmp_path / "uvicorn.log"):
        # The supervisor never loads the app; each worker runs a listener of its own.
        assert eventually(lambda: len(listeners(redis_client)) == 2), listeners(redis_client)
        store.set("greeting", "Bonjour")
        pids: set[int] = set()

        def both_workers_serve_it() -> bool:
            answer = state(port)
            if answer["greeting"] != "Bonjour":
                pids.clear()  # every answer after the first fresh one must be fresh
                return False
            pids.add(answer["pid"])
            return len(pids) == 2

        assert eventually(both_workers_serve_it, timeout=10), pids
    assert eventually(lambda: listeners(redis_client) == [])


_NEW_USERS_LINES = """
INSTALLED_APPS += ["hotconfig_django"]
HOTCONFIG = {"URL": os.environ["HOTCONFIG_URL"], "SERVICE": "mysite"}
"""

_NEW_USERS_VIEW = """
import os
from django.http import JsonResponse
from hotconfig_django import config

def state(request):
    return JsonResponse({"pid": os.getpid(), "greeting": config.get("greeting")})

urlpatterns += [path("state", state)]
"""


def new_project(directory: Path, with_hotconfig: bool = True) -> Path:
    """``django-admin startproject mysite`` in ``directory``, plus what a new user adds."""
    django_admin = Path(sys.executable).with_name("django-admin")
    directory.mkdir(exist_ok=True)
    subprocess.run([str(django_admin), "startproject", "mysite", str(directory)], check=True)
    if with_hotconfig:
        settings = directory / "mysite" / "settings.py"
        settings.write_text("import os\n" + settings.read_text() + _NEW_USERS_LINES)
        urls = directory / "mysite" / "urls.py"
        urls.write_text(urls.read_text() + _NEW_USERS_VIEW)
    return directory


def project_env(project: Path, url: str) -> dict[str, str]:
    env = environment(url, DJANGO_SETTINGS_MODULE="mysite.settings")
    env["PYTHONPATH"] = str(project)  # only the new project, not the repository's examples
    return env


def timed_manage(project: Path, env: dict[str, str], *args: str) -> float:
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=project, env=env,
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return time.monotonic() - started


def test_a_fresh_startproject_migrates_and_checks_with_redis_down_as_fast_as_without(
    tmp_path: Path,
) -> None:
    down = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    ours = new_project(tmp_path / "with")
    plain = new_project(tmp_path / "without", with_hotconfig=False)
    for args in (["migrate", "--noinput"], ["check"]):
        baseline = timed_manage(plain, project_env(plain, down), *args)
        elapsed = timed_manage(ours, project_env(ours, down), *args)
        # hotconfig adds its imports (about 0.3 s); a wait for Redis would add START_TIMEOUT.
        assert elapsed < baseline + 2.5, f"{args}: {elapsed:.2f}s, {baseline:.2f}s without"


def test_a_fresh_startproject_with_the_app_added_serves_changes_from_every_worker(
    server: EmbeddedServer, redis_client: redis.Redis, tmp_path: Path
) -> None:
    """The acceptance test of the integration, step by step as a new user takes it."""
    project = new_project(tmp_path)
    env = project_env(project, server.url)
    port = free_port()
    command = [
        sys.executable, "-m", "gunicorn", "--preload", "--workers", "3",
        "--bind", f"127.0.0.1:{port}", "--chdir", str(project), "mysite.wsgi",
    ]  # fmt: skip

    def listeners_of_mysite() -> int:
        pubsub = redis_client.client_list(_type="pubsub")
        return sum(1 for c in pubsub if c["name"] == "hotconfig:mysite")

    with (
        ConfigStore(server.url) as store,
        serving(command, env, port, tmp_path / "gunicorn.log", cwd=project),
    ):
        assert eventually(lambda: listeners_of_mysite() == 4)  # the master and 3 workers
        written = time.monotonic()
        store.set("greeting", "Bonjour")
        fresh: set[int] = set()
        while len(fresh) < 3:
            assert time.monotonic() < written + FRESHNESS, f"fresh from {sorted(fresh)} only"
            for answer in _worker_answers(port, 3):
                if answer["greeting"] == "Bonjour":
                    fresh.add(answer["pid"])

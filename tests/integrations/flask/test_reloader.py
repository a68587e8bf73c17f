"""Which Flask processes follow the store (hotconfig_flask/reloader.py): servers and the child
of ``flask run`` do; the reloader's watcher and every other ``flask`` command do not, while a
program of its own that makes the app inside a click command (a Celery worker) does."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import click
from click.testing import CliRunner

from hotconfig import ConfigStore, Fleet, Status
from hotconfig.testing import EmbeddedServer, free_port
from tests.integrations.flask.apps import create_app
from tests.integrations.flask.serving import APP, ROOT, app_env
from tests.waiting import eventually


def flask(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "flask", "--app", APP, *args]
    return subprocess.run(
        command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
    )


def test_a_flask_command_does_not_wait_for_a_redis_that_is_down() -> None:
    down = f"redis://127.0.0.1:{free_port()}/0"
    env = app_env(down, FLASK_HOTCONFIG_START_TIMEOUT="10")
    started = time.monotonic()
    routes = flask(env, "routes")
    took = time.monotonic() - started
    assert routes.returncode == 0, routes.stderr
    # Waiting for the first snapshot would take the whole START_TIMEOUT (10 s) here.
    assert took < 8.0, f"`flask routes` took {took:.1f}s with Redis down"


def test_the_extensions_own_commands_do_not_count_themselves_as_instances(
    server: EmbeddedServer, store: ConfigStore
) -> None:
    store.set("greeting", "v1")
    status = flask(app_env(server.url), "hotconfig", "--json", "status")
    assert json.loads(status.stdout)["instances"] == [], status.stderr
    with Fleet(server.url) as fleet:
        assert fleet.instances() == []


def test_an_app_made_inside_a_click_command_of_another_program_follows_the_store(
    server: EmbeddedServer, store: ConfigStore
) -> None:
    store.set("greeting", "from the store")
    made = []

    @click.command()
    def worker() -> None:  # as `celery -A app worker` makes the app: not Flask's own CLI
        made.append(create_app({"HOTCONFIG_URL": server.url}))

    result = CliRunner().invoke(worker)
    assert result.exit_code == 0, result.output
    [app] = made
    client = app.extensions["hotconfig"]
    try:
        assert eventually(lambda: client.status is Status.LIVE)
        assert client.get("greeting") == "from the store"
    finally:
        client.close()

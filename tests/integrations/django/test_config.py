"""``from hotconfig_django import config``: typed reads, live changes, and the start policy."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
import redis
from django.core.management import get_commands
from django.test import override_settings

import hotconfig_django
from hotconfig import ConfigStore
from hotconfig.fleet import Fleet
from hotconfig.testing import EmbeddedServer
from hotconfig_django import HotConfigSettingsError, LazyConfig, lifecycle
from hotconfig_django.process import Role, decide
from tests.integrations.django.live_settings import Settings
from tests.integrations.django.processes import LISTENER_NAME_PREFIX, ROOT
from tests.waiting import eventually


def listener_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith(LISTENER_NAME_PREFIX)]


def test_config_serves_the_model_defaults_without_a_listener(app: LazyConfig) -> None:
    assert isinstance(app.settings, Settings)
    assert app.get("greeting") == "hello"
    assert app["items_per_page"] == 20
    assert "banner.text" in app
    assert app.get("missing", "fallback") == "fallback"
    # Under pytest nothing follows the store unless HOTCONFIG["START"] says so.
    assert lifecycle.current_decision().role is Role.TESTS
    assert listener_threads() == []


def test_config_follows_changes_written_to_the_store(
    live: LazyConfig, server: EmbeddedServer
) -> None:
    with ConfigStore(server.url) as store:
        version = store.set_many({"greeting": "bonjour", "banner.text": "Sale"})
        assert live.wait_for_version(version, timeout=5)
    assert live.get("greeting") == "bonjour"
    assert live.settings.banner.text == "Sale"
    assert live.version == version
    assert len(listener_threads()) == 1


def test_config_read_before_the_app_registry_is_ready_says_what_to_do() -> None:
    # A real interpreter where a module reads config at import time, before django.setup().
    early = (
        "from tests.integrations.django import settings as test_settings\n"
        "from django.conf import settings\n"
        "settings.configure(**{k: v for k, v in vars(test_settings).items() if k.isupper()})\n"
        "import hotconfig, hotconfig_django\n"
        "print(repr(hotconfig_django.config))\n"
        "try:\n    hotconfig_django.config.get('greeting')\n"
        "except hotconfig.NotConfiguredError as exc:\n    print(type(exc).__name__, exc)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", early], cwd=ROOT, capture_output=True, text=True, check=True
    )
    shown, error = done.stdout.splitlines()
    assert shown == "<hotconfig_django.config (not ready)>"
    assert error.startswith("ConfigNotReadyError hotconfig_django.config was read before")
    assert "INSTALLED_APPS" in error


def test_an_app_whose_ready_runs_first_can_read_config_all_the_same() -> None:
    # As if an app listed before hotconfig_django read config in its ready(): the registry
    # is loaded, hotconfig_django's own ready() has not run yet.
    lifecycle.teardown()
    assert hotconfig_django.config.get("greeting") == "hello"
    client = hotconfig_django.config.client
    lifecycle.ensure_setup()  # then hotconfig_django's ready() keeps that client
    assert hotconfig_django.config.client is client


def test_a_bad_setting_is_raised_by_reads_not_by_ready(hotconfig_settings: dict[str, Any]) -> None:
    with override_settings(HOTCONFIG={**hotconfig_settings, "MODEL": "nowhere.Settings"}):
        lifecycle.setup()  # what ready() runs: it must not take the whole project down
        with pytest.raises(HotConfigSettingsError, match=r"MODEL.*nowhere\.Settings"):
            hotconfig_django.config.get("greeting")


def test_an_unreachable_server_with_start_true_serves_defaults_after_the_timeout(
    hotconfig_settings: dict[str, Any],
) -> None:
    closed = {**hotconfig_settings, "START": True, "START_TIMEOUT": 0.2}
    with override_settings(HOTCONFIG=closed):
        lifecycle.setup()
        assert hotconfig_django.config.get("greeting") == "hello"
        assert str(hotconfig_django.config.status) != "LIVE"


def test_start_on_demand_follows_the_store_in_a_process_that_did_not_start(
    app: LazyConfig, server: EmbeddedServer, hotconfig_settings: dict[str, Any]
) -> None:
    with (
        ConfigStore(server.url) as store,
        override_settings(HOTCONFIG={**hotconfig_settings, "URL": server.url}),
    ):
        store.set("greeting", "from the store")
        lifecycle.setup()
        assert hotconfig_django.config.get("greeting") == "hello"
        assert hotconfig_django.start(timeout=5) is True
        assert hotconfig_django.config.get("greeting") == "from the store"


def test_a_process_without_a_listener_serves_the_last_known_good_file(
    server: EmbeddedServer, hotconfig_settings: dict[str, Any], tmp_path: Path
) -> None:
    cache = {**hotconfig_settings, "URL": server.url, "CACHE_PATH": str(tmp_path / "lkg.json")}
    with ConfigStore(server.url) as store, override_settings(HOTCONFIG={**cache, "START": True}):
        lifecycle.setup()  # a server process: follows the store and keeps the file
        assert hotconfig_django.config.wait_for_version(store.set("greeting", "cached"), 5)
    server.kill()
    with override_settings(HOTCONFIG=cache):
        lifecycle.setup()  # e.g. `manage.py shell` later, with the server gone
        assert lifecycle.current_decision().listen is False
        assert hotconfig_django.config.get("greeting") == "cached"


@pytest.mark.parametrize(
    ("argv", "environ", "listen", "role"),
    [
        (["manage.py", "migrate"], {}, False, Role.COMMAND),
        (["manage.py", "makemigrations"], {}, False, Role.COMMAND),
        (["manage.py", "collectstatic", "--noinput"], {}, False, Role.COMMAND),
        (["manage.py", "check", "--deploy"], {}, False, Role.COMMAND),
        (["manage.py", "shell"], {}, False, Role.COMMAND),
        (["/venv/bin/django-admin", "test"], {}, False, Role.TESTS),
        (["/venv/bin/pytest", "-x"], {}, False, Role.TESTS),
        (["-c"], {"PYTEST_XDIST_WORKER": "gw0"}, False, Role.TESTS),  # a `pytest -n 2` worker
        (["-c"], {}, True, Role.SERVER),
        (["/venv/bin/gunicorn", "shop.wsgi"], {"PYTEST_XDIST_WORKER": "gw0"}, True, Role.SERVER),
        (["manage.py", "runserver"], {}, False, Role.RELOADER),
        (["manage.py", "runserver"], {"RUN_MAIN": "true"}, True, Role.SERVER),
        (["manage.py", "runserver", "--noreload"], {}, True, Role.SERVER),
        (["/lib/python3/site-packages/django/__main__.py", "runserver"], {}, False, Role.RELOADER),
        (["/venv/bin/gunicorn", "--preload", "shop.wsgi"], {}, True, Role.SERVER),
        (["/venv/bin/uvicorn", "shop.asgi:application"], {}, True, Role.SERVER),
        (["/venv/bin/daphne", "shop.asgi:application"], {}, True, Role.SERVER),
        (["/venv/bin/celery", "-A", "shop", "worker"], {}, True, Role.SERVER),
        # A packaged project's own manage script runs the command named after it.
        (["/venv/bin/shop-admin", "migrate"], {}, False, Role.COMMAND),
        (["/venv/bin/shop-admin", "runserver", "--noreload"], {}, True, Role.SERVER),
    ],
)
def test_only_processes_that_serve_start_a_listener(
    argv: list[str], environ: dict[str, str], listen: bool, role: Role
) -> None:
    commands = get_commands()  # this project's, as ready() passes them
    decision = decide("auto", argv, environ, commands)
    assert (decision.listen, decision.role) == (listen, role)
    assert decide("always", argv, environ, commands).listen is True
    assert decide("never", argv, environ, commands).listen is False


def test_importing_the_integration_without_django_says_how_to_install_it() -> None:
    # A real interpreter where `import django` fails, as on a machine without the extra.
    blocked = (
        "import sys; sys.modules['django'] = None\n"
        "try:\n    import hotconfig_django\n"
        "except ImportError as exc:\n    print(exc)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", blocked], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "hotconfig_django needs Django: pip install 'hotconfig[django]'"


def test_the_listener_connection_carries_the_service_name(
    live: LazyConfig, server: EmbeddedServer
) -> None:
    with server.client() as client:
        names = [c["name"] for c in client.client_list(_type="pubsub")]
    assert names == ["hotconfig:django-tests"]


def test_a_serving_process_reports_itself_as_a_django_instance(
    live: LazyConfig, server: EmbeddedServer
) -> None:
    fleet = Fleet(server.url)
    try:
        assert eventually(lambda: len(fleet.instances("django-tests")) == 1)
        [report] = fleet.instances("django-tests")
    finally:
        fleet.close()
    assert report.framework == "django"
    assert report.pid == os.getpid()


def test_reads_keep_working_when_the_server_dies(live: LazyConfig, server: EmbeddedServer) -> None:
    with ConfigStore(server.url) as store:
        live.wait_for_version(store.set("greeting", "kept"), timeout=5)
    server.kill()
    assert live.get("greeting") == "kept"
    with pytest.raises(redis.ConnectionError), ConfigStore(server.url) as store:
        store.get("greeting")

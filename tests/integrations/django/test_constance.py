"""The way off django-constance: its real ``config`` on hotconfig's backend, and the import."""

from __future__ import annotations

import io
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.db import connections, transaction
from django.test import Client, override_settings

from hotconfig import ConfigStore
from hotconfig.testing import EmbeddedServer
from hotconfig_django import LazyConfig, lifecycle
from tests.integrations.django.processes import LISTENER_NAME_PREFIX, ROOT, environment, follower

# constance reads Django's settings when imported: only once the project is set up.


@pytest.fixture
def constance_config(django_project: None) -> Any:
    """django-constance's own ``constance.config``, on CONSTANCE_BACKEND (hotconfig's)."""
    from constance import config  # type: ignore[import-untyped]

    return config


@pytest.fixture
def writer(server: EmbeddedServer, hotconfig_settings: dict[str, Any]) -> Iterator[LazyConfig]:
    """The app as docs/django.md sets it up for tests: no listener, but a reachable store."""
    from hotconfig_django import config

    with override_settings(HOTCONFIG={**hotconfig_settings, "URL": server.url}):
        lifecycle.setup()
        assert lifecycle.current_decision().listen is False
        yield config
        lifecycle.teardown()


class _Told:
    """constance's own config_updated, as a receiver in the writing process sees it."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any, Any]] = []

    def __call__(self, sender: object, key: str, old_value: Any, new_value: Any, **kw: Any) -> None:
        self.calls.append((key, old_value, new_value))


@pytest.fixture
def told(constance_config: Any) -> Iterator[_Told]:
    import constance.signals  # type: ignore[import-untyped]

    receiver = _Told()
    constance.signals.config_updated.connect(receiver, weak=False)
    yield receiver
    constance.signals.config_updated.disconnect(receiver)


def test_without_a_listener_the_writer_reads_its_writes_and_is_told_once(
    writer: LazyConfig, server: EmbeddedServer, constance_config: Any, told: _Told
) -> None:
    constance_config.SITE_NAME = "Grand Bazaar"
    assert constance_config.SITE_NAME == "Grand Bazaar"
    call_command("constance", "set", "MAX_ITEMS", "7")
    assert constance_config.MAX_ITEMS == 7
    assert writer.get("MAX_ITEMS") == 7
    assert told.calls == [("SITE_NAME", "Shop", "Grand Bazaar"), ("MAX_ITEMS", 10, 7)]
    with ConfigStore(server.url) as store:
        assert store.get_all() == {"SITE_NAME": "Grand Bazaar", "MAX_ITEMS": 7}


def test_constances_own_override_config_reads_back_what_it_pinned(
    writer: LazyConfig, constance_config: Any
) -> None:
    from constance.test import override_config  # type: ignore[import-untyped]

    with override_config(SITE_NAME="Pinned", PRICE=Decimal("1.50")):
        assert constance_config.SITE_NAME == "Pinned"
        assert Decimal("1.50") == constance_config.PRICE
    assert constance_config.SITE_NAME == "Shop"
    assert Decimal("9.99") == constance_config.PRICE


def test_mget_yields_only_stored_keys(writer: LazyConfig, constance_config: Any) -> None:
    import constance.settings  # type: ignore[import-untyped]

    from hotconfig_django.constance import Backend

    backend = Backend()
    assert backend.mget(constance.settings.CONFIG) == {}
    backend.set("MAX_ITEMS", 0)
    backend.set("LAUNCH_DAY", date(2027, 3, 1))
    assert backend.mget(constance.settings.CONFIG) == {
        "MAX_ITEMS": 0,
        "LAUNCH_DAY": date(2027, 3, 1),
    }


def test_a_write_inside_a_transaction_leaves_the_transaction_usable(
    writer: LazyConfig, constance_config: Any, told: _Told
) -> None:
    # A database that really closes (an in-memory SQLite never does): what receivers of a
    # write run after them must not close the connection of the writer's atomic block.
    files = connections["files"]
    try:
        with transaction.atomic(using="files"):
            cursor = files.cursor()
            cursor.execute("CREATE TABLE IF NOT EXISTS orders (n INTEGER)")
            constance_config.SITE_NAME = "In a transaction"
            cursor.execute("INSERT INTO orders VALUES (1)")
    finally:
        files.close()
        Path(files.settings_dict["NAME"]).unlink(missing_ok=True)
    assert told.calls == [("SITE_NAME", "Shop", "In a transaction")]


def _listeners() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith(LISTENER_NAME_PREFIX)]


def test_building_the_backend_in_a_command_waits_for_nothing(
    server: EmbeddedServer,
    hotconfig_settings: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
    constance_config: Any,
) -> None:
    from hotconfig_django.constance import Backend

    with ConfigStore(server.url) as store:
        store.set("SITE_NAME", "Stored")
    monkeypatch.setattr(sys, "argv", ["manage.py", "shell"])
    settings = {**hotconfig_settings, "URL": server.url, "START_TIMEOUT": 5.0}
    with override_settings(HOTCONFIG=settings):
        lifecycle.setup()
        # Frozen: anything that waited for the listener would wait START_TIMEOUT.
        server.pause()
        try:
            started = time.monotonic()
            backend = Backend()
            built = time.monotonic() - started
            assert _listeners() == []
            assert built < 2.5
        finally:
            server.resume()
        # A command follows the store from its first read, and reads the store's values.
        assert backend.get("SITE_NAME") == "Stored"
        assert len(_listeners()) == 1
        lifecycle.teardown()


def test_a_command_reads_and_writes_the_store_with_a_receiver_connected(
    server: EmbeddedServer,
) -> None:
    with ConfigStore(server.url) as store:
        store.set("SITE_NAME", "Stored")
    script = (
        "from constance import config, signals\n"
        "def told(sender, key, old_value, new_value, **kw):\n"
        "    print('told', key, old_value, new_value, hash(sender) is not None)\n"
        "signals.config_updated.connect(told)\n"
        "print('read', config.SITE_NAME)\n"
        "config.SITE_NAME = 'Written'\n"
        "print('read', config.SITE_NAME)\n"
    )
    env = environment(server.url, DJANGO_SETTINGS_MODULE="tests.integrations.django.settings")
    done = subprocess.run(
        [sys.executable, "-m", "django", "shell", "-c", script],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stdout.splitlines() if line.startswith(("read", "told"))]
    assert lines == ["read Stored", "told SITE_NAME Stored Written True", "read Written"]


def test_constance_reads_its_defaults_without_writing_them_back(
    live: LazyConfig, server: EmbeddedServer, constance_config: Any
) -> None:
    assert constance_config.SITE_NAME == "Shop"
    assert date(2026, 1, 1) == constance_config.LAUNCH_DAY
    with ConfigStore(server.url) as store:
        assert store.version == 0  # constance's own backends store each default on first read


def test_a_value_written_in_one_process_is_read_in_another_within_a_second(
    live: LazyConfig, server: EmbeddedServer, constance_config: Any
) -> None:
    with follower(server.url) as other:
        assert other.read()["ready"] is True
        written = time.monotonic()
        constance_config.SITE_NAME = "Grand Bazaar"
        # The writer reads its own write at once.
        assert constance_config.SITE_NAME == "Grand Bazaar"
        first = other.read(timeout=5)
        arrived = time.monotonic() - written
        signals = {message["signal"]: message for message in (first, other.read(timeout=5))}
        assert signals["constance"] == {
            "signal": "constance",
            "key": "SITE_NAME",
            "old": "Shop",
            "new": "Grand Bazaar",
            "pid": other.process.pid,
        }
        assert signals["hotconfig"]["new"] == "Grand Bazaar"
        assert arrived < 1.0
        read = other.ask("SITE_NAME")
    assert read == {"key": "SITE_NAME", "constance": "Grand Bazaar", "hotconfig": "Grand Bazaar"}
    assert live.get("SITE_NAME") == "Grand Bazaar"


def test_values_json_has_no_type_for_round_trip(
    live: LazyConfig, server: EmbeddedServer, constance_config: Any
) -> None:
    constance_config.LAUNCH_DAY = date(2026, 12, 24)
    constance_config.PRICE = Decimal("12.50")
    constance_config.MAX_ITEMS = 3
    assert date(2026, 12, 24) == constance_config.LAUNCH_DAY
    assert Decimal("12.50") == constance_config.PRICE
    assert constance_config.MAX_ITEMS == 3
    with ConfigStore(server.url) as store:
        stored = store.get_all()
    # Plain JSON stays plain for every other reader; the rest keeps constance's tags.
    assert stored["MAX_ITEMS"] == 3
    assert stored["PRICE"] == {"__type__": "decimal", "__value__": "12.50"}


def test_constance_serves_defaults_while_the_server_is_down(
    live: LazyConfig, server: EmbeddedServer, constance_config: Any
) -> None:
    server.kill()
    assert constance_config.SITE_NAME == "Shop"
    assert constance_config.MAX_ITEMS == 10


def test_import_copies_constances_stored_values_in_one_version(
    app: LazyConfig,
    server: EmbeddedServer,
    hotconfig_settings: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
    constance_config: Any,
) -> None:
    import constance.settings
    from constance.backends.redisd import RedisBackend  # type: ignore[import-untyped]

    # constance's own Redis backend, holding what a project stored before switching.
    monkeypatch.setattr(constance.settings, "REDIS_CONNECTION", server.url)
    old = RedisBackend()
    old.set("SITE_NAME", "Old Shop")
    old.set("LAUNCH_DAY", date(2025, 5, 1))
    old._rd.close()
    out = io.StringIO()
    with override_settings(HOTCONFIG={**hotconfig_settings, "URL": server.url}):
        call_command(
            "hotconfig",
            "import-constance",
            "--from-backend",
            "constance.backends.redisd.RedisBackend",
            stdout=out,
        )
    assert out.getvalue().strip() == (
        "imported 2 keys from constance.backends.redisd.RedisBackend into global at version 1: "
        "LAUNCH_DAY, SITE_NAME"
    )
    with ConfigStore(server.url) as store:
        assert store.history(10)[0].version == 1
        assert store.get("SITE_NAME") == "Old Shop"
    with override_settings(HOTCONFIG={**hotconfig_settings, "URL": server.url, "START": True}):
        from hotconfig_django import lifecycle

        lifecycle.setup()
        assert constance_config.SITE_NAME == "Old Shop"
        assert date(2025, 5, 1) == constance_config.LAUNCH_DAY
        assert constance_config.MAX_ITEMS == 10  # never stored: constance's default


def test_import_refuses_to_copy_from_itself(
    app: LazyConfig, server: EmbeddedServer, hotconfig_settings: dict[str, Any]
) -> None:
    with (
        override_settings(HOTCONFIG={**hotconfig_settings, "URL": server.url}),
        pytest.raises(CommandError, match="--from-backend"),
    ):
        call_command("hotconfig", "import-constance")


class _Inputs(HTMLParser):
    """The named <input> fields of a page and their values, as a browser would post them."""

    def __init__(self) -> None:
        super().__init__()
        self.fields: dict[str, str] = {}
        self._textarea: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        named = dict(attrs)
        name = named.get("name")
        if tag == "input" and name and named.get("type") != "submit":
            self.fields[name] = named.get("value") or ""
        elif tag == "textarea" and name:
            self._textarea = name
            self.fields[name] = ""

    def handle_data(self, data: str) -> None:
        if self._textarea is not None:
            self.fields[self._textarea] += data.strip("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag == "textarea":
            self._textarea = None


@pytest.fixture
def admin_client(django_project: None) -> Client:
    call_command("migrate", verbosity=0)
    from django.contrib.auth.models import User

    client = Client()
    admin, _ = User.objects.get_or_create(
        username="admin", defaults={"is_staff": True, "is_superuser": True}
    )
    client.force_login(admin)
    return client


def test_the_constance_admin_writes_through_to_every_process(
    live: LazyConfig, server: EmbeddedServer, constance_config: Any, admin_client: Client
) -> None:
    page = admin_client.get("/admin/constance/config/")
    assert page.status_code == 200
    form = _Inputs()
    form.feed(page.content.decode())
    assert form.fields["SITE_NAME"] == "Shop"
    with follower(server.url) as other:
        assert other.read()["ready"] is True
        saved = admin_client.post("/admin/constance/config/", {**form.fields, "SITE_NAME": "Admin"})
        assert saved.status_code == 302, saved.content.decode()[:2000]
        # The redirected page already shows the new value (the writer reads its own write).
        again = _Inputs()
        again.feed(admin_client.get("/admin/constance/config/").content.decode())
        assert again.fields["SITE_NAME"] == "Admin"
        signals = {m["signal"]: m for m in (other.read(timeout=5), other.read(timeout=5))}
        assert signals["constance"]["new"] == "Admin"
        assert other.ask("SITE_NAME")["constance"] == "Admin"
    with ConfigStore(server.url) as store:
        assert store.get_all() == {"SITE_NAME": "Admin"}  # only the changed field was written

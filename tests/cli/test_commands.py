"""Every store command of ``hotconfig``, against a real server, as a person or a script uses it."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from importlib.metadata import version
from pathlib import Path

import pytest
from click.testing import CliRunner

from hotconfig import ConfigStore
from hotconfig.cli import group
from hotconfig.testing.server import EmbeddedServer
from tests.cli.conftest import Run
from tests.conftest import ServerFactory

SECRET = "hunter2-do-not-leak"


@pytest.fixture
def not_redis() -> Iterator[int]:
    """A loopback port where an HTTP-like server answers anything with HTML."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(1.0)
                try:
                    conn.recv(4096)
                    conn.sendall(b"<html>not redis</html>\r\n")
                except OSError:
                    pass

    thread = threading.Thread(target=serve, name="not-redis", daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    stop.set()
    thread.join()
    listener.close()


def test_set_parses_json_else_takes_a_string(run: Run, store: ConfigStore) -> None:
    assert run("set", "n", "5").exit_code == 0
    run("set", "flags", '{"a": [1, true]}', "--scope", "service:billing")
    run("set", "model", "gpt-4o")
    run("set", "quoted", '"5"')
    assert store.get("n") == 5
    assert store.get("model") == "gpt-4o"
    assert store.get("quoted") == "5"
    assert store.get("flags", scope="service:billing") == {"a": [1, True]}
    result = run("set", "x", "1")
    assert result.stdout == f"set x in global: version {store.version}\n"


def test_get_prints_json_and_exits_1_for_a_missing_key(run: Run, store: ConfigStore) -> None:
    store.set("ai.model", {"name": "gpt-4o"})
    assert run("get", "ai.model").stdout == '{"name":"gpt-4o"}\n'
    scripted = json.loads(run("--json", "get", "ai.model").stdout)
    assert scripted == {"key": "ai.model", "scope": "global", "value": {"name": "gpt-4o"}}
    missing = run("get", "nope", "--scope", "env:prod")
    assert missing.exit_code == 1
    assert "'nope' is not set in scope 'env:prod'" in missing.stderr


def test_secrets_are_hidden_unless_asked_for(run: Run, store: ConfigStore) -> None:
    store.set("db.password", SECRET)
    store.set("stripeApiKey", SECRET)
    store.set("max_tokens", 512)
    for args in (["get", "db.password"], ["list"], ["--json", "list"], ["history"], ["export"]):
        result = run(*args)
        assert result.exit_code == (3 if args[0] == "get" else 0), args
        assert SECRET not in result.output, args
    assert run("list").stdout.splitlines()[1:] == [
        "db.password   ***",
        "max_tokens    512",
        "stripeApiKey  ***",
    ]
    assert json.loads(run("--show-secrets", "get", "db.password").stdout.strip()) == SECRET


def test_delete_and_list(run: Run, store: ConfigStore) -> None:
    store.set_many({"a": 1, "b": "two"})
    assert run("delete", "a").exit_code == 0
    assert run("list").stdout.splitlines() == ["KEY  VALUE", 'b    "two"']
    assert json.loads(run("--json", "list").stdout) == {"b": "two"}


def test_history_lists_writes_newest_first(run: Run, store: ConfigStore) -> None:
    store.set("a", 1)
    store.set("b", 2)
    store.delete("a")
    rows = json.loads(run("--json", "history", "--limit", "2").stdout)
    assert [row["version"] for row in rows] == [3, 2]
    assert rows[0]["changes"] == [{"op": "delete", "scope": "global", "key": "a"}]
    only_a = json.loads(run("--json", "history", "--key", "a").stdout)
    assert [row["version"] for row in only_a] == [3, 1]
    assert "set global b=2" in run("history").stdout


def test_rollback_restores_a_version_as_a_new_one(run: Run, store: ConfigStore) -> None:
    store.set_many({"model": "a", "limit": 1})  # 1
    store.set("model", "b")  # 2
    store.set("added", True)  # 3
    store.delete("limit")  # 4
    result = run("rollback", "1")
    assert result.exit_code == 0
    assert result.stdout == "rolled back to version 1: version 5\n"
    assert store.get_all() == {"model": "a", "limit": 1}
    [latest] = store.history(1)
    assert {(e.key, e.op) for e in latest.entries} == {
        ("model", "set"),
        ("added", "delete"),
        ("limit", "set"),
    }
    assert run("rollback", "5").stderr.startswith("nothing changed after version 5")
    bad = run("rollback", "9")
    assert bad.exit_code == 2
    assert "between 1 and the store's 5" in bad.stderr


def test_diff_between_scopes(run: Run, store: ConfigStore) -> None:
    store.set_many({"same": 1, "differs": "x", "only.global": True})
    store.set_many({"same": 1, "differs": "y"}, scope="env:prod")
    result = run("diff", "global", "env:prod")
    assert result.exit_code == 1
    assert result.stdout.splitlines() == [
        "KEY          GLOBAL  ENV:PROD",
        'differs      "x"     "y"',
        "only.global  true    (unset)",
    ]
    rows = json.loads(run("--json", "diff", "global", "env:prod").stdout)
    assert rows[0] == {
        "key": "differs",
        "a": {"scope": "global", "set": True, "value": "x"},
        "b": {"scope": "env:prod", "set": True, "value": "y"},
    }
    assert run("diff", "env:prod", "env:prod").exit_code == 0


def test_diff_json_tells_a_stored_null_from_a_key_not_set(run: Run, store: ConfigStore) -> None:
    store.set("feature", None)
    rows = json.loads(run("--json", "diff", "global", "env:prod").stdout)
    assert rows == [
        {
            "key": "feature",
            "a": {"scope": "global", "set": True, "value": None},
            "b": {"scope": "env:prod", "set": False},
        }
    ]


def test_export_then_import_round_trips_as_one_version(
    run: Run, store: ConfigStore, tmp_path: Path
) -> None:
    store.set_many({"a": 1, "nested": {"b": [1, 2]}})
    store.set("c", "x", scope="service:billing")
    store.set("api_token", SECRET)
    backup = tmp_path / "backup.json"
    result = run("export", "-o", str(backup))
    assert result.exit_code == 0
    assert "1 secret values left out" in result.stderr
    assert SECRET not in backup.read_text()
    exported = json.loads(backup.read_text())
    assert exported["scopes"] == {
        "global": {"a": 1, "nested": {"b": [1, 2]}},
        "service:billing": {"c": "x"},
    }
    store.set_many({"a": 99, "c": "gone"})
    before = store.version
    assert run("import", str(backup)).exit_code == 0
    assert store.version == before + 1  # every scope in one write
    assert store.get("a") == 1
    assert store.get("api_token") == SECRET
    flat = tmp_path / "flat.json"
    flat.write_text('{"x": 1, "y": "z"}')
    run("import", str(flat), "--scope", "env:dev")
    assert store.get_all("env:dev") == {"x": 1, "y": "z"}
    assert run("import", "-", input='{"stdin": true}').exit_code == 0
    assert store.get("stdin") is True


def test_errors_are_one_line_without_the_password(server: EmbeddedServer, run: Run) -> None:
    result = run("--url", "redis://admin:s3cr3t-pw@127.0.0.1:1/0", "get", "k")
    assert result.exit_code == 2
    assert "s3cr3t-pw" not in result.output
    assert "redis://admin:***@127.0.0.1:1/0" in result.stderr
    bad = run("--url", "http://example.invalid", "list")
    assert bad.exit_code == 2
    assert "unsupported Redis URL" in bad.stderr
    not_json = run("import", "-", input="{nope")
    assert not_json.exit_code == 2
    assert "is not JSON" in not_json.stderr


def test_without_click_the_command_says_what_to_install() -> None:
    # None in sys.modules makes `import click` fail, as on an install without the cli extra.
    code = "import sys; sys.modules['click'] = None; from hotconfig.cli import main; main([])"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert done.returncode == 2
    assert done.stderr == "error: the hotconfig command needs click and rich: " + (
        "pip install 'hotconfig[cli]'\n"
    )
    metrics = "import sys; sys.modules['prometheus_client'] = None; import hotconfig.fleet.metrics"
    failed = subprocess.run([sys.executable, "-c", metrics], capture_output=True, text=True)
    assert "pip install 'hotconfig[metrics]'" in failed.stderr


DEEP = "[" * 70 + "]" * 70  # deeper than every client accepts (64)
DEEPER = "[" * 3000 + "]" * 3000  # deeper than Python's JSON decoder can go


@pytest.mark.parametrize("value", [DEEP, DEEPER, "NaN", "Infinity", "1e999", '"a\\ud800b"'])
def test_a_value_every_client_would_refuse_is_not_written(
    run: Run, store: ConfigStore, value: str
) -> None:
    refused = run("set", "rules", value)
    assert refused.exit_code == 2, refused.output
    assert "no client would accept it" in refused.output
    assert "Traceback" not in refused.output
    assert store.version == 0  # nothing was written: the store would have broken its reads


def test_an_import_too_deep_to_read_is_one_line_and_writes_nothing(
    run: Run, store: ConfigStore
) -> None:
    refused = run("import", "-", input='{"rules": ' + DEEPER + "}")
    assert refused.exit_code == 2, refused.output
    assert "nested deeper" in refused.output
    for text in ('{"ratio": NaN}', '{"big": 1e999}', '{"name": "a\\ud800b"}'):
        refused = run("import", "-", input=text)
        assert refused.exit_code == 2, refused.output
        assert "not JSON every client accepts" in refused.output
    assert store.version == 0


def test_text_that_starts_like_json_but_is_not_is_refused_with_a_hint(
    run: Run, store: ConfigStore
) -> None:
    for text in ("{oops", "[1, 2", '"unterminated', ' {"a": 1} trailing'):
        result = run("set", "k", text)
        assert result.exit_code == 2, text
        assert "starts like JSON but is not JSON" in result.stderr
        assert "--string" in result.stderr
    assert store.version == 0  # nothing written
    assert run("set", "k", "{oops", "--string").exit_code == 0
    assert store.get("k") == "{oops"
    # Words stay words, a leading digit or minus included.
    for word in ("gpt-4o", "1.2.3", "2024-01-01", "10s", "-v"):
        assert run("set", "w", "--", word).exit_code == 0, word
        assert store.get("w") == word


def test_numeric_options_are_checked_before_the_server_sees_them(run: Run) -> None:
    for args in (
        ["history", "--limit", "-1"],
        ["history", "--limit", "0"],
        ["set", "k", "1", "--wait", "--timeout", "-1"],
        ["set", "k", "1", "--wait", "--timeout", "nan"],
        ["watch", "--timeout", "inf"],
    ):
        result = run(*args)
        assert result.exit_code == 2, args
        assert "Invalid value for '--" in result.stderr, args
        assert "XREVRANGE" not in result.output


def test_get_of_a_hidden_secret_exits_3_and_says_how_to_see_it(
    run: Run, store: ConfigStore
) -> None:
    store.set("db.password", SECRET)
    store.set("db", {"host": "h", "password": SECRET})
    for key in ("db.password", "db"):
        hidden = run("get", key)
        assert hidden.exit_code == 3, key
        assert SECRET not in hidden.output
        assert "--show-secrets" in hidden.stderr
        assert run("--json", "get", key).exit_code == 3
    shown = run("--show-secrets", "get", "db.password")
    assert (shown.exit_code, shown.stdout) == (0, f'"{SECRET}"\n')
    store.set("db.host", "h")
    assert run("get", "db.host").exit_code == 0


def test_delete_of_a_key_not_set_writes_nothing_and_exits_1(run: Run, store: ConfigStore) -> None:
    store.set("a", 1, scope="env:prod")
    result = run("delete", "a")  # set in env:prod, not in global
    assert result.exit_code == 1
    assert "'a' is not set in scope 'global': nothing deleted" in result.stderr
    assert store.version == 1
    assert run("delete", "a", "--scope", "env:prod").exit_code == 0
    assert store.version == 2


def test_every_command_tells_a_refusal_in_the_library_s_words(
    server_factory: ServerFactory,
) -> None:
    server = server_factory(password=SECRET)
    url = f"redis://127.0.0.1:{server.port}/0"  # no password
    for args in (
        ["get", "k"],
        ["set", "k", "1"],
        ["list"],
        ["history"],
        ["status"],
        ["watch", "--timeout", "1"],
        ["doctor"],
        ["export"],
        ["diff", "a", "b"],
    ):
        result = CliRunner().invoke(group, ["--url", url, *args])
        assert result.exit_code == 2, (args, result.output)
        assert "authentication failed: check the user name and password in the URL" in (
            result.stderr
        ), args
        assert "HELLO" not in result.output, args


def test_a_port_that_is_not_redis_is_told_so(not_redis: int) -> None:
    result = CliRunner().invoke(group, ["--url", f"redis://127.0.0.1:{not_redis}/0", "get", "k"])
    assert result.exit_code == 2
    assert "does not speak the Redis protocol: check host and port" in result.stderr
    assert "reply type byte" not in result.output


def test_global_options_may_follow_the_command(run: Run, store: ConfigStore) -> None:
    store.set("k", {"a": 1})
    store.set("k", 2, scope="env:prod")
    assert json.loads(run("get", "k", "--json").stdout) == json.loads(
        run("--json", "get", "k").stdout
    )
    assert json.loads(run("get", "k", "--scope", "env:prod", "--json").stdout)["value"] == 2
    assert run("list", "--namespace", "other").stdout.splitlines() == ["KEY  VALUE"]
    # After --, and as another option's value, it is not an option.
    assert run("set", "odd", "--", "--json").exit_code == 0
    assert store.get("odd") == "--json"


def test_version_prints_the_package_version(run: Run) -> None:
    result = run("--version")
    assert (result.exit_code, result.stdout) == (0, f"hotconfig {version('hotconfig')}\n")


def test_a_file_error_names_the_file_not_redis(
    run: Run, store: ConfigStore, tmp_path: Path
) -> None:
    missing = tmp_path / "nonexistent.json"
    result = run("import", str(missing))
    assert result.exit_code == 2
    assert result.stderr == f"Error: cannot read {missing}: No such file or directory\n"
    unwritable = tmp_path / "no-such-dir" / "backup.json"
    result = run("export", "-o", str(unwritable))
    assert result.exit_code == 2
    assert result.stderr == f"Error: cannot write {unwritable}: No such file or directory\n"
    assert store.version == 0

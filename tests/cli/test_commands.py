"""Every store command of ``hotconfig``, against a real server, as a person or a script uses it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from hotconfig import ConfigStore
from hotconfig.testing.server import EmbeddedServer
from tests.cli.conftest import Run

SECRET = "hunter2-do-not-leak"


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
        assert result.exit_code == 0, args
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
    assert rows[0] == {"key": "differs", "global": "x", "env:prod": "y"}
    assert run("diff", "env:prod", "env:prod").exit_code == 0


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

"""How the ``hotconfig`` command prints (hotconfig.cli.output): secrets hidden and counted,
JSON for scripts, remarks on stderr, and tables plain when piped, rich in a terminal."""

from __future__ import annotations

import datetime
import json

import pytest

from hotconfig._config.wire import Entry
from hotconfig.cli.output import HIDDEN, Output, dumps

SECRET = "hunter2-do-not-leak"


def test_a_secret_value_is_hidden_and_counted() -> None:
    out = Output(as_json=False, show_secrets=False)
    assert out.value("db.password", SECRET) == HIDDEN
    assert out.value("stripeApiKey", {"live": SECRET}) == HIDDEN
    assert out.value("max_tokens", 512) == 512
    assert out.hidden == 2


def test_secret_named_keys_inside_a_value_are_hidden_without_being_counted() -> None:
    out = Output(as_json=False, show_secrets=False)
    assert out.value("upstream", {"url": "x", "token": SECRET}) == {"url": "x", "token": HIDDEN}
    assert out.hidden == 0  # the key itself was shown


def test_show_secrets_shows_everything_and_counts_nothing() -> None:
    out = Output(as_json=False, show_secrets=True)
    assert out.value("db.password", SECRET) == SECRET
    assert out.value("upstream", {"token": SECRET}) == {"token": SECRET}
    assert out.keeps("api_token")
    assert out.hidden == 0


def test_an_export_leaves_secrets_out_and_counts_them() -> None:
    out = Output(as_json=False, show_secrets=False)
    kept = [key for key in ("a", "db.password", "api_token", "tokenizer") if out.keeps(key)]
    assert kept == ["a", "tokenizer"]
    assert out.hidden == 2


def test_an_entry_carries_its_value_only_when_it_sets_one() -> None:
    out = Output(as_json=False, show_secrets=False)
    assert out.entry(Entry("limit", 5, "service:billing", "set")) == {
        "op": "set",
        "scope": "service:billing",
        "key": "limit",
        "value": 5,
    }
    assert out.entry(Entry("auth.secret", SECRET)) == {
        "op": "set",
        "scope": "global",
        "key": "auth.secret",
        "value": HIDDEN,
    }
    assert out.entry(Entry("limit", None, "global", "delete")) == {
        "op": "delete",
        "scope": "global",
        "key": "limit",
    }


def test_shown_is_compact_json_or_the_hidden_mark_unquoted() -> None:
    out = Output(as_json=False, show_secrets=False)
    assert out.shown("flags", {"a": [1, True], "name": "é"}) == '{"a":[1,true],"name":"é"}'
    assert out.shown("quoted", "5") == '"5"'  # what `set` takes back as the string "5"
    assert out.shown("db.password", SECRET) == "***"


def test_dumps_writes_what_json_cannot_as_text() -> None:
    moment = datetime.datetime(2024, 5, 1, 12, 0, tzinfo=datetime.UTC)
    assert dumps({"at": moment}) == '{"at":"2024-05-01 12:00:00+00:00"}'


def test_json_goes_to_stdout_and_a_note_to_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    out = Output(as_json=True, show_secrets=False)
    out.json({"key": "é", "n": [1]})
    out.note("1 secret values left out")
    captured = capsys.readouterr()
    assert json.loads(captured.out) == {"key": "é", "n": [1]}
    assert captured.out.startswith('{\n  "key": "é"')
    assert captured.err == "1 secret values left out\n"


def test_piped_output_has_no_colour(capsys: pytest.CaptureFixture[str]) -> None:
    out = Output(as_json=False, show_secrets=False)
    assert not out.terminal  # pytest captures stdout: not a terminal
    out.line("converged", style="green")
    assert capsys.readouterr().out == "converged\n"


def test_a_piped_table_is_aligned_text_with_upper_case_headers(
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = Output(as_json=False, show_secrets=False)
    out.table(["key", "value"], [["db.password", HIDDEN], ["max_tokens", 512]], title="ignored")
    assert capsys.readouterr().out.splitlines() == [
        "KEY          VALUE",
        "db.password  ***",
        "max_tokens   512",
    ]


def test_a_piped_table_without_rows_is_its_header_alone(
    capsys: pytest.CaptureFixture[str],
) -> None:
    Output(as_json=False, show_secrets=False).table(["instance", "version"], [])
    assert capsys.readouterr().out == "INSTANCE  VERSION\n"


def test_in_a_terminal_a_table_is_drawn_with_its_title_and_markup_is_shown_as_text(
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = Output(as_json=False, show_secrets=False)
    out.terminal = True  # as if stdout were a terminal: rich draws the table
    out.table(["key", "value"], [["[bold]k[/bold]", '"v"']], title="global")
    text = capsys.readouterr().out
    assert "global" in text
    assert "[bold]k[/bold]" in text  # a value is never read as rich markup
    assert "KEY" not in text  # rich's own header, not the plain one
    assert "key" in text

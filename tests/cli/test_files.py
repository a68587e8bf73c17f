"""The files ``hotconfig import`` reads and ``hotconfig export`` writes (hotconfig.cli.files):
a plain mapping or an export, as JSON or YAML, and the mistakes a file can hold."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path
from typing import Any

import pytest

from hotconfig.cli.files import dump_file, load_file, write_file

EXPORT: dict[str, Any] = {
    "hotconfig": 1,
    "version": 7,
    "scopes": {
        "global": {"ai.model": "gpt-4o", "limits": {"rpm": 60}},
        "service:billing": {"currency": "€", "enabled": True},
    },
}


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_a_plain_mapping_goes_to_the_scope_asked_for(tmp_path: Path) -> None:
    path = write(tmp_path, "flat.json", '{"x": 1, "nested": {"y": [1, null]}}')
    assert load_file(path, "env:dev") == {"env:dev": {"x": 1, "nested": {"y": [1, None]}}}


def test_an_export_brings_its_own_scopes_and_ignores_the_one_asked_for(tmp_path: Path) -> None:
    path = write(tmp_path, "backup.json", json.dumps(EXPORT))
    assert load_file(path, "env:dev") == EXPORT["scopes"]


@pytest.mark.parametrize("fmt", ["json", "yaml"])
def test_what_export_writes_import_reads_back(tmp_path: Path, fmt: str) -> None:
    path = write(tmp_path, f"backup.{fmt}", dump_file(EXPORT, fmt))
    assert load_file(path, "global") == EXPORT["scopes"]


def test_a_yml_suffix_is_yaml_too(tmp_path: Path) -> None:
    path = write(tmp_path, "values.yml", "timeout: 5\nmodels:\n  - a\n  - b\n")
    assert load_file(path, "global") == {"global": {"timeout": 5, "models": ["a", "b"]}}


def test_a_json_dump_is_sorted_indented_and_keeps_non_ascii_text() -> None:
    text = dump_file({"b": 1, "a": {"z": "€", "y": None}}, "json")
    assert text == '{\n  "a": {\n    "y": null,\n    "z": "€"\n  },\n  "b": 1\n}\n'


def test_a_yaml_dump_is_sorted_and_keeps_non_ascii_text() -> None:
    assert dump_file({"b": "日本", "a": 1}, "yaml") == "a: 1\nb: 日本\n"


def test_a_dash_reads_json_from_stdin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO('{"from": "stdin"}'))
    assert load_file("-", "global") == {"global": {"from": "stdin"}}


@pytest.mark.parametrize(
    ("name", "text", "says"),
    [
        ("list.json", "[1, 2]", "must hold an object of keys and values"),
        ("scalar.yaml", "just a string\n", "must hold an object of keys and values"),
        ("empty.yaml", "", "must hold an object of keys and values"),
        ("broken.json", '{"a": 1,}', "is not JSON"),
        (
            "bad-export.json",
            '{"hotconfig": 1, "scopes": {"global": {"a": 1}, "env:prod": [1]}}',
            "each scope of an export must map keys to values",
        ),
    ],
)
def test_a_file_that_holds_no_values_is_refused_naming_the_file(
    tmp_path: Path, name: str, text: str, says: str
) -> None:
    path = write(tmp_path, name, text)
    with pytest.raises(ValueError, match=says) as refused:
        load_file(path, "global")
    assert str(refused.value).startswith(path)


def test_an_object_of_another_export_version_is_a_plain_mapping(tmp_path: Path) -> None:
    # Only version 1 is an export; anything else is values like any other.
    data = {"hotconfig": 2, "scopes": {"global": {"a": 1}}}
    path = write(tmp_path, "v2.json", json.dumps(data))
    assert load_file(path, "global") == {"global": data}


def test_without_pyyaml_a_yaml_file_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # None in sys.modules makes `import yaml` fail, as on an install without PyYAML.
    monkeypatch.setitem(sys.modules, "yaml", None)
    path = write(tmp_path, "values.yaml", "a: 1\n")
    with pytest.raises(ValueError, match=r"pip install pyyaml \(or use JSON\)"):
        load_file(path, "global")
    with pytest.raises(ValueError, match="YAML needs PyYAML"):
        dump_file({"a": 1}, "yaml")
    assert load_file(write(tmp_path, "values.json", '{"a": 1}'), "global") == {"global": {"a": 1}}


def test_a_file_that_cannot_be_read_is_named_with_the_reason(tmp_path: Path) -> None:
    missing = str(tmp_path / "missing.json")
    with pytest.raises(
        ValueError, match=r"^cannot read .*missing\.json: No such file or directory$"
    ):
        load_file(missing, "global")
    latin = tmp_path / "latin.json"
    latin.write_bytes(b'{"city": "M\xfcnchen"}')
    with pytest.raises(ValueError, match=r"^cannot read .*latin\.json: not UTF-8 text"):
        load_file(str(latin), "global")


def test_a_file_that_cannot_be_written_is_named_with_the_reason(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"^cannot write .*nowhere.*: No such file or directory$"):
        write_file(str(tmp_path / "nowhere" / "out.json"), "{}")

"""What ``hotconfig import`` makes of a file, property-based: scopes of keys and values, or one
ValueError that says why; never a traceback. Runs under the profile tests/hostile.py selects."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from hotconfig.cli.files import load_file
from tests.hostile import PROFILE, hostile_payloads, json_values, names, values

_exports = st.fixed_dictionaries(
    {
        "hotconfig": st.sampled_from([1, 1, 2, "1"]),
        "scopes": st.one_of(
            st.dictionaries(names, st.dictionaries(names, values, max_size=3), max_size=3),
            json_values,
        ),
    }
)


def _bytes(payload: bytes | str) -> bytes:
    return payload.encode("utf-8", "surrogatepass") if isinstance(payload, str) else payload


_files = st.one_of(
    hostile_payloads().map(_bytes),
    st.one_of(_exports, st.dictionaries(names, values, max_size=4), json_values).map(
        lambda document: json.dumps(document, allow_nan=True).encode("utf-8", "surrogatepass")
    ),
)


@PROFILE
@given(content=_files)
def test_an_import_file_is_scopes_of_values_or_one_value_error(
    tmp_path_factory: Any, content: bytes
) -> None:
    path: Path = tmp_path_factory.mktemp("import") / "values.json"
    path.write_bytes(content)
    try:
        layers = load_file(str(path), "global")
    except ValueError as exc:
        refused = str(exc)
    else:
        refused = ""
    if refused:
        assert str(path) in refused or "utf-8" in refused
        return
    assert all(isinstance(scope, str) and isinstance(v, dict) for scope, v in layers.items())

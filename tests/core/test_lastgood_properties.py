"""The last-known-good file, property-based: whatever the file holds, a client is built.

A file the library did not write (truncated, edited by hand, from an older release, hostile)
is ignored or loaded, never raised: ``HotConfig(cache_path=...)`` is in every process's start-up
path. Runs under the profile tests/hostile.py selects (``make fuzz`` runs it long).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hypothesis import event, given
from hypothesis import strategies as st

from hotconfig import HotConfig
from hotconfig._config.lastgood import LastKnownGood
from tests.hostile import PROFILE, hostile_payloads, json_values, names, values

UNREACHABLE = "redis://127.0.0.1:1/0"

_layers = st.one_of(
    st.dictionaries(names, st.dictionaries(names, values, max_size=3), max_size=3),
    json_values,
)


@st.composite
def _files(draw: st.DrawFn) -> bytes:
    """A file shaped like the library's (a field or two hostile), or anything at all."""
    if draw(st.booleans()):
        payload = draw(hostile_payloads())
        return payload.encode("utf-8", "surrogatepass") if isinstance(payload, str) else payload
    document: dict[str, Any] = {
        "format": draw(st.sampled_from([2, 2, 2, 1, "2", None])),
        "epoch": draw(st.one_of(st.text(max_size=8), json_values)),
        "version": draw(st.one_of(st.integers(min_value=0), json_values)),
        "digest": draw(st.one_of(st.text(max_size=8), json_values)),
        "layers": draw(_layers),
    }
    for field in draw(st.lists(st.sampled_from(sorted(document)), max_size=2)):
        document.pop(field, None)
    return json.dumps(document, allow_nan=True).encode("utf-8", "surrogatepass")


@PROFILE
@given(content=_files())
def test_any_cache_file_is_loaded_or_ignored_and_the_client_is_built(
    tmp_path_factory: Any, content: bytes
) -> None:
    path: Path = tmp_path_factory.mktemp("cache") / "config.json"
    path.write_bytes(content)
    loaded = LastKnownGood(path).load()
    event("loaded" if loaded is not None else "ignored")
    if loaded is not None:
        assert isinstance(loaded.version, int)
        assert isinstance(loaded.layers, dict)
    config: HotConfig[Any] = HotConfig(UNREACHABLE, cache_path=path, health=False)
    try:
        snapshot = config.snapshot()
        assert all(isinstance(key, str) for key in snapshot)
        json.dumps(dict(snapshot), allow_nan=False)  # what it serves is JSON any client accepts
    finally:
        config.close()

"""The files ``hotconfig import`` reads and ``hotconfig export`` writes: JSON, or YAML when
PyYAML is installed (it is not required).

An export is ``{"hotconfig": 1, "version": N, "scopes": {scope: {key: value}}}``; an import
also takes a plain ``{key: value}`` mapping, written to ``--scope``.
"""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path
from typing import Any

from .._config.wire import DEFAULT_LIMITS, decode_value
from ..errors import InvalidMessageError

__all__ = ["dump_file", "load_file", "write_file"]

_EXPORT_DEPTH = 3  # an export's values are nested under {"scopes": {scope: {key: ...}}}


def _yaml() -> Any:
    try:
        return importlib.import_module("yaml")
    except ImportError:
        raise ValueError("YAML needs PyYAML: pip install pyyaml (or use JSON)") from None


def load_file(path: str, scope: str) -> dict[str, dict[str, Any]]:
    """The scopes and values a file holds; ``-`` reads JSON from stdin.

    A file that cannot be read, or is not UTF-8, is a :class:`ValueError` naming it."""
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ValueError(f"cannot read {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise ValueError(f"cannot read {path}: not UTF-8 text ({exc.reason})") from None
    if path.endswith((".yaml", ".yml")):
        data = _yaml().safe_load(text)
    else:
        try:
            # The wire's own reader: what no client would accept is refused before any write.
            data = decode_value(text, DEFAULT_LIMITS.max_depth + _EXPORT_DEPTH)
        except InvalidMessageError as exc:
            raise ValueError(f"{path} is not JSON every client accepts: {exc.detail}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path} must hold an object of keys and values, or an export")
    if data.get("hotconfig") == 1 and isinstance(data.get("scopes"), dict):
        layers = data["scopes"]
        if not all(isinstance(values, dict) for values in layers.values()):
            raise ValueError(f"{path}: each scope of an export must map keys to values")
        return {str(name): dict(values) for name, values in layers.items()}
    return {scope: data}


def write_file(path: str, text: str) -> None:
    """Write ``text`` to ``path``; a :class:`ValueError` naming the file when it cannot."""
    try:
        Path(path).write_text(text, encoding="utf-8")
    except OSError as exc:
        raise ValueError(f"cannot write {path}: {exc.strerror or exc}") from None


def dump_file(data: dict[str, Any], fmt: str) -> str:
    if fmt == "yaml":
        text: str = _yaml().safe_dump(data, sort_keys=True, allow_unicode=True)
        return text
    return json.dumps(data, ensure_ascii=False, indent=2, sort_keys=True) + "\n"

"""Which values must never be shown: in reprs, logs, errors, stats or signals (DESIGN §7)."""

from __future__ import annotations

from typing import Any

__all__ = ["looks_secret", "shown"]

_SECRET_WORDS = ("password", "passwd", "secret", "token", "api_key", "apikey", "credential")


def looks_secret(key: str) -> bool:
    """Whether a key's name says its value is a secret (``db.password``, ``api_token``, ...)."""
    lowered = key.lower()
    return any(word in lowered for word in _SECRET_WORDS)


def shown(value: Any, secret: bool, limit: int = 80) -> str:
    """``repr(value)`` cut to ``limit`` characters, or ``'***'`` for a secret."""
    if secret:
        return "'***'"
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."

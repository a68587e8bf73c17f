"""Which values must never be shown: in reprs, logs, errors, stats or signals (DESIGN §7).

A key is secret when one of the *words* of its name is a secret word: ``db.password``,
``api_token``, ``stripeApiKey`` and ``auth.client-secret`` are; ``max_tokens`` and
``tokenizer.name`` are not (a substring match would hide half of an AI service's settings).
Fields typed ``SecretStr``/``SecretBytes`` are secret whatever their name (see schema), and
:func:`add_secret_patterns` adds names of your own.
"""

from __future__ import annotations

import fnmatch
import itertools
import re
from functools import lru_cache
from typing import Any, Final

__all__ = ["add_secret_patterns", "looks_secret", "masked", "shown"]

_SECRET_WORDS: Final = frozenset(
    {"password", "passwords", "passwd", "passphrase", "secret", "secrets", "token", "credential"}
    | {"credentials"}
)
# Two-word names, matched as adjacent words ("api_key", "apiKey", "private.key").
_SECRET_PAIRS: Final = frozenset({("api", "key"), ("private", "key"), ("access", "key")})
_JOINED: Final = frozenset({"apikey", "privatekey", "accesskey"})
# Words are runs of letters, or of digits ("password2" is "password", "2"); a capital after a
# lower-case letter starts a new one.
_WORD = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|[0-9]+")
_extra: list[str] = []


def add_secret_patterns(*patterns: str) -> None:
    """Treat keys matching any of these fnmatch patterns (case-insensitive) as secret too."""
    _extra.extend(pattern.lower() for pattern in patterns)
    looks_secret.cache_clear()


@lru_cache(maxsize=4096)
def looks_secret(key: str) -> bool:
    """Whether a key's name says its value is a secret (``db.password``, ``api_token``, ...)."""
    words = [word.lower() for word in _WORD.findall(key)]
    if any(word in _SECRET_WORDS or word in _JOINED for word in words):
        return True
    if any(pair in _SECRET_PAIRS for pair in itertools.pairwise(words)):
        return True
    lowered = key.lower()
    return any(fnmatch.fnmatchcase(lowered, pattern) for pattern in _extra)


def shown(value: Any, secret: bool, limit: int = 80) -> str:
    """``repr(value)`` cut to ``limit`` characters, or ``'***'`` for a secret; inside a JSON
    value, the values of secret-named keys are ``'***'`` too (``{"password": ...}``)."""
    if secret:
        return "'***'"
    text = repr(masked(value))
    return text if len(text) <= limit else text[: limit - 3] + "..."


def masked(value: Any, depth: int = 0) -> Any:
    """``value`` with the values of secret-named keys, at any depth, replaced by ``'***'``."""
    if depth > 64:
        return "***"
    if isinstance(value, dict):
        return {
            k: "***" if isinstance(k, str) and looks_secret(k) else masked(v, depth + 1)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [masked(item, depth + 1) for item in value]
    return value

"""Who may change the configuration, and what is never shown (DESIGN §7).

Signed changes (:class:`KeyRing`, :func:`signed_message`), the values kept out of logs,
reprs and streams (:func:`add_secret_patterns`; :func:`redacted_url` hides a URL's
password), and least-privilege ACL rules per role (:func:`rules`, :func:`doctor`;
``hotconfig acl`` prints them).

The names are imported on first use (PEP 562): the config pipeline imports the redaction
rules on its way in, and the ACL rules name the pipeline's channels in turn.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .._redis.connection import redacted as redacted_url
    from .acl import ROLES, Role, doctor, rules
    from .redaction import add_secret_patterns, looks_secret
    from .signing import ENV_VAR, KeyRing, Verdict, signed_message

__all__ = [
    "ENV_VAR",
    "ROLES",
    "KeyRing",
    "Role",
    "Verdict",
    "add_secret_patterns",
    "doctor",
    "looks_secret",
    "redacted_url",
    "rules",
    "signed_message",
]

# Where each name lives: (module, its name there).
_HOME = {
    "ENV_VAR": (".signing", "ENV_VAR"),
    "ROLES": (".acl", "ROLES"),
    "KeyRing": (".signing", "KeyRing"),
    "Role": (".acl", "Role"),
    "Verdict": (".signing", "Verdict"),
    "add_secret_patterns": (".redaction", "add_secret_patterns"),
    "doctor": (".acl", "doctor"),
    "looks_secret": (".redaction", "looks_secret"),
    "redacted_url": ("hotconfig._redis.connection", "redacted"),
    "rules": (".acl", "rules"),
    "signed_message": (".signing", "signed_message"),
}


def __getattr__(name: str) -> Any:
    if name not in _HOME:
        raise AttributeError(f"module 'hotconfig.security' has no attribute {name!r}")
    module, attribute = _HOME[name]
    value = getattr(importlib.import_module(module, __name__), attribute)
    globals()[name] = value  # later lookups are plain module attribute reads
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})

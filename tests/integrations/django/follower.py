"""A second Django process of the test project, driven over stdin/stdout in JSON lines.

It prints ``{"ready": ...}`` once its listener is LIVE, then one line per ``config_updated``
it receives (hotconfig_django's and django-constance's), and answers ``{"read": KEY}`` with
what ``constance.config.KEY`` and ``hotconfig_django.config.get(KEY)`` return here.

    python -m tests.integrations.django.follower
"""

from __future__ import annotations

import json
import os
import sys
import threading
from typing import Any

from tests.integrations.django import project

_out = threading.Lock()


def say(**fields: Any) -> None:
    with _out:
        print(json.dumps(fields, default=str), flush=True)


def _ours(sender: object, key: str, old_value: Any, new_value: Any, **kw: Any) -> None:
    from hotconfig_django import config

    change = kw["change"]
    say(signal="hotconfig", key=key, old=old_value, new=new_value, version=change.version,
        sender_is_config=sender is config, thread=threading.current_thread().name)  # fmt: skip


def main() -> None:
    # Connected before django.setup(): what the app loads at start must not be told (DESIGN §5,
    # "start is not a change"); a signal printed before "ready" would be one.
    from hotconfig_django.signals import config_updated

    config_updated.connect(_ours, weak=False)
    project.configure()
    import constance  # type: ignore[import-untyped]
    import constance.signals  # type: ignore[import-untyped]

    from hotconfig_django import config

    def theirs(sender: object, key: str, old_value: Any, new_value: Any, **kw: Any) -> None:
        say(signal="constance", key=key, old=old_value, new=new_value, pid=os.getpid())

    constance.signals.config_updated.connect(theirs, weak=False)
    say(ready=True, status=str(config.status), pid=os.getpid())
    for line in sys.stdin:
        key = json.loads(line)["read"]
        say(key=key, constance=getattr(constance.config, key), hotconfig=config.get(key))


if __name__ == "__main__":
    main()

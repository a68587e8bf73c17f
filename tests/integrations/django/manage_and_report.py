"""Run the example project's manage.py with the given arguments, then report on the process.

``python -m tests.integrations.django.manage_and_report migrate`` runs manage.py exactly as
``python manage.py migrate`` does (same ``sys.argv``), then prints one JSON line with the
listener threads still alive and the client's status, so a test can see what migrate left.
"""

from __future__ import annotations

import json
import runpy
import sys
import threading

from tests.integrations.django.processes import EXAMPLE, LISTENER_NAME_PREFIX


def main() -> None:
    sys.argv = ["manage.py", *sys.argv[1:]]
    code: object = 0
    try:
        runpy.run_path(str(EXAMPLE / "manage.py"), run_name="__main__")
    except SystemExit as exc:
        code = exc.code
    from hotconfig_django import config

    listeners = [t.name for t in threading.enumerate() if t.name.startswith(LISTENER_NAME_PREFIX)]
    status = str(config.client.status)
    print(json.dumps({"report": {"listeners": listeners, "status": status, "exit": code}}))
    raise SystemExit(code)


if __name__ == "__main__":
    main()

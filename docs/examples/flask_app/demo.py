"""The Flask example end to end: gunicorn --preload -w 3 serving shop.py, then a live change.

    python docs/examples/flask_app/demo.py

Starts an embedded Valkey (``pip install 'hotconfig[flask,embedded]' gunicorn``) on a free
loopback port, runs the app under gunicorn with three workers, changes ``banner.text`` and
``maintenance`` through ``ConfigStore``, and prints what each worker serves and how soon.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from hotconfig import ConfigStore
from hotconfig.testing import EmbeddedServer, free_port

HERE = Path(__file__).resolve().parent
WORKERS = 3


def ask(port: int) -> list[tuple[int, dict[str, Any]]]:
    """One request on each of WORKERS connections opened together (so, most often, one per
    worker): each answer's HTTP status and JSON body."""
    connections = [http.client.HTTPConnection("127.0.0.1", port, timeout=5) for _ in range(WORKERS)]
    answers = []
    try:
        for connection in connections:
            connection.connect()
        for connection in connections:
            connection.request("GET", "/")
            response = connection.getresponse()
            answers.append((response.status, json.loads(response.read())))
    except (OSError, http.client.HTTPException):
        return []  # not up yet
    finally:
        for connection in connections:
            connection.close()
    return answers


def workers_serving(port: int, wanted: str, timeout: float = 10.0) -> dict[int, float]:
    """pid -> seconds until that worker first served the banner text ``wanted``."""
    started = time.monotonic()
    seen: dict[int, float] = {}
    while len(seen) < WORKERS and time.monotonic() - started < timeout:
        for status, body in ask(port):
            if status == 200 and body["banner"] == wanted:
                seen.setdefault(body["pid"], time.monotonic() - started)
    return seen


def main() -> int:
    with EmbeddedServer("valkey") as server, ConfigStore(server.url) as store:
        store.set("banner.text", "Welcome to the shop")
        port = free_port()
        env = {**os.environ, "FLASK_HOTCONFIG_URL": server.url}
        command = [
            sys.executable, "-m", "gunicorn", "--preload", "--workers", str(WORKERS),
            "--bind", f"127.0.0.1:{port}", "--chdir", str(HERE), "shop:create_app()",
        ]  # fmt: skip
        gunicorn = subprocess.Popen(command, env=env, stderr=subprocess.DEVNULL)
        try:
            print(f"gunicorn --preload -w {WORKERS} on http://127.0.0.1:{port}/ ...")
            ready = workers_serving(port, "Welcome to the shop", timeout=30)
            print(f"{len(ready)} workers serve the banner: {sorted(ready)}")

            print("\nstore.set('banner.text', 'Sale today')")
            store.set("banner.text", "Sale today")
            for pid, seconds in sorted(workers_serving(port, "Sale today").items()):
                print(f"  worker {pid} serves it after {seconds * 1000:.1f} ms")

            print("\nstore.set('maintenance', True)  (mirrored into app.config)")
            store.set("maintenance", True)
            time.sleep(0.2)
            print(f"  answers: {sorted({status for status, _ in ask(port)})} (503: closed)")
            store.set("maintenance", False)
        finally:
            gunicorn.send_signal(signal.SIGTERM)
            gunicorn.wait(timeout=15)
    return 0


if __name__ == "__main__":
    sys.exit(main())

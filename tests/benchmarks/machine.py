"""What the numbers were measured on: CPU, cores, Python, library and server versions."""

from __future__ import annotations

import os
import platform
import subprocess
from importlib import metadata
from typing import Any

from hotconfig.testing.server import EmbeddedServer

_PACKAGES = (
    *("hotconfig", "redis", "hiredis", "pydantic", "pydantic-core"),
    *("dynaconf", "django-constance", "Django"),
)


def describe(server: EmbeddedServer) -> dict[str, Any]:
    with server.client() as client:
        info = client.info("server")
    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "cores_usable": len(os.sched_getaffinity(0)),
        "kernel": platform.release(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "packages": {name: _version(name) for name in _PACKAGES},
        "server": f"{server.kind} {info.get('valkey_version') or info.get('redis_version')}",
        "git": _git_revision(),
        "load_average_at_start": os.getloadavg()[0],
    }


def summary(machine: dict[str, Any]) -> str:
    packages = machine["packages"]
    libs = ", ".join(f"{name} {packages[name]}" for name in ("redis", "hiredis", "pydantic"))
    return (
        f"machine: {machine['cpu']}, {machine['cores']} cores "
        f"({machine['cores_usable']} usable), Linux {machine['kernel']}\n"
        f"python:  {machine['python']}; {libs}\n"
        f"server:  {machine['server']} on 127.0.0.1 (same machine); git {machine['git']}\n"
        f"load:    {machine['load_average_at_start']:.2f} (1-min average when the run started)"
    )


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def _git_revision() -> str:
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True
        )
        return head + ("+dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"

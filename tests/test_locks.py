"""The gate runs on what the locks say (CONTRIBUTING.md, "The locks")."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from tests import locks


def dev_requirements() -> list[str]:
    """The distribution names of the dev extra, the project's own extras left out."""
    with locks.PYPROJECT.open("rb") as file:
        dev: list[str] = tomllib.load(file)["project"]["optional-dependencies"]["dev"]
    names = [locks.normalize(re.split(r"[\[<>=; ]", spec, maxsplit=1)[0]) for spec in dev]
    return [name for name in names if name != "hotconfig"]


def test_the_virtualenv_holds_exactly_the_locked_versions() -> None:
    installed = locks.installed_versions()
    assert locks.drift(installed, locks.locked_versions()) == []
    missing = [name for name in dev_requirements() if name not in installed]
    assert missing == [], "the dev extra is not installed in full"


def test_drift_names_each_package_whose_version_is_not_locked() -> None:
    locked = {"redis": {"8.2.0"}, "django": {"5.2.9", "6.0.1"}}
    installed = {"redis": "8.3.0", "django": "6.0.1", "pip": "25.0"}
    assert locks.drift(installed, locked) == ["redis: uv.lock 8.2.0, installed 8.3.0"]


def test_uv_itself_is_installed_from_the_lock_s_hashes() -> None:
    requirement = locks.uv_requirement()
    version = next(iter(locks.locked_versions()["uv"]))
    assert requirement.startswith(f"uv=={version} --hash=sha256:")


def test_the_lowest_lock_pins_every_floor_and_is_current() -> None:
    assert locks.stale_lowest() == []
    pins = locks.pinned()
    for spec in locks.core_dependencies():
        name, floor = re.split(r"(?:\[[^]]*\])?>=", spec)
        # At the floor, or above it where another floor asks for more (pydantic 2.11.0 needs
        # typing-extensions 4.12.2).
        version = pins[locks.normalize(name)]
        assert tuple(map(int, version.split("."))) >= tuple(map(int, floor.split("."))), spec
    assert pins["redis"] == "5.2.1"


def test_a_changed_floor_makes_the_lowest_lock_stale(tmp_path: Path) -> None:
    pyproject = tmp_path / "pyproject.toml"
    text = locks.PYPROJECT.read_text().replace('"pydantic>=2.11"', '"pydantic>=2.12"')
    assert text != locks.PYPROJECT.read_text()
    pyproject.write_text(text)
    [reason] = locks.stale_lowest(pyproject)
    assert "pydantic>=2.12" in reason
    assert locks.stale_lowest(tmp_path / "pyproject.toml", tmp_path / "lowest.txt") == [
        "lowest.txt is missing"
    ]

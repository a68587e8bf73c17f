"""The tests mirror the code: the tests of ``x.py`` are in a file named after it.

For every module of ``hotconfig/`` there is a ``test_x.py`` (or ``test_x_<what>.py``) under
``tests/`` (outside ``tests/integrations``), the module's leading underscore dropped: the tests
of ``hotconfig/bridge/_links.py`` are ``tests/core/test_links.py``. For every module of an
integration, ``integrations/hotconfig_<fw>/x.py``, there is one in ``tests/integrations/<fw>/``.
Package ``__init__`` and ``__main__`` modules are exempt: their packages' tests are named after
the package.
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCES = (ROOT / "hotconfig", ROOT / "integrations")

# Modules whose tests still go by another name; the list only shrinks.
STILL_UNNAMED = frozenset(
    {
        "integrations/hotconfig_django/apps.py",
        "integrations/hotconfig_django/errors.py",
        "integrations/hotconfig_django/lifecycle.py",
        "integrations/hotconfig_django/process.py",
        "integrations/hotconfig_django/pytest_plugin.py",
        "integrations/hotconfig_fastapi/dependencies.py",
        "integrations/hotconfig_fastapi/lifespan.py",
        "integrations/hotconfig_flask/errors.py",
    }
)


def _test_stems(where: Path, leave_out: Path | None = None) -> set[str]:
    return {
        path.stem
        for path in where.rglob("test_*.py")
        if leave_out is None or not path.is_relative_to(leave_out)
    }


def _unnamed() -> list[str]:
    tests = ROOT / "tests"
    unnamed = []
    for source in SOURCES:
        for module in sorted(source.rglob("*.py")):
            if module.name in ("__init__.py", "__main__.py") or "management" in module.parts:
                continue
            if source.name == "integrations":  # tests/integrations/<framework>/
                package = module.relative_to(source).parts[0]
                stems = _test_stems(tests / "integrations" / package.removeprefix("hotconfig_"))
            else:  # the core's tests: anywhere but under tests/integrations
                stems = _test_stems(tests, leave_out=tests / "integrations")
            name = "test_" + module.stem.lstrip("_")
            if not any(stem == name or stem.startswith(name + "_") for stem in stems):
                unnamed.append(module.relative_to(ROOT).as_posix())
    return unnamed


def test_every_module_has_a_test_file_named_after_it() -> None:
    unnamed = [module for module in _unnamed() if module not in STILL_UNNAMED]
    assert unnamed == [], "write (or rename) a test_<module>.py for each"


def test_the_list_of_modules_without_one_only_shrinks() -> None:
    named_now = sorted(STILL_UNNAMED - set(_unnamed()))
    assert named_now == [], "these have a test file now: take them off STILL_UNNAMED"

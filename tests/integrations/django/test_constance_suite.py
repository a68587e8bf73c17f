"""django-constance's own test suite on hotconfig's backend: the drop-in, tested by constance.

The suite is the ``tests/`` package of django-constance's sdist, at the release uv.lock installs
(``VERSION``, checked against the lock below), fetched once from PyPI and verified against
``SHA256``, then cached in the virtualenv: a second run downloads nothing. A failed download
fails the test; it never skips. The suite runs in a process of its own (its package is named
``tests`` too) with ``constance_suite/hotconfig_suite/settings.py``: constance's test settings
with ``CONSTANCE_BACKEND`` on hotconfig and ``HOTCONFIG`` on the test's server, together with
constance's generic ``StorageTestsMixin`` (``hotconfig_suite/storage.py``). It runs twice: as
``docs/django.md`` sets up tests (no listener: the writer reads its own writes), and following
the store with a listener.

Each of constance's tests that fails on hotconfig's backend is in ``EXPECTED_FAILURES`` with
why, as in docs/django.md: a new failure, or one that starts passing, turns the run red.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import urljoin

import pytest

from hotconfig.testing import EmbeddedServer
from tests.locks import locked_versions

VERSION = "4.4.0"
SHA256 = "fc0b012b493590946142172ca38e0b43149c422f8dc8976045a01313e6f4f487"
CACHE = Path(sys.prefix) / "hotconfig-test-cache"
HARNESS = Path(__file__).resolve().parent / "constance_suite"
_INDEX = "https://pypi.org/pypi/django-constance/json"
RAN = 159  # constance's 154 tests at VERSION and the 5 of its StorageTestsMixin

EXPECTED_FAILURES = {
    "tests.test_utils.UtilsTestCase.test_get_values": (
        "expects every default, but an earlier test, test_admin's "
        "test_submit_aware_datetime, stops its form from saving by mocking the Redis "
        "backend's test double (tests.redis_mockup.Connection.set): on any backend outside "
        "the test's database transaction, constance's own RedisBackend on a real server "
        "included, the value is saved and is still there"
    ),
}
# The one test constance skips itself when its suite runs without pytest.
SKIPPED = {"tests.test_pytest_overrides.PytestTests.test_do_not_skip_silently"}


def test_the_suite_is_the_release_uv_lock_installs() -> None:
    assert locked_versions()["django-constance"] == {VERSION}, (
        "uv.lock moved django-constance: set VERSION and SHA256 (PyPI's sdist) in this file to "
        "the locked release, and check EXPECTED_FAILURES and docs/django.md against its suite"
    )


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _download() -> bytes:
    """The sdist at ``VERSION`` from PyPI (its JSON API names the file), checked by ``SHA256``."""
    try:
        with urllib.request.urlopen(_INDEX, timeout=30) as response:
            files: list[dict[str, Any]] = json.load(response)["releases"][VERSION]
        # A mirror of the API may name the file relative to the index.
        url = urljoin(_INDEX, next(f["url"] for f in files if f["packagetype"] == "sdist"))
        with urllib.request.urlopen(url, timeout=60) as response:
            data: bytes = response.read()
    except urllib.error.HTTPError as exc:
        exc.close()
        _no_sdist(exc)
    except (OSError, ValueError, KeyError, StopIteration) as exc:
        _no_sdist(exc)
    if (digest := hashlib.sha256(data).hexdigest()) != SHA256:
        pytest.fail(
            f"django-constance {VERSION}'s sdist from PyPI has sha256 {digest}, not the "
            f"pinned {SHA256}: refusing to run it",
            pytrace=False,
        )
    return data


def _no_sdist(error: Exception) -> NoReturn:
    pytest.fail(
        f"could not download django-constance {VERSION}'s sdist from PyPI ({error!r}): the "
        f"suite needs to reach pypi.org once; it is cached in {CACHE} after that",
        pytrace=False,
    )


def constance_tests() -> Path:
    """A directory holding django-constance's ``tests`` package at ``VERSION``."""
    unpacked = CACHE / f"django-constance-{VERSION}"
    if (unpacked / "tests" / "storage.py").is_file():
        return unpacked
    CACHE.mkdir(parents=True, exist_ok=True)
    archive = CACHE / f"django_constance-{VERSION}.tar.gz"
    if not archive.is_file() or _sha256(archive) != SHA256:
        partial = archive.with_name(f"{archive.name}.{os.getpid()}")
        partial.write_bytes(_download())
        partial.replace(archive)  # atomic: another worker may be fetching it too
    staging = CACHE / f"unpacking-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    top = f"django_constance-{VERSION}/"
    with tarfile.open(archive) as sdist:
        members = [m for m in sdist.getmembers() if m.name.startswith(top + "tests/")]
        for member in members:
            member.name = member.name.removeprefix(top)
        sdist.extractall(staging, members=members, filter="data")
    try:
        staging.rename(unpacked)
    except OSError:  # another worker unpacked it first
        shutil.rmtree(staging, ignore_errors=True)
    return unpacked


@pytest.mark.slow
@pytest.mark.parametrize("listener", [False, True], ids=["no-listener", "listener"])
def test_django_constances_own_suite_passes_on_hotconfigs_backend(
    server: EmbeddedServer, listener: bool, tmp_path: Path
) -> None:
    suite = constance_tests()
    report = tmp_path / "report.json"
    env = {
        **os.environ,
        # Theirs first: constance's package is named ``tests``, as ours is.
        "PYTHONPATH": os.pathsep.join([str(suite), str(HARNESS)]),
        "DJANGO_SETTINGS_MODULE": "hotconfig_suite.settings",
        "HOTCONFIG_URL": server.url,
        "HOTCONFIG_SUITE_START": "1" if listener else "0",
        "HOTCONFIG_SUITE_REPORT": str(report),
    }
    done = subprocess.run(
        [sys.executable, "-m", "django", "test", "tests", "hotconfig_suite.storage"],
        cwd=suite,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert report.is_file(), f"the suite did not run:\n{done.stderr[-4000:]}"
    result = json.loads(report.read_text())
    assert set(result["failed"]) == set(EXPECTED_FAILURES), done.stderr[-8000:]
    assert set(result["skipped"]) == SKIPPED
    assert result["unexpected_successes"] == []
    assert result["ran"] == RAN

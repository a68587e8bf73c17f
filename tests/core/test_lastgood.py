"""The last-known-good file: what a client serves when it starts while Redis is down."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest
from pydantic import BaseModel

from hotconfig import ConfigStore, HotConfig, Status
from hotconfig._config.lastgood import LastKnownGood
from hotconfig._redis.keyspace import StoreSnapshot
from hotconfig.testing.server import EmbeddedServer, free_port


class Settings(BaseModel):
    limit: int = 10
    feature_x: bool = False


STORED = StoreSnapshot("epoch-1", 7, {"global": {"limit": 3, "note": {"a": [1]}}})


def test_what_is_saved_loads_back(tmp_path: Path) -> None:
    cache = LastKnownGood(tmp_path / "nested" / "lkg.json")
    cache.save(STORED)
    assert cache.load() == STORED
    assert os.listdir(tmp_path / "nested") == ["lkg.json"]  # no temporary file left behind


def test_a_missing_file_is_no_snapshot_and_no_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    assert LastKnownGood(tmp_path / "absent.json").load() is None
    assert caplog.records == []


@pytest.mark.parametrize(
    "content",
    [
        "{half a file",
        '{"format": 2, "epoch": null, "version": 1, "layers": {}}',  # a format we do not know
        '{"format": 1, "epoch": null, "layers": {}}',  # no version
        '{"format": 1, "epoch": null, "version": 1, "layers": [1]}',
        "[]",
        # Hostile or corrupt: a number out of range, nesting deeper than Python can decode,
        # nesting deeper than the wire allows, text that is not UTF-8.
        '{"format": 2, "epoch": null, "version": 1e999, "digest": "", "layers": {}}',
        '{"format": 2, "layers": {"global": {"k": ' + "[" * 5000 + "]" * 5000 + "}}}",
        '{"format": 2, "epoch": null, "version": 1, "digest": "", "layers": {"global": '
        '{"k": ' + "[" * 100 + "]" * 100 + "}}}",
        b'{"format": 2, "epoch": "\xff"}',
    ],
)
def test_an_unreadable_file_is_ignored(tmp_path: Path, content: str | bytes) -> None:
    path = tmp_path / "lkg.json"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    assert LastKnownGood(path).load() is None


def test_a_client_made_with_a_corrupt_file_starts_and_serves_its_defaults(
    tmp_path: Path,
) -> None:
    path = tmp_path / "lkg.json"
    path.write_text('{"format": 2, "version": 1e999, "layers": {}, "epoch": null, "digest": ""}')
    with HotConfig("redis://127.0.0.1:1/0", model=Settings, cache_path=path) as config:
        assert config.start(timeout=0.1) is False
        assert config.settings == Settings()


def test_a_failed_save_is_logged_and_keeps_the_previous_file(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "lkg.json"
    cache = LastKnownGood(path)
    cache.save(STORED)
    with caplog.at_level(logging.WARNING, logger="hotconfig"):
        cache.save(StoreSnapshot(None, 8, {"global": {"limit": object()}}))  # not JSON
    assert "could not write" in caplog.text
    assert cache.load() == STORED
    assert os.listdir(tmp_path) == ["lkg.json"]


def test_a_client_that_starts_while_redis_is_down_serves_the_last_known_good(
    server: EmbeddedServer, tmp_path: Path
) -> None:
    path = tmp_path / "lkg.json"
    with ConfigStore(server.url) as store, HotConfig(server.url, cache_path=path) as config:
        store.set("limit", 3)
        version = store.set_many({"feature_x": True, "extra.key": "kept"})
        assert config.wait_for_version(version, timeout=5)
    server.kill()

    restarted = HotConfig(server.url, model=Settings, cache_path=path)
    try:
        assert restarted.start(timeout=0.2) is False
        assert restarted.status is Status.STARTING
        assert (restarted.settings.limit, restarted.settings.feature_x) == (3, True)
        assert restarted.get("extra.key") == "kept"
        assert restarted.version == version
    finally:
        restarted.close()


def test_a_cached_value_the_model_now_refuses_falls_back_to_the_default(tmp_path: Path) -> None:
    path = tmp_path / "lkg.json"
    stored = StoreSnapshot("e", 2, {"global": {"limit": "many", "feature_x": True}})
    LastKnownGood(path).save(stored)
    config = HotConfig(f"redis://127.0.0.1:{free_port()}/0", model=Settings, cache_path=path)
    try:
        assert config.settings.feature_x is True
        assert config.settings.limit == 10
    finally:
        config.close()

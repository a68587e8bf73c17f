"""ConfigStore: versioned writes, reads and history, on real servers."""

from __future__ import annotations

import pytest
import redis

from hotconfig import ConfigStore, Entry, HotConfig, Timings
from hotconfig.testing.server import EmbeddedServer


def test_writes_bump_one_version_each_and_read_back(server: EmbeddedServer) -> None:
    with ConfigStore(server.url) as store:
        assert (store.version, store.epoch) == (0, None)
        assert store.set("a.b", {"x": [1, 2]}) == 1
        assert store.set_many({"c": 1, "d": "é"}, scope="env:prod") == 2
        assert store.delete("c", scope="env:prod") == 3
        assert store.apply([Entry("e", True), Entry("d", None, "env:prod", "delete")]) == 4
        assert store.version == 4
        assert store.epoch is not None
        assert store.get("a.b") == {"x": [1, 2]}
        assert store.get("missing", default=5) == 5
        assert store.get_all("global") == {"a.b": {"x": [1, 2]}, "e": True}
        assert store.get_all("env:prod") == {}
        assert store.scopes() == ["env:prod", "global"]
        history = store.history(10)
        assert [h.version for h in history] == [4, 3, 2, 1]
        assert history[-1].entries == (Entry("a.b", {"x": [1, 2]}),)
        assert [h.version for h in store.history(10, key="c")] == [3, 2]


def test_bad_writes_are_refused_before_reaching_the_server(server: EmbeddedServer) -> None:
    with ConfigStore(server.url, max_message_bytes=1000) as store:
        with pytest.raises(ValueError, match="key"):
            store.set("bad key", 1)
        with pytest.raises(ValueError, match="JSON"):
            store.set("k", object())
        assert store.version == 0


def test_a_change_over_the_message_limit_is_written_whole_and_reaches_every_client(
    server: EmbeddedServer,
) -> None:
    # 100k keys: megabytes, far over the 1 MiB message limit, yet one version, atomically.
    values = {f"bulk.k{i:06d}": i for i in range(100_000)}
    with ConfigStore(server.url) as store:
        store.set("small", 1)
        clients = [HotConfig(server.url, timings=Timings(poll_interval=300)) for _ in range(2)]
        try:
            for config in clients:
                assert config.start(timeout=10)
            version = store.set_many(values)
            assert version == 2
            for config in clients:
                assert config.wait_for_version(version, timeout=20)
                assert len(config.snapshot()) == 100_001
                assert config.get("bulk.k099999") == 99_999
                assert config.stats.rejected == 0
            assert len(store.get_all()) == 100_001
            assert len(store.history(1)[0].entries) == 100_000
            narrow = ConfigStore(server.url, max_message_bytes=1000)
            assert narrow.set("k", "é" * 480) == 3  # over 1000 bytes: a reload, not an error
            narrow.close()
            for config in clients:
                assert config.wait_for_version(3, timeout=10)
                assert config.get("k") == "é" * 480
        finally:
            for config in clients:
                config.close()


def test_a_client_that_decodes_responses_is_refused_with_a_hint(server: EmbeddedServer) -> None:
    with pytest.raises(ValueError, match="decode_responses"):
        ConfigStore(client=redis.Redis.from_url(server.url, decode_responses=True))


def test_a_value_nested_deeper_than_every_client_accepts_is_not_written(
    server: EmbeddedServer,
) -> None:
    deep: object = 1
    for _ in range(70):  # the clients refuse more than 64 levels (Limits.max_depth)
        deep = [deep]
    with ConfigStore(server.url) as store, HotConfig(server.url) as config:
        assert config.start(timeout=5)
        with pytest.raises(ValueError, match=r"rules: a value is nested deeper than 64 levels"):
            store.set("rules", deep)
        with pytest.raises(ValueError, match="rules"):
            store.set_many({"ok": 1, "rules": {"a": deep}})
        assert store.version == 0  # nothing written: the store's reads would break on it
        assert config.stats.rejected == 0

"""Real Sentinel and Cluster topologies from server processes on loopback.

``SentinelSet``: one master, one replica and three sentinels (quorum 2), all real processes of
the test's server kind. ``Cluster``: three masters, each with a replica, joined and given their
slots with CLUSTER commands (no redis-cli needed); ``Cluster.migrate_slot`` moves one slot and
its keys to another master the way ``redis-cli --cluster reshard`` does. ``Writer``: a store's
writes in a thread, each retried through the fault under test.
"""

from __future__ import annotations

import random
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import redis

from hotconfig import ConfigStore
from hotconfig.testing import EmbeddedServer, ServerKind, free_port
from hotconfig.testing.server import EmbeddedServerError, find_binary
from tests.waiting import eventually

SERVICE = "hcmaster"
_HOST = "127.0.0.1"


class SentinelProcess:
    """``<kind>-server sentinel.conf --sentinel`` on a free port; killed by ``close``."""

    def __init__(self, kind: ServerKind, directory: Path, master_port: int) -> None:
        self.port = free_port()
        directory.mkdir(parents=True, exist_ok=True)
        conf = directory / f"sentinel-{self.port}.conf"
        conf.write_text(
            f"port {self.port}\nbind {_HOST}\ndir {directory}\n"
            f"sentinel monitor {SERVICE} {_HOST} {master_port} 2\n"
            f"sentinel down-after-milliseconds {SERVICE} 1000\n"
            f"sentinel failover-timeout {SERVICE} 5000\n"
            f"sentinel parallel-syncs {SERVICE} 1\n"
        )
        log = (directory / f"sentinel-{self.port}.log").open("ab")
        self._process = subprocess.Popen(
            [find_binary(kind), str(conf), "--sentinel"],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=directory,
        )
        log.close()
        client = self.client()
        assert eventually(lambda: _pings(client), timeout=10), "a sentinel did not start"
        client.close()

    def client(self) -> redis.Redis:
        return redis.Redis(host=_HOST, port=self.port, socket_timeout=2)

    def close(self) -> None:
        if self._process.poll() is None:
            self._process.kill()
            self._process.wait()


def _cluster_node(kind: ServerKind, index: int) -> EmbeddedServer:
    """A started cluster node; another port pair if a stranger took the one picked."""
    args = ["--cluster-enabled", "yes", "--cluster-node-timeout", "2000"]
    args += ["--repl-diskless-sync-delay", "0"]  # a replica syncs at once, not after 5 s
    args += ["--cluster-config-file", f"n{index}.conf"]
    for _ in range(5):
        server = EmbeddedServer(kind, port=_cluster_port(), args=args)
        try:
            return server.start(timeout=5)
        except EmbeddedServerError:
            server.close()
    raise AssertionError("no cluster node could bind a port pair")


def _cluster_port() -> int:
    """A free port whose cluster bus port (10,000 higher) is free too."""
    rng = random.Random()
    for _ in range(100):
        port = rng.randrange(20_000, 45_000)
        if all(_free(p) for p in (port, port + 10_000)):
            return port
    raise AssertionError("no free pair of ports for a cluster node")


def _free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind((_HOST, port))
        except OSError:
            return False
    return True


def _node_id(client: Any) -> str:
    node_id: bytes = client.execute_command("CLUSTER", "MYID")
    return node_id.decode()


def _owner(client: Any, slot: int) -> int | None:
    """The port of the master serving ``slot``, as the node behind ``client`` sees it."""
    for start, end, master, *_ in client.execute_command("CLUSTER", "SLOTS"):
        if int(start) <= slot <= int(end):
            return int(master[1])
    return None


def _knows_all_six(client: Any) -> bool:
    nodes = client.execute_command("CLUSTER", "NODES").splitlines()
    return len(nodes) == 6 and not any(b"handshake" in line or b"noaddr" in line for line in nodes)


def _links_connected(client: Any) -> bool:
    """Whether this node's bus links to all the others are up (CLUSTER NODES' link-state)."""
    nodes = client.execute_command("CLUSTER", "NODES").splitlines()
    return len(nodes) == 6 and all(line.split()[7] == b"connected" for line in nodes)


def _pings(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False


class SentinelSet:
    """A master, a replica and three sentinels watching them."""

    def __init__(self, kind: ServerKind, directory: Path) -> None:
        # A demoted master that took writes after the promotion needs a full sync: start it
        # at once rather than after the default 5 s wait for more replicas to share it.
        quick = ["--repl-diskless-sync-delay", "0"]
        self.master = EmbeddedServer(kind, args=quick).start()
        self.replica = EmbeddedServer(
            kind, args=[*quick, "--replicaof", _HOST, str(self.master.port)]
        ).start()
        self.servers = [self.master, self.replica]
        wait_linked(self.replica)
        self.sentinels = [SentinelProcess(kind, directory, self.master.port) for _ in range(3)]
        with self.sentinels[0].client() as s:

            def known() -> bool:
                info: Any = s.execute_command("SENTINEL", "REPLICAS", SERVICE)
                others: Any = s.execute_command("SENTINEL", "SENTINELS", SERVICE)
                return len(info) == 1 and len(others) == 2

            assert eventually(known, timeout=20, interval=0.1), "sentinels did not see each other"

    @property
    def url(self) -> str:
        hosts = ",".join(f"{_HOST}:{s.port}" for s in self.sentinels)
        return f"redis+sentinel://{hosts}/{SERVICE}"

    def master_port(self, sentinel: SentinelProcess | None = None) -> int:
        """The master's port, as ``sentinel`` (by default the first) names it."""
        with (sentinel or self.sentinels[0]).client() as s:
            _, port = s.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", SERVICE)
            return int(port)

    def failover(self) -> int:
        """``SENTINEL FAILOVER``; returns the new master's port once every sentinel agrees."""
        old = self.master_port()
        with self.sentinels[0].client() as s:
            s.execute_command("SENTINEL", "FAILOVER", SERVICE)

        def moved() -> bool:
            ports = set()
            for sentinel in self.sentinels:
                with sentinel.client() as c:
                    ports.add(
                        int(c.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", SERVICE)[1])
                    )
            return ports != {old} and len(ports) == 1

        assert eventually(moved, timeout=30, interval=0.1), "the failover did not complete"
        new = self.master_port()
        server = next(s for s in self.servers if s.port == new)
        with server.client() as c:
            assert eventually(lambda: c.info("replication")["role"] == "master", timeout=10)
        return new

    def settle(self, new_master: int, timeout: float = 30.0) -> None:
        """Wait until every other server is a replica of ``new_master``, linked and in sync.

        Until then a demoted master may still serve (and a client of it still read) the writes
        it acknowledged after the promotion, which its sync from the new master then drops:
        Redis replicates asynchronously, so the new master's history is the store's truth.
        """
        master = next(s for s in self.servers if s.port == new_master)
        with master.client() as m:
            for server in self.servers:
                if server is master:
                    continue
                with server.client() as r:

                    def synced() -> bool:
                        mine: Any = r.info("replication")
                        theirs: Any = m.info("replication")
                        return bool(
                            mine.get("role") == "slave"
                            and int(mine.get("master_port", 0)) == new_master
                            and mine.get("master_link_status") == "up"
                            and not int(mine.get("master_sync_in_progress", 0))
                            and mine.get("slave_repl_offset") == theirs["master_repl_offset"]
                        )

                    assert eventually(synced, timeout=timeout, interval=0.05), r.info("replication")

    def close(self) -> None:
        for sentinel in self.sentinels:
            sentinel.close()
        for server in self.servers:
            server.close()


def wait_linked(replica: EmbeddedServer) -> None:
    with replica.client() as r:

        def linked() -> bool:
            return bool(r.info("replication").get("master_link_status") == "up")

        assert eventually(linked, timeout=20, interval=0.05), r.info("replication")


class Cluster:
    """Three masters with a replica each, slots split evenly, joined with CLUSTER MEET."""

    def __init__(self, kind: ServerKind) -> None:
        self.servers = [_cluster_node(kind, i) for i in range(6)]
        first = self.servers[0]
        for server in self.servers[1:]:
            with first.client() as c:
                c.execute_command("CLUSTER", "MEET", _HOST, server.port)
        bounds = [(0, 5460), (5461, 10922), (10923, 16383)]
        for server, (low, high) in zip(self.servers[:3], bounds, strict=True):
            with server.client() as c:
                c.execute_command("CLUSTER", "ADDSLOTSRANGE", low, high)
        # Every node knows the five others by their real ids: a node still in the handshake
        # shows under a temporary one, and CLUSTER REPLICATE of its real id says "Unknown node".
        self._wait(_knows_all_six)
        for master, replica in zip(self.servers[:3], self.servers[3:], strict=True):
            with master.client() as c:
                node_id = c.execute_command("CLUSTER", "MYID")
            with replica.client() as c:
                c.execute_command("CLUSTER", "REPLICATE", node_id)
        self._wait(lambda c: c.execute_command("CLUSTER", "INFO").find(b"cluster_state:ok") >= 0)
        # Settled: every bus link up (a PUBLISH crosses the bus only on links that are) and
        # every replica in sync with its master.
        self._wait(_links_connected)
        for replica in self.servers[3:]:
            wait_linked(replica)

    def _wait(self, check: Any) -> None:
        def everywhere() -> bool:
            for server in self.servers:
                if not server.is_running:
                    continue
                with server.client() as c:
                    try:
                        if not check(c):
                            return False
                    except redis.RedisError:
                        return False
            return True

        assert eventually(everywhere, timeout=30, interval=0.1), "the cluster did not form"

    @property
    def url(self) -> str:
        return "redis+cluster://" + ",".join(f"{_HOST}:{s.port}" for s in self.servers[:3])

    def master_of(self, key: str) -> EmbeddedServer:
        """The master that serves ``key``'s slot now."""
        with self.servers[0].client() as c:
            slot = int(c.execute_command("CLUSTER", "KEYSLOT", key))
            for start, end, master, *_ in c.execute_command("CLUSTER", "SLOTS"):
                if int(start) <= slot <= int(end):
                    return next(s for s in self.servers if s.port == int(master[1]))
        raise AssertionError(f"no node serves the slot of {key!r}")

    def masters(self) -> list[EmbeddedServer]:
        """The masters now (a restart or a failover may have changed which nodes they are)."""
        with self.servers[0].client() as c:
            ports = {int(master[1]) for _, _, master, *_ in c.execute_command("CLUSTER", "SLOTS")}
        return [s for s in self.servers if s.port in ports]

    def migrate_slot(self, key: str, to: EmbeddedServer) -> None:
        """Move ``key``'s slot, keys and all, to the master ``to``; return once every master
        agrees. The steps of a live reshard: IMPORTING on the target, MIGRATING on the source,
        MIGRATE the keys in batches, then SETSLOT NODE on the target, the source and the rest.
        """
        source = self.master_of(key)
        assert source.port != to.port, "the slot is already there"
        with source.client() as src, to.client() as dst:
            slot = int(src.execute_command("CLUSTER", "KEYSLOT", key))
            source_id, target_id = _node_id(src), _node_id(dst)
            dst.execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", source_id)
            src.execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", target_id)
            while keys := src.execute_command("CLUSTER", "GETKEYSINSLOT", slot, 100):
                src.execute_command("MIGRATE", _HOST, to.port, "", 0, 5000, "KEYS", *keys)
            dst.execute_command("CLUSTER", "SETSLOT", slot, "NODE", target_id)
            src.execute_command("CLUSTER", "SETSLOT", slot, "NODE", target_id)
        for master in self.masters():
            if master.port not in (source.port, to.port):
                with master.client() as c:
                    c.execute_command("CLUSTER", "SETSLOT", slot, "NODE", target_id)
        self._wait(lambda c: _owner(c, slot) == to.port)

    def wait_ok(self) -> None:
        self._wait(lambda c: c.execute_command("CLUSTER", "INFO").find(b"cluster_state:ok") >= 0)

    def close(self) -> None:
        # Killed, not stopped: on SIGTERM a master waits (up to shutdown-timeout, 10 s) for
        # its replicas to catch up, which a test's teardown does not need.
        for server in self.servers:
            if server.is_running:
                server.kill()
        for server in self.servers:
            server.close()


class Writer:
    """Writes ``count`` values in a thread, retrying each one through a failover: all to
    ``"counter"``, or each to a key of its own (``k0``, ``k1``...) with ``distinct``, so that
    the store's final state shows every write."""

    def __init__(self, store: ConfigStore, count: int, *, distinct: bool = False) -> None:
        self.store, self.count, self.distinct = store, count, distinct
        self.written = 0
        self.failures = 0
        self.halfway = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        for value in range(self.count):
            deadline = time.monotonic() + 30
            while True:
                try:
                    self.store.set(f"k{value}" if self.distinct else "counter", value)
                    break
                except (redis.RedisError, OSError):
                    self.failures += 1
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.05)
            self.written = value + 1
            if self.written == self.count // 2:
                self.halfway.set()
            time.sleep(0.005)

    def join(self) -> None:
        self._thread.join(60)
        assert self.written == self.count, f"only {self.written} of {self.count} written"

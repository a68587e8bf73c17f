"""EmbeddedServer and TcpProxy do to real servers and connections what the fault tests rely on."""

from __future__ import annotations

import os
import socket
import threading
import time
from pathlib import Path

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from hotconfig.testing.server import (
    EmbeddedServer,
    EmbeddedServerError,
    ServerKind,
    find_binary,
    free_port,
)
from tests.conftest import ServerFactory
from tests.faults.proxy import TcpProxy


def no_retry_client(url: str, timeout: float = 2.0) -> redis.Redis:
    """A client that reports the first failure instead of hiding it behind redis-py retries."""
    return redis.Redis.from_url(
        url, socket_timeout=timeout, socket_connect_timeout=timeout, retry=Retry(NoBackoff(), 0)
    )


def raw_connection(port: int) -> socket.socket:
    """A plain socket, to see exactly what reaches the client: data, FIN, RST or nothing."""
    return socket.create_connection(("127.0.0.1", port), timeout=0.5)


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


# -- EmbeddedServer ------------------------------------------------------------------------------


def test_started_server_answers_on_loopback_only(server: EmbeddedServer) -> None:
    with no_retry_client(server.url) as client:
        assert client.ping() is True
        assert client.config_get("bind") == {"bind": "127.0.0.1"}
        assert client.config_get("save") == {"save": ""}
    assert server.url == f"redis://127.0.0.1:{server.port}/0"
    assert server.is_running
    assert server.pid is not None


def test_kill_refuses_connections(server: EmbeddedServer) -> None:
    server.kill()

    assert not server.is_running
    assert server.pid is None
    with no_retry_client(server.url) as client, pytest.raises(redis.ConnectionError):
        client.ping()


def test_restart_reuses_the_port_and_loses_the_data(server: EmbeddedServer) -> None:
    port = server.port
    with server.client() as client:
        client.set("ai.model.default", "gpt-4o")

    server.restart()

    assert server.port == port
    with no_retry_client(server.url) as client:
        assert client.get("ai.model.default") is None
        assert client.ping() is True


def test_restart_after_kill_starts_a_fresh_server(server: EmbeddedServer) -> None:
    first_pid = server.pid
    server.kill()

    server.restart()

    assert server.pid not in (None, first_pid)
    with no_retry_client(server.url) as client:
        assert client.ping() is True


def test_paused_server_times_out_and_answers_after_resume(server: EmbeddedServer) -> None:
    with no_retry_client(server.url, timeout=0.5) as client:
        assert client.ping() is True
        server.pause()
        started = time.monotonic()
        with pytest.raises(redis.TimeoutError):
            client.ping()
        assert time.monotonic() - started < 2.0

        server.resume()

        assert client.ping() is True


def test_stop_ends_a_paused_server_promptly(server: EmbeddedServer) -> None:
    server.pause()
    started = time.monotonic()

    server.stop(timeout=5.0)

    assert time.monotonic() - started < 3.0
    assert not server.is_running
    server.stop()  # idempotent


def test_password_is_required_and_carried_by_url(server_factory: ServerFactory) -> None:
    server = server_factory(password="s3cr:t/@pw")

    anonymous_url = f"redis://127.0.0.1:{server.port}/0"
    with no_retry_client(anonymous_url) as anonymous, pytest.raises(redis.AuthenticationError):
        anonymous.ping()
    with no_retry_client(server.url) as authenticated:
        assert authenticated.ping() is True
    with server.client() as client:
        assert client.ping() is True


def test_config_set_changes_the_running_server(server: EmbeddedServer) -> None:
    server.config_set("maxmemory", "12345678")

    with server.client() as client:
        assert client.config_get("maxmemory") == {"maxmemory": "12345678"}


def test_extra_args_reach_the_server(server_factory: ServerFactory) -> None:
    server = server_factory(args=["--databases", "3"])

    with server.client(db=2) as client:
        assert client.ping() is True
    with server.client(db=3) as client, pytest.raises(redis.ResponseError):
        client.ping()


def test_close_removes_the_temp_dir_and_context_manager_cleans_up(server_kind: ServerKind) -> None:
    with EmbeddedServer(server_kind) as server:
        directory = server.directory
        assert directory.is_dir()
        assert server.is_running

    assert not server.is_running
    assert not directory.exists()


def test_start_on_a_taken_port_fails_with_the_log(server_kind: ServerKind) -> None:
    with socket.create_server(("127.0.0.1", 0)) as squatter:
        port = squatter.getsockname()[1]
        server = EmbeddedServer(server_kind, port=port)
        try:
            with pytest.raises(EmbeddedServerError, match="Address already in use"):
                server.start(timeout=1.0)
        finally:
            server.close()


def test_missing_binary_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "")

    with pytest.raises(EmbeddedServerError, match="apt-get install redis-server"):
        find_binary("redis")


def test_free_port_can_be_bound() -> None:
    with socket.create_server(("127.0.0.1", free_port())) as sock:
        assert sock.getsockname()[0] == "127.0.0.1"


def test_free_ports_are_outside_the_range_outgoing_connections_take() -> None:
    # A released ephemeral port is soon some client's source port again: a server started on
    # it would fail to bind ("address already in use"), as seen under pytest -n 2.
    start = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    ports = {free_port() for _ in range(20)}
    assert all(10_000 <= port < start for port in ports), (start, sorted(ports))
    assert len(ports) > 1  # chosen at random: two parallel workers rarely ask for the same


def test_server_directory_can_be_chosen(server_factory: ServerFactory, tmp_path: Path) -> None:
    server = server_factory(directory=tmp_path)

    assert server.log_path.parent == tmp_path
    server.close()
    assert server.log_path.exists()  # not ours to delete


# -- TcpProxy --------------------------------------------------------------------------------------


def test_proxy_forwards_commands(server: EmbeddedServer) -> None:
    with TcpProxy(server.host, server.port) as proxy, no_retry_client(proxy.url_for()) as client:
        client.set("k", "v")
        assert client.get("k") == b"v"
        assert proxy.connection_count == 1


def test_proxy_blackhole_makes_reads_time_out_until_healed(server: EmbeddedServer) -> None:
    with TcpProxy(server.host, server.port) as proxy:
        with no_retry_client(proxy.url_for(), timeout=0.5) as client:
            assert client.ping() is True
            proxy.blackhole()
            with pytest.raises(redis.TimeoutError):
                client.ping()

        proxy.heal()

        with no_retry_client(proxy.url_for(), timeout=0.5) as fresh:
            assert fresh.ping() is True


def test_proxy_blackhole_sends_neither_data_nor_fin(server: EmbeddedServer) -> None:
    with TcpProxy(server.host, server.port) as proxy, raw_connection(proxy.port) as sock:
        sock.sendall(b"PING\r\n")
        assert sock.recv(64) == b"+PONG\r\n"
        proxy.blackhole()
        server.kill()  # even the server's death must not show through

        sock.sendall(b"PING\r\n")
        # A FIN would read as b"", a reset as ConnectionResetError; silence is a timeout.
        with pytest.raises(TimeoutError):
            sock.recv(64)
        assert proxy.connection_count == 1


def test_proxy_reset_all_breaks_open_connections(server: EmbeddedServer) -> None:
    with TcpProxy(server.host, server.port) as proxy, raw_connection(proxy.port) as sock:
        sock.sendall(b"PING\r\n")
        assert sock.recv(64) == b"+PONG\r\n"

        proxy.reset_all()

        with pytest.raises(ConnectionResetError):
            sock.recv(64)
        assert proxy.connection_count == 0


def test_proxy_reset_all_interrupts_a_subscriber(server: EmbeddedServer) -> None:
    with TcpProxy(server.host, server.port) as proxy, no_retry_client(proxy.url_for()) as client:
        pubsub = client.pubsub()
        try:
            pubsub.subscribe("config:changes")
            assert pubsub.get_message(timeout=1.0) is not None  # the subscribe ack

            proxy.reset_all()

            with pytest.raises(redis.ConnectionError):
                pubsub.get_message(timeout=1.0)
        finally:
            pubsub.close()


def test_proxy_passes_the_password(server_factory: ServerFactory) -> None:
    server = server_factory(password="pw")

    with (
        TcpProxy(server.host, server.port) as proxy,
        no_retry_client(proxy.url_for(db=1, password="pw")) as client,
    ):
        client.set("k", "v")
        assert client.get("k") == b"v"


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="counts fds in /proc")
def test_proxy_close_leaves_no_thread_or_socket(server: EmbeddedServer) -> None:
    threads_before = threading.active_count()
    fds_before = open_fds()
    proxy = TcpProxy(server.host, server.port).start()
    port = proxy.port
    with no_retry_client(proxy.url_for()) as client:
        assert client.ping() is True
        assert threading.active_count() == threads_before + 1
        proxy.close()
        proxy.close()  # idempotent

    assert threading.active_count() == threads_before
    assert open_fds() == fds_before
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=1.0).close()


def test_proxy_refuses_clients_while_the_server_is_down(server: EmbeddedServer) -> None:
    with TcpProxy(server.host, server.port) as proxy:
        server.kill()
        with no_retry_client(proxy.url_for()) as client, pytest.raises(redis.ConnectionError):
            client.ping()

        server.restart()

        with no_retry_client(proxy.url_for()) as client:
            assert client.ping() is True

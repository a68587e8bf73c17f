"""A loopback TCP proxy that can black-hole or reset the connections passing through it.

Some network faults cannot be produced with a real server alone: a connection whose packets
silently vanish (no error, no FIN) is what makes redis-py's ``health_check_interval`` useless,
and only a man in the middle can cause it. ``TcpProxy`` sits between a client and a real
Redis/Valkey server on 127.0.0.1 and injects those faults on demand::

    with TcpProxy(server.host, server.port) as proxy:
        client = redis.Redis.from_url(proxy.url_for())
        proxy.blackhole()  # client's next read times out
        proxy.heal()  # new connections work again

One daemon thread runs a selector loop over every socket; the control methods hand their work
to that thread, so no socket is touched by two threads.
"""

from __future__ import annotations

import contextlib
import queue
import selectors
import socket
import struct
import threading
from collections.abc import Callable
from typing import Self

__all__ = ["TcpProxy"]

_HOST = "127.0.0.1"
_CHUNK = 64 * 1024
# Stop reading from one side while this much is waiting to be written to the other, so a slow
# reader slows the writer down as it would over a direct connection.
_HIGH_WATER = 1024 * 1024
_CONTROL_TIMEOUT = 5.0

_Command = tuple[Callable[[], None], threading.Event]


class _Link:
    """One proxied connection: the accepted client socket and its upstream socket."""

    def __init__(self, client: socket.socket, upstream: socket.socket | None) -> None:
        self.client = client
        self.upstream = upstream
        # A black-holed link reads and discards everything, and never closes the client side.
        self.dropping = upstream is None
        self.pending: dict[socket.socket, bytearray] = {client: bytearray()}
        if upstream is not None:
            self.pending[upstream] = bytearray()

    def peer(self, sock: socket.socket) -> socket.socket | None:
        return self.upstream if sock is self.client else self.client

    def sockets(self) -> list[socket.socket]:
        return [s for s in (self.client, self.upstream) if s is not None]


class TcpProxy:
    """Forward connections from a free port on 127.0.0.1 to ``target_host:target_port``."""

    # Sockets and the selector exist from start() to close(), so an unstarted proxy holds none.
    _selector: selectors.BaseSelector
    _wake_r: socket.socket
    _wake_w: socket.socket

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self._listener: socket.socket | None = None
        self._commands: queue.SimpleQueue[_Command] = queue.SimpleQueue()
        self._links: set[_Link] = set()
        self._blackholed = False
        self._stopping = False
        self._closed = False
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    @property
    def port(self) -> int:
        """The port clients connect to; available once started."""
        if self._listener is None:
            raise RuntimeError("TcpProxy is not started; call start() first")
        port: int = self._listener.getsockname()[1]
        return port

    def url_for(self, db: int = 0, password: str | None = None) -> str:
        """A ``redis://`` URL that reaches the target server through this proxy."""
        auth = f":{password}@" if password is not None else ""
        return f"redis://{auth}{_HOST}:{self.port}/{db}"

    @property
    def connection_count(self) -> int:
        """Client connections currently open through the proxy (black-holed ones included)."""
        return len(self._links)

    def start(self) -> Self:
        """Listen on a free loopback port and start forwarding."""
        if self._thread is not None:
            return self
        if self._closed:
            raise RuntimeError("TcpProxy is closed; create a new one")
        self._selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        listener = socket.create_server((_HOST, 0))
        listener.setblocking(False)
        self._listener = listener
        self._selector.register(listener, selectors.EVENT_READ, None)
        self._selector.register(self._wake_r, selectors.EVENT_READ, None)
        self._thread = threading.Thread(
            target=self._run, name=f"TcpProxy-{self.port}->{self.target[1]}", daemon=True
        )
        self._thread.start()
        return self

    def blackhole(self) -> None:
        """Silently drop every byte in both directions, on current and new connections.

        Connections stay open: clients see neither an error nor a FIN, only silence.
        """
        self._call(self._do_blackhole)

    def heal(self) -> None:
        """Forward new connections again; the ones black-holed so far stay silent."""
        self._call(self._do_heal)

    def reset_all(self) -> None:
        """Abort every current connection with a TCP RST, as a crashed peer would."""
        self._call(self._do_reset_all)

    def close(self) -> None:
        """Stop the thread and close every socket. Idempotent.

        Raises:
            RuntimeError: the proxy thread had failed; its exception is the cause.
        """
        if self._closed:
            return
        self._closed = True
        thread = self._thread
        if thread is None:
            return
        self._stopping = True
        self._wake()
        thread.join(_CONTROL_TIMEOUT)
        if thread.is_alive():
            raise RuntimeError("TcpProxy thread did not stop")
        if self._error is not None:
            raise RuntimeError("TcpProxy thread failed") from self._error

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- control: hand work to the proxy thread and wait for it ------------------------------

    def _call(self, action: Callable[[], None]) -> None:
        if self._thread is None or not self._thread.is_alive():
            raise RuntimeError("TcpProxy is not running")
        done = threading.Event()
        self._commands.put((action, done))
        self._wake()
        if not done.wait(_CONTROL_TIMEOUT):
            raise RuntimeError("TcpProxy thread did not answer")
        if self._error is not None:
            raise RuntimeError("TcpProxy thread failed") from self._error

    def _wake(self) -> None:
        # A full buffer means wake-ups are already pending; a closed one, that the thread has
        # already ended (close() then reports why). Neither needs another wake-up.
        with contextlib.suppress(OSError):
            self._wake_w.send(b"\0")

    def _do_blackhole(self) -> None:
        self._blackholed = True
        for link in self._links:
            link.dropping = True
            for sock, buf in link.pending.items():
                buf.clear()
                self._update(link, sock)

    def _do_heal(self) -> None:
        self._blackholed = False

    def _do_reset_all(self) -> None:
        for link in list(self._links):
            self._drop(link, abort=True)

    # -- the proxy thread ------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            while not self._stopping:
                for key, mask in self._selector.select():
                    self._dispatch(key, mask)
        except BaseException as exc:  # kept for close() to raise, not lost with the thread
            self._error = exc
        finally:
            self._release()

    def _dispatch(self, key: selectors.SelectorKey, mask: int) -> None:
        sock = key.fileobj
        assert isinstance(sock, socket.socket)
        if sock is self._wake_r:
            self._run_commands()
        elif sock is self._listener:
            self._accept(sock)
        else:
            link: _Link = key.data
            if link not in self._links:
                return  # closed by an earlier event of this same round
            if mask & selectors.EVENT_WRITE:
                self._flush(link, sock)
            if mask & selectors.EVENT_READ and link in self._links:
                self._read(link, sock)

    def _run_commands(self) -> None:
        with contextlib.suppress(BlockingIOError):
            while self._wake_r.recv(4096):
                pass
        while True:
            try:
                action, done = self._commands.get_nowait()
            except queue.Empty:
                return
            try:
                action()
            except BaseException as exc:
                self._error = exc  # before done.set(), so the waiting caller sees it
                raise
            finally:
                done.set()

    def _accept(self, listener: socket.socket) -> None:
        try:
            client, _ = listener.accept()
        except BlockingIOError:
            return
        upstream: socket.socket | None = None
        if not self._blackholed:
            try:
                upstream = socket.create_connection(self.target, timeout=1.0)
            except OSError:
                # The target is down: refuse the client the way the server itself would.
                _abort(client)
                return
        link = _Link(client, upstream)
        self._links.add(link)
        for sock in link.sockets():
            sock.setblocking(False)
            self._update(link, sock)

    def _read(self, link: _Link, sock: socket.socket) -> None:
        try:
            data = sock.recv(_CHUNK)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self._on_eof(link, sock)
            return
        peer = link.peer(sock)
        if link.dropping or peer is None:
            return
        link.pending[peer] += data
        self._flush(link, peer)  # also re-arms sock: it stops reading while peer lags behind

    def _on_eof(self, link: _Link, sock: socket.socket) -> None:
        if link.dropping and sock is link.upstream:
            # Under a black hole the client must not learn that the server went away.
            self._selector.unregister(sock)
            del link.pending[sock]
            sock.close()
            link.upstream = None
        else:
            self._drop(link, abort=False)

    def _flush(self, link: _Link, sock: socket.socket) -> None:
        buf = link.pending[sock]
        if buf:
            try:
                sent = sock.send(buf)
            except BlockingIOError:
                sent = 0
            except OSError:
                self._drop(link, abort=True)
                return
            del buf[:sent]
        self._update(link, sock)
        peer = link.peer(sock)
        if peer is not None:
            self._update(link, peer)

    def _update(self, link: _Link, sock: socket.socket) -> None:
        peer = link.peer(sock)
        events = 0
        if link.dropping or peer is None or len(link.pending[peer]) < _HIGH_WATER:
            events |= selectors.EVENT_READ
        if link.pending.get(sock):
            events |= selectors.EVENT_WRITE
        registered = self._selector.get_map().get(sock)
        if registered is None:
            if events:
                self._selector.register(sock, events, link)
        elif not events:
            self._selector.unregister(sock)
        elif registered.events != events:
            self._selector.modify(sock, events, link)

    def _drop(self, link: _Link, *, abort: bool) -> None:
        self._links.discard(link)
        for sock in link.sockets():
            if self._selector.get_map().get(sock) is not None:
                self._selector.unregister(sock)
            if abort:
                _abort(sock)
            else:
                sock.close()

    def _release(self) -> None:
        for link in list(self._links):
            self._drop(link, abort=True)
        if self._listener is not None:
            self._listener.close()
        self._selector.close()
        self._wake_r.close()
        self._wake_w.close()


def _abort(sock: socket.socket) -> None:
    # SO_LINGER with a zero timeout makes close() send RST instead of FIN.
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()

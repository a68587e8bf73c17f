"""A burst of PUBLISH commands, encoded up front and written to a plain socket in one go.

Encoding 50,000 commands with redis-py takes longer than the subscriber needs to read them,
and would compete with it for the GIL; pre-encoded RESP sent with ``sendall`` (which releases
the GIL) leaves the subscriber the only Python work in the process.
"""

from __future__ import annotations

import json
import socket
import time

from hotconfig import Entry
from hotconfig._config.wire import encode_message

CHANNEL = "config:changes"
DONE_KEY = "bench.done"


def _command(*args: str) -> bytes:
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        data = arg.encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(parts)


def raw_burst(count: int, keys: int, token: str) -> bytes:
    """``count`` seed-format messages over ``keys`` keys; the last sets DONE_KEY to ``token``."""
    messages = [
        json.dumps({"key": f"bench.k{i % keys:04d}", "value": i, "scope": "global"})
        for i in range(count - 1)
    ]
    messages.append(json.dumps({"key": DONE_KEY, "value": token, "scope": "global"}))
    return b"".join(_command("PUBLISH", CHANNEL, message) for message in messages)


def versioned_burst(
    count: int, keys: int, token: str, version: int, epoch: str, digest: str
) -> bytes:
    """The same burst in the store's wire format: versions ``version + 1`` onwards, ``epoch``,
    each message naming the digest of the one before it (the first: the store's ``digest``)."""
    entries = [Entry(f"bench.k{i % keys:04d}", i) for i in range(count - 1)]
    entries.append(Entry(DONE_KEY, token))
    messages = []
    prev = digest
    for i, entry in enumerate(entries):
        number = version + 1 + i
        mine = f"{number:016x}"
        head = f'{{"version":{number},"epoch":"{epoch}","prev":"{prev}","digest":"{mine}",'
        messages.append(head + encode_message([entry])[1:])
        prev = mine
    return b"".join(_command("PUBLISH", CHANNEL, message) for message in messages)


def send(host: str, port: int, payload: bytes) -> tuple[float, socket.socket]:
    """Write ``payload`` on a new connection; return the perf_counter before the first byte
    and the socket (close it once done: the server's replies are never read)."""
    sock = socket.create_connection((host, port))
    started = time.perf_counter()
    sock.sendall(payload)
    return started, sock

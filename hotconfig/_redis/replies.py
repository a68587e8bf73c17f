"""The replies already waiting on a subscribed connection, read in bulk.

A burst of Pub/Sub messages arrives many to a socket read: one ``recv`` of 64 KiB holds hundreds.
redis-py's public path (``Connection.read_response`` then ``can_read(timeout=0)`` for each
reply) walks several layers per reply and, for each, checks the socket; that costs as much as
parsing the message. :class:`Replies` reads the connection's own hiredis reader instead: one
``gets()`` per reply while whole replies are buffered, one non-blocking socket read when they
run out. Where the connection has no hiredis reader (redis-py without hiredis, a parser this
module does not know), it falls back to the public path, reply by reply; both give the same
replies in the same order, and raise the same errors.

redis-py does not expose its parser's reader: this module names the three attributes it relies
on (``Connection._parser``, ``_HiredisParser._reader`` and ``read_from_socket``, the same in every
redis-py release from 5.0 to 8.x) and checks them once per connection, never assumes them. The
tests run it on the lowest and the newest redis-py the project allows.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from typing import Any

import hiredis

__all__ = ["Replies"]


class Replies:
    """What is waiting on ``connection``, without blocking; one instance per connection."""

    __slots__ = ("_connection", "_missing", "_parser")

    def __init__(self, connection: Any) -> None:
        self._connection = connection
        parser = getattr(connection, "_parser", None)
        known = isinstance(getattr(parser, "_reader", None), hiredis.Reader) and callable(
            getattr(parser, "read_from_socket", None)
        )
        self._parser = parser if known else None
        # What the reader returns for "no whole reply buffered": redis-py passes a sentinel of
        # its own (notEnoughData); hiredis' default is False.
        module = importlib.import_module(type(parser).__module__) if known else None
        self._missing: object = getattr(module, "NOT_ENOUGH_DATA", False)

    def waiting(self, limit: int) -> Iterator[Any]:
        """Up to ``limit`` replies, the first one blocking as a read of the connection does,
        then only those already waiting; an error reply is raised where it stands."""
        parser = self._parser
        if parser is None:
            yield from self._public(limit)
            return
        missing = self._missing
        # redis-py 5 keeps a reply that can_read() looked at in _next_response: it comes first.
        first = True
        peeked = getattr(parser, "_next_response", missing)
        if peeked is not missing:
            parser._next_response = missing
            first = False
            limit -= 1
            yield _checked(peeked)
        reader = parser._reader
        if reader is None:  # disconnected meanwhile: let the public path raise as it does
            yield from self._public(limit)
            return
        gets = reader.gets
        fill = parser.read_from_socket
        while limit > 0:
            reply = gets()
            if reply is missing:
                # The first read waits as read_response() would (the caller saw data coming).
                if first:
                    fill()
                elif not fill(timeout=0, raise_on_timeout=False):
                    return
                continue
            first = False
            limit -= 1
            yield _checked(reply)

    def _public(self, limit: int) -> Iterator[Any]:
        connection = self._connection
        for _ in range(limit):
            yield connection.read_response(push_request=True)
            if not connection.can_read(timeout=0):
                return


def _checked(reply: Any) -> Any:
    # The reader returns an error reply as an exception instance (MovedError and the rest of
    # redis-py's mapping); read_response() raises it, and so does this.
    if isinstance(reply, BaseException):
        raise reply
    return reply

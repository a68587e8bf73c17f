"""Who is told about a change, and how safely: the on_change registry and the one async adapter.

Sync receivers run on the listener thread (or on the thread calling ``testing.override``), one
at a time, each isolated. An ``async def`` receiver — registered with ``on_change`` or connected
to a module-level signal — runs on its event loop instead, through :class:`LoopRunner`: the
listener never waits for it, and while it is busy its pending changes coalesce by key (the
latest wins), so a slow or stuck receiver neither delays the others nor grows memory. A plain
function registered with ``on_change(..., loop=loop)`` goes through the same runner and is
called on that loop's thread, in a callback (no task): for code that owns loop-bound state.
"""

from __future__ import annotations

import asyncio
import fnmatch
import inspect
import logging
import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import TYPE_CHECKING, Any, Protocol

from blinker import ANY

if TYPE_CHECKING:
    from blinker import NamedSignal

    from .update import Change

__all__ = ["LoopRunner", "Receiver", "Receivers", "Tally", "send_isolated", "watch_async"]

log = logging.getLogger("hotconfig.receivers")

Receiver = Callable[["Change"], Any]


class Tally(Protocol):
    """Where receiver failures and coalesced changes are counted (a client's counters)."""

    def receiver_failed(self) -> None: ...

    def change_coalesced(self) -> None: ...


class LoopRunner:
    """Runs calls of ``async def`` receivers on one event loop, latest call per key first-come.

    :meth:`submit` is called on the listener thread and never blocks: it records the call and,
    if no drain is running, schedules one on the loop. The drain (on the loop) awaits the
    pending calls one at a time, in the order their keys first arrived.
    """

    __slots__ = ("_draining", "_lock", "_pending", "_tasks", "loop", "sync")

    def __init__(self, loop: asyncio.AbstractEventLoop, *, sync: bool = False) -> None:
        self.loop = loop
        self.sync = sync  # plain callables: called in the loop's callback, not awaited in a task
        self._lock = threading.Lock()
        # An OrderedDict: popped from the front, which costs a plain dict a scan past every
        # entry deleted before (quadratic over a burst of keys).
        self._pending: OrderedDict[Hashable, tuple[Callable[..., Any], tuple[Any, ...], Tally]] = (
            OrderedDict()
        )
        self._draining = False
        self._tasks: set[asyncio.Task[None]] = set()  # the loop keeps only weak references

    def submit(
        self, key: Hashable, receiver: Callable[..., Any], args: tuple[Any, ...], tally: Tally
    ) -> None:
        with self._lock:
            if self._pending.pop(key, None) is not None:
                tally.change_coalesced()
            self._pending[key] = (receiver, args, tally)
            if self._draining:
                return
            self._draining = True
        try:
            self.loop.call_soon_threadsafe(self._start)
        except RuntimeError:  # the loop is closed: nobody will ever run these
            with self._lock:
                dropped, self._pending = self._pending, OrderedDict()
                self._draining = False
            for _, _, owner in dropped.values():
                owner.receiver_failed()
            log.error("async receiver %r not called: its event loop is closed", receiver)

    def _start(self) -> None:
        if self.sync:
            self._run_now()
            return
        task = self.loop.create_task(self._drain())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _next(self) -> tuple[Callable[..., Any], tuple[Any, ...], Tally] | None:
        """The oldest pending call, or None (the drain is then over)."""
        with self._lock:
            if not self._pending:
                self._draining = False
                return None
            return self._pending.popitem(last=False)[1]

    def _run_now(self) -> None:
        """A plain receiver on the loop: called right in this callback, no task, no wait for
        the loop's next turn (what a change feed's latency is made of)."""
        while (call := self._next()) is not None:
            receiver, args, tally = call
            try:
                receiver(*args)
            except BaseException as exc:
                _contain(exc)
                tally.receiver_failed()
                log.exception("receiver %r raised on its event loop", receiver)

    async def _drain(self) -> None:
        while (call := self._next()) is not None:
            receiver, args, tally = call
            try:
                await receiver(*args)
            except asyncio.CancelledError:
                raise  # the loop is shutting down: let it
            except BaseException as exc:
                _contain(exc)
                tally.receiver_failed()
                log.exception("async receiver %r raised", receiver)


def _contain(exc: BaseException) -> None:
    """Re-raise what a receiver must not swallow; anything else is logged and counted.

    A receiver's SystemExit or KeyboardInterrupt on the listener thread would end that thread
    and freeze the client unseen, so those are contained too. Only a Ctrl-C on the main
    thread (override() runs receivers there) goes on up: that is the user stopping the program.
    """
    if isinstance(exc, KeyboardInterrupt) and threading.current_thread() is threading.main_thread():
        raise exc
    if isinstance(exc, GeneratorExit):
        raise exc


def _running_loop(receiver: Callable[..., Any], how: str) -> asyncio.AbstractEventLoop:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        raise TypeError(
            f"{getattr(receiver, '__qualname__', receiver)!r} is async, and an async receiver "
            f"runs on the event loop it was registered from: {how}"
        ) from None


class Receivers:
    """Receivers by fnmatch pattern, with the receivers of each key cached after its first change.

    ``dispatch`` runs on the listener thread: every receiver in turn, each isolated. fnmatch
    runs once per key, not once per change.
    """

    __slots__ = ("_cache", "_entries", "_lock", "_registered", "_tally")

    def __init__(self, tally: Tally) -> None:
        self._entries: list[tuple[str, Receiver]] = []
        self._registered: list[tuple[str, Receiver]] = []  # as given: what remove() compares
        self._cache: dict[str, tuple[Receiver, ...]] = {}
        self._lock = threading.Lock()
        self._tally = tally

    def add(self, pattern: str, receiver: Receiver, loop: asyncio.AbstractEventLoop | None) -> None:
        target = receiver
        coroutine = inspect.iscoroutinefunction(receiver)
        if coroutine or loop is not None:
            runner = LoopRunner(
                loop
                or _running_loop(
                    receiver, "call on_change() inside the running loop or pass loop=..."
                ),
                sync=not coroutine,
            )
            tally = self._tally

            def target(change: Change) -> None:
                runner.submit(change.key, receiver, (change,), tally)

        with self._lock:
            self._entries.append((pattern, target))
            self._registered.append((pattern, receiver))
            self._cache = {}  # a new dict, so a dispatch in progress keeps a consistent one

    def remove(self, receiver: Receiver, pattern: str | None = None) -> bool:
        """Unregister ``receiver`` (for ``pattern`` only, if given); False if it was not there.

        Compared with ``==``, so a bound method given again (a new object) still matches.
        """
        with self._lock:
            kept = [
                i
                for i, (pat, fn) in enumerate(self._registered)
                if not (fn == receiver and (pattern is None or pat == pattern))
            ]
            if len(kept) == len(self._registered):
                return False
            self._entries = [self._entries[i] for i in kept]  # new lists: see add()
            self._registered = [self._registered[i] for i in kept]
            self._cache = {}
        return True

    def matching(self, key: str) -> tuple[Receiver, ...]:
        if not self._entries:
            return ()  # nothing to match, and nothing worth a cache entry per key
        cache = self._cache
        matched = cache.get(key)
        if matched is None:
            matched = tuple(fn for pat, fn in self._entries if fnmatch.fnmatchcase(key, pat))
            cache[key] = matched
        return matched

    def dispatch(self, change: Change) -> None:
        for receiver in self.matching(change.key):
            try:
                receiver(change)
            except BaseException as exc:
                _contain(exc)
                self._tally.receiver_failed()
                log.exception("change receiver %r raised for %r", receiver, change.key)


# -- the module-level signals -----------------------------------------------------------------

# Async receivers connected to a watched signal: (signal name, receiver identity) -> (a weak
# reference to the receiver, its runner). The runner holds the loop only, never the receiver,
# so blinker's weak references keep working; the reference tells a live receiver from a new
# one that happens to reuse a dead one's id, and drops the entry when the receiver dies.
_runners: dict[tuple[str, tuple[int, ...]], tuple[weakref.ref[Any], LoopRunner]] = {}


def _identity(receiver: Any) -> tuple[int, ...]:
    # Bound methods are new objects at every attribute access; their parts are not.
    owner = getattr(receiver, "__self__", None)
    func = getattr(receiver, "__func__", None)
    return (id(owner), id(func)) if owner is not None and func is not None else (id(receiver),)


def _on_connect(signal: Any, *, receiver: Any, sender: Any, weak: bool) -> None:
    if inspect.iscoroutinefunction(receiver):
        how = "connect it from inside the running loop (in a startup or lifespan hook)"
        runner = LoopRunner(_running_loop(receiver, how))
        key = (signal.name, _identity(receiver))
        make_ref = weakref.WeakMethod if inspect.ismethod(receiver) else weakref.ref
        _runners[key] = (make_ref(receiver, lambda _: _runners.pop(key, None)), runner)


def _on_disconnect(signal: Any, *, receiver: Any, sender: Any) -> None:
    # blinker also says so when a receiver leaves one sender of several; it still needs its
    # runner for the others until it is disconnected from every sender.
    if sender is ANY:
        _runners.pop((signal.name, _identity(receiver)), None)


def watch_async(signal: NamedSignal) -> None:
    """Make ``signal`` run ``async def`` receivers on the loop they were connected from.

    Connecting one outside a running loop raises :class:`TypeError` (blinker then disconnects
    it), so it can never be silently skipped.
    """
    signal.receiver_connected.connect(_on_connect, weak=False)
    signal.receiver_disconnected.connect(_on_disconnect, weak=False)


def send_isolated(signal: NamedSignal, sender: Any, tally: Tally, **kwargs: Any) -> None:
    """Send ``signal`` calling every receiver in turn; one that raises does not stop the others.

    blinker's own ``send`` stops at the first exception, which would let one broken receiver
    silence all the rest; here each failure is logged and counted in ``tally``. Async receivers
    are handed to their loop, coalescing by sender and key.
    """
    if not signal.receivers:
        return
    for receiver in signal.receivers_for(sender):
        entry = _runners.get((signal.name, _identity(receiver))) if _runners else None
        if entry is not None and entry[0]() == receiver:
            runner = entry[1]
            key = (
                signal.name,
                sender if isinstance(sender, str) else id(sender),
                kwargs.get("key"),
            )
            runner.submit(key, _with_kwargs(receiver, kwargs), (sender,), tally)
            continue
        try:
            receiver(sender, **kwargs)
        except BaseException as exc:
            _contain(exc)
            tally.receiver_failed()
            log.exception("receiver %r of %s raised", receiver, signal.name)


def _with_kwargs(receiver: Callable[..., Any], kwargs: dict[str, Any]) -> Callable[..., Any]:
    async def call(sender: Any) -> None:
        await receiver(sender, **kwargs)

    call.__qualname__ = getattr(receiver, "__qualname__", "receiver")
    return call

"""The bridge: one trio run in a worker thread, driven from one asyncio loop.

A :class:`Portal` owns a thread running ``trio.run`` with one nursery. The
asyncio side never blocks on it: it hands work over with
``TrioToken.run_sync_soon`` (thread-safe, returns at once) and the trio side
answers with ``loop.call_soon_threadsafe``. Each direction costs one wake-up
of the other loop (a byte on its self-pipe).

- :meth:`Portal.call` runs one trio coroutine function and returns its
  result or raises its exception, unchanged, in the asyncio task.
- :class:`Pipe` carries the items of a trio async iterator to one asyncio
  consumer. Items go into a ``deque`` that both threads touch (``append`` and
  ``popleft`` are atomic under the GIL); the consumer is woken only when it
  is waiting and no wake-up is already on its way, so the events of one
  network read (decoded by the trio thread while it holds the GIL) cost one
  wake-up, not one each. The trio side stops reading once :data:`HIGH`
  items wait, and goes on when the consumer is back under :data:`LOW`: a slow
  consumer slows the server down through TCP, as with the trio client.

Cancelling the asyncio task that waits on either cancels the trio side, and
the ``CancelledError`` is raised only once the trio side has finished (a
stream has closed its response and logged ``cancelled``); trio's closing
never waits for the server, so this is prompt.
"""

from __future__ import annotations

import asyncio
import collections
import threading
from collections.abc import Awaitable, Callable
from typing import Any, Final, Generic, TypeVar

import trio

__all__ = ["HIGH", "LOW", "ClosedError", "LoopGone", "Pipe", "Portal", "settled"]

T = TypeVar("T")

HIGH: Final = 8192
"""Items waiting for the asyncio consumer at which the trio side pauses."""
LOW: Final = 2048
"""Items left waiting at which a paused trio side is resumed."""

_CLOSED = "this kai_core.aio client is closed; open a new one (async with KaiClient(...) as client)"


class ClosedError(RuntimeError):
    """The client was used after it was closed (or closed while a call ran)."""


class LoopGone(Exception):
    """Raised in trio when the asyncio loop to hand results to is closed."""


def _no_loop() -> RuntimeError:
    return RuntimeError(
        "kai_core.aio needs a running asyncio event loop: await it inside a coroutine "
        "(asyncio.run(main()), a notebook cell, an async endpoint), or use "
        "kai_core.aio.LoopThread from plain code"
    )


def _other_loop() -> RuntimeError:
    return RuntimeError(
        "this kai_core.aio client belongs to another event loop (the one it was first used "
        "in); create one client per event loop (each asyncio.run() starts a new loop)"
    )


def _resolve(future: asyncio.Future[T], value: T) -> None:
    if not future.done():
        future.set_result(value)


async def settled(future: asyncio.Future[Any]) -> None:
    """Wait until ``future`` is done, whatever cancels the waiting task meanwhile.

    Used after a cancellation, to raise ``CancelledError`` only once the trio
    side has finished; the trio side never waits for the network to finish.
    """
    while not future.done():
        try:
            await asyncio.wait((future,))
        except asyncio.CancelledError:
            continue


class Portal:
    """One trio run in a daemon thread, started on first use, bound to one asyncio loop.

    Work handed over before the trio run is ready waits in a list that the
    run takes first, so that nobody waits for the thread to start: the first
    request leaves as soon as the run exists.
    """

    def __init__(self, name: str = "kai-aio") -> None:
        self.name = name
        self.closed = False
        self.loop: asyncio.AbstractEventLoop | None = None
        self.token: trio.lowlevel.TrioToken | None = None
        self._nursery: trio.Nursery | None = None
        self._stop: trio.Event | None = None
        self._thread: threading.Thread | None = None
        self._finished: asyncio.Future[None] | None = None
        self._cleanups: list[Callable[[], Awaitable[object]]] = []
        # Calls for the trio thread made before its run was ready (None once it is).
        # Reentrant: a stream's __del__ (the garbage collector) may call run_soon anywhere.
        self._early: list[tuple[Callable[..., object], tuple[Any, ...]]] | None = []
        self._lock = threading.RLock()

    def __repr__(self) -> str:
        state = "closed" if self.closed else "running" if self._thread else "idle"
        return f"<Portal {self.name} {state}>"

    # -- the asyncio side --------------------------------------------------------

    def bind(self) -> asyncio.AbstractEventLoop:
        """The running loop, checked: the one this portal belongs to, and open."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            raise _no_loop() from None
        if self.closed:
            raise ClosedError(_CLOSED)
        if self.loop is None:
            self.loop = loop
        elif loop is not self.loop:
            raise _other_loop()
        return loop

    def on_exit(self, cleanup: Callable[[], Awaitable[object]]) -> None:
        """Run ``cleanup`` in trio after every task has ended, before the thread exits."""
        self._cleanups.append(cleanup)

    def start(self) -> None:
        """Start the thread, if not yet (returns at once: see the class docstring)."""
        loop = self.bind()
        if self._thread is None:
            self._finished = loop.create_future()
            self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
            self._thread.start()

    def submit(self, job: Callable[[], Awaitable[object]]) -> None:
        """Start ``job`` as a task of the trio run (returns at once)."""
        if self.closed or not self.run_soon(self._spawn, job):
            raise ClosedError(_CLOSED)

    def run_soon(self, fn: Callable[..., object], *args: Any) -> bool:
        """Run ``fn(*args)`` on the trio thread soon; False when the run is over."""
        with self._lock:
            if self._early is not None:
                self._early.append((fn, args))
                return True
            token = self.token
        if token is None:
            return False
        try:
            token.run_sync_soon(fn, *args)
        except trio.RunFinishedError:
            return False
        return True

    async def call(self, fn: Callable[[], Awaitable[T]]) -> T:
        """Await ``fn()`` in trio; its result or exception comes back here."""
        loop = self.bind()
        self.start()
        done: asyncio.Future[T] = loop.create_future()
        scope = trio.CancelScope()

        async def job() -> None:
            try:
                with scope:
                    value = await fn()
                    self.notify(_resolve, done, value)
            except trio.Cancelled:
                self.notify(_fail, done, ClosedError("the client was closed during this call"))
                raise
            except BaseException as exc:
                self.notify(_fail, done, exc)
            if scope.cancelled_caught:
                self.notify(_fail, done, asyncio.CancelledError())

        self.submit(job)
        try:
            return await asyncio.shield(done)
        except asyncio.CancelledError:
            if done.done() and not done.cancelled():
                raise
            self.run_soon(scope.cancel)
            await settled(done)
            raise

    async def aclose(self) -> None:
        """Cancel every task, run the clean-ups, end the thread; idempotent."""
        if self.closed:
            return
        if self.loop is not None:
            self.bind()  # closing from another loop is an error too
        self.closed = True
        finished, thread = self._finished, self._thread
        if finished is None or thread is None:
            return
        self.run_soon(self._request_stop)
        await settled(finished)
        thread.join()

    def abandon(self) -> None:
        """Stop the thread without waiting (the client was garbage-collected unclosed)."""
        self.closed = True
        if self._thread is not None:
            self.run_soon(self._request_stop)

    # -- the trio side -----------------------------------------------------------

    def notify(self, fn: Callable[..., object], *args: Any) -> bool:
        """Run ``fn(*args)`` on the asyncio loop soon; False when the loop is closed."""
        loop = self.loop
        if loop is None:
            return False
        try:
            loop.call_soon_threadsafe(fn, *args)
        except RuntimeError:  # the loop is closed: nobody is left to tell
            return False
        return True

    def _spawn(self, job: Callable[[], Awaitable[object]]) -> None:
        assert self._nursery is not None  # calls before the stop run before it (FIFO)
        self._nursery.start_soon(job)

    def _request_stop(self) -> None:
        assert self._stop is not None
        self._stop.set()

    def _run(self) -> None:
        try:
            trio.run(self._main)
        finally:
            self.token = None
            if self._finished is not None:
                self.notify(_resolve, self._finished, None)

    async def _main(self) -> None:
        self._stop = trio.Event()
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                with self._lock:
                    self.token = trio.lowlevel.current_trio_token()
                    early, self._early = self._early or [], None
                for fn, args in early:
                    fn(*args)
                await self._stop.wait()
                nursery.cancel_scope.cancel()
        finally:
            self._nursery = None
            with trio.CancelScope(shield=True):
                for cleanup in self._cleanups:
                    await cleanup()


def _fail(future: asyncio.Future[Any], error: BaseException) -> None:
    if future.done():
        return
    if isinstance(error, asyncio.CancelledError):
        future.cancel()
    else:
        future.set_exception(error)


class Pipe(Generic[T]):
    """Items from the trio thread to one asyncio consumer (see the module's docstring).

    The trio side calls :meth:`put` per item (and :meth:`room` when it says
    so) and :meth:`end` once; the asyncio side reads :attr:`items` itself,
    calls :meth:`wait` when it is empty, and :meth:`took` after taking an item
    while :attr:`paused`.
    """

    __slots__ = ("_loop", "_portal", "_room", "_waiter", "_wake_pending", "items", "paused")

    def __init__(self, portal: Portal, loop: asyncio.AbstractEventLoop) -> None:
        self.items: collections.deque[Any] = collections.deque()
        self._portal = portal
        self._loop = loop
        self._wake_pending = False
        self._waiter: asyncio.Future[None] | None = None
        self._room: trio.Event | None = None
        self.paused = False
        """The trio side waits for room (see :meth:`took`)."""

    # trio side

    def put(self, item: T) -> bool:
        """Hand ``item`` over; True when the consumer is :data:`HIGH` behind: then
        ``await`` :meth:`room` before the next one. (Not a coroutine: most items
        need no waiting, and a coroutine per event costs.)
        """
        items = self.items
        items.append(item)
        if not self._wake_pending:
            self._wake_pending = True
            if not self._portal.notify(self._wake):
                raise LoopGone  # nobody is left to consume: stop producing
        return len(items) >= HIGH

    async def room(self) -> None:
        """Wait until the consumer is back under :data:`LOW` items behind."""
        room = self._room = trio.Event()
        self.paused = True
        if len(self.items) >= HIGH:
            await room.wait()

    def end(self, signal: object) -> None:
        """Hand over the last item (the end, or the failure)."""
        self.items.append(signal)
        self._portal.notify(self._wake)

    # asyncio side

    def _wake(self) -> None:
        self._wake_pending = False
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def wait(self) -> None:
        """Return once an item is there (the asyncio side found :attr:`items` empty)."""
        while not self.items:
            waiter = self._waiter = self._loop.create_future()
            try:
                await waiter
            finally:
                self._waiter = None

    def took(self) -> None:
        """Resume a paused trio side once few items are left."""
        if self.paused and len(self.items) <= LOW:
            self.paused = False
            room = self._room
            if room is not None:
                self._portal.run_soon(room.set)

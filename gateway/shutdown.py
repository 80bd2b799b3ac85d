"""Leaving without dropping anyone: on SIGTERM (or SIGINT) /readyz turns 503 at once,
so load balancers stop sending new requests here; for `drain_seconds` requests are
still served (with `Connection: close`, so clients open their next connection
elsewhere); then subscriptions complete and sockets close with 1001 (going away), so
clients resume on another replica; then uvicorn stops listening and lets the requests
in flight finish.

uvicorn starts closing connections as soon as SIGINT or SIGTERM arrives, and only then
runs the lifespan shutdown, too late for all of this. So the app wraps uvicorn's signal
handlers: on a signal it drains first, then hands the signal on. A second signal
hands on at once."""

import asyncio
import contextlib
import signal
import threading
from collections.abc import Awaitable, Callable
from types import FrameType
from typing import Any

from starlette.websockets import WebSocket, WebSocketState

HANDLED = (signal.SIGINT, signal.SIGTERM)
# strawberry runs each WebSocket operation as a task of one of these coroutines.
_OPERATION_COROUTINES = ("run_operation", "handle_async_results")
# How long the operations ended by a drain get to send their last messages.
OPERATIONS_GRACE_SECONDS = 3.0


async def _operations_finished(grace: float) -> None:
    """Waits (at most `grace` seconds) for the WebSocket operation tasks to end: a fixed
    pause was too short for 10,000 subscriptions' complete messages."""
    current = asyncio.current_task()
    pending = [
        task
        for task in asyncio.all_tasks()
        if task is not current
        and getattr(task.get_coro(), "__qualname__", "").endswith(_OPERATION_COROUTINES)
    ]
    if pending:
        await asyncio.wait(pending, timeout=grace)


class LiveSockets:
    """The WebSockets a process holds, so shutdown can close them deliberately."""

    def __init__(self, on_drain: Callable[[], Awaitable[None]]) -> None:
        # By the id of the connection's ASGI scope, which both strawberry and we hold.
        self.sockets: dict[int, WebSocket] = {}
        self._on_drain = on_drain
        self.drained = False

    async def drain(self) -> None:
        if self.drained:
            return
        self.drained = True
        await self._on_drain()
        # Let the completed operations' last messages leave before the close frames.
        await _operations_finished(OPERATIONS_GRACE_SECONDS)
        await asyncio.sleep(0)
        for websocket in list(self.sockets.values()):
            if websocket.application_state is WebSocketState.CONNECTED:
                with contextlib.suppress(Exception):
                    await websocket.close(code=1001, reason="server shutting down")
        self.sockets.clear()


class Draining:
    """Whether this process is on its way out (readiness answers 503 from then on)."""

    def __init__(self) -> None:
        self.started = False


def drain_before_exit(
    live: LiveSockets, draining: Draining | None = None, drain_seconds: float = 0.0
) -> Callable[[], None]:
    """Wraps the current SIGINT/SIGTERM handlers (uvicorn's); returns the undo."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None  # signals reach the main thread only (e.g. under a test runner)
    loop = asyncio.get_running_loop()
    previous: dict[int, Any] = {sig: signal.getsignal(sig) for sig in HANDLED}

    def hand_on(sig: int, frame: FrameType | None) -> None:
        handler = previous[sig]
        if callable(handler):
            handler(sig, frame)
        elif handler == signal.SIG_DFL:
            signal.default_int_handler(sig, frame)

    state = draining or Draining()

    def on_signal(sig: int, frame: FrameType | None) -> None:
        if state.started or live.drained:
            hand_on(sig, frame)
            return
        state.started = True

        async def drain_then_exit() -> None:
            try:
                # Load balancers see /readyz fail during this pause and send new
                # requests elsewhere; the ones that still arrive are served.
                await asyncio.sleep(drain_seconds)
                await asyncio.wait_for(live.drain(), timeout=5)
            finally:
                hand_on(sig, frame)

        loop.call_soon_threadsafe(lambda: loop.create_task(drain_then_exit()))

    for sig in HANDLED:
        signal.signal(sig, on_signal)

    def undo() -> None:
        for sig, handler in previous.items():
            signal.signal(sig, handler)

    return undo

"""Run aiohttp apps (the demo upstreams or any other) on loopback for tests.

    async with serve_app(make_crm_app()) as url:          # inside an async test
        ...
    with ServerThread(make_crm_app) as server:             # from sync code: server.url
        ...

Both bind 127.0.0.1 on a port the kernel picks, so parallel runs never collide. Either
takes an ``Application`` or a factory (``AppSource``): a factory with a required parameter
is given the base URL before the app is built, for apps that must know their own address
(``lambda url: make_idp_app(DemoIdP(url))``); ``ServerThread`` calls it in its own thread.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from types import TracebackType

from gateway.demo.serving import AppSource, RunningApp, start_app

START_TIMEOUT_S = 10.0


@asynccontextmanager
async def serve_app(app: AppSource, host: str = "127.0.0.1") -> AsyncIterator[str]:
    """Serve ``app`` for the duration of the block; yields ``"http://127.0.0.1:PORT"``."""
    running = await start_app(app, host)
    try:
        yield running.url
    finally:
        await running.close()


def free_port(host: str = "127.0.0.1") -> int:
    """A port that was free a moment ago. Prefer port 0 where a server can take it: another
    process may grab this one before you bind it (use only for programs that need a number).
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class ServerThread:
    """An app served by its own event loop in a daemon thread, for sync tests and scripts.

    ``start()`` returns once the server accepts connections (or raises what stopped it);
    ``stop()`` shuts it down and joins the thread. Also a context manager.
    """

    def __init__(self, app_factory: AppSource, host: str = "127.0.0.1") -> None:
        self._source = app_factory
        self._host = host
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._running: RunningApp | None = None
        self._started = threading.Event()
        self._stop_requested = asyncio.Event()  # binds to the server's loop on first use
        self._error: BaseException | None = None

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT`` of the running server."""
        if self._running is None:
            raise RuntimeError("the server is not running; call start() first")
        return self._running.url

    def start(self) -> ServerThread:
        """Start serving; raise if the server could not start within ``START_TIMEOUT_S``."""
        if self._thread is not None:
            raise RuntimeError("this ServerThread was already started")
        self._thread = threading.Thread(target=self._serve, name="test-server", daemon=True)
        self._thread.start()
        if not self._started.wait(START_TIMEOUT_S):
            raise TimeoutError(f"the server did not start within {START_TIMEOUT_S} s")
        if self._error is not None:
            self._thread.join()
            raise self._error
        return self

    def stop(self) -> None:
        """Stop the server and wait for its thread (safe to call twice)."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None or not thread.is_alive():
            return
        loop.call_soon_threadsafe(self._stop_requested.set)
        thread.join(START_TIMEOUT_S)
        if thread.is_alive():
            raise RuntimeError(f"the server thread did not stop within {START_TIMEOUT_S} s")

    def __enter__(self) -> ServerThread:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _serve(self) -> None:
        self._loop = asyncio.new_event_loop()
        try:
            self._loop.run_until_complete(self._main())
        finally:
            self._loop.close()

    async def _main(self) -> None:
        try:
            self._running = await start_app(self._source, self._host)
        except BaseException as exc:  # handed to start(), which raises it in the caller
            self._error = exc
            self._started.set()
            return
        self._started.set()
        try:
            await self._stop_requested.wait()
        finally:
            await self._running.close()

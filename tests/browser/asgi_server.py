"""Serve an ASGI app (FastAPI) with uvicorn in a daemon thread on a loopback port 0.

The socket is bound before the app is built, so an app that must know its own URL (an
OIDC redirect URL) is made by ``make_app(url)``.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any

import uvicorn

START_TIMEOUT_S = 10.0


class AsgiServerThread:
    """``with AsgiServerThread(lambda url: app) as server: server.url`` — stops on exit."""

    def __init__(self, make_app: Callable[[str], Any]) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.bind(("127.0.0.1", 0))
        self.port = int(self._sock.getsockname()[1])
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            make_app(self.url), log_level="warning", lifespan="off", access_log=False
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._sock]}, daemon=True
        )

    def __enter__(self) -> AsgiServerThread:
        self._thread.start()
        deadline = time.monotonic() + START_TIMEOUT_S
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start; see the log above")
            time.sleep(0.01)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._server.should_exit = True
        self._thread.join(START_TIMEOUT_S)
        self._sock.close()
        if self._thread.is_alive():
            raise RuntimeError("uvicorn did not stop")

"""Run an aiohttp application on a loopback socket and know its URL before it serves.

The listening socket is bound first (port 0 = the kernel picks a free one, no race), so an
app that must know its own URL — the demo IdP's issuer — can be built from it.
"""

from __future__ import annotations

import inspect
import socket
from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web

AppSource = web.Application | Callable[[], web.Application] | Callable[[str], web.Application]
"""An application, or a factory: one with a required parameter is given the base URL the
app will be served at; one without (e.g. ``make_crm_app``) is called with no argument."""

# In-flight requests (e.g. a /slow call) get this long to finish when a server stops.
SHUTDOWN_GRACE_S = 0.5


@dataclass(frozen=True, slots=True)
class RunningApp:
    """A started application: its base URL (``http://HOST:PORT``) and how to stop it."""

    url: str
    port: int
    runner: web.AppRunner

    async def close(self) -> None:
        """Stop listening, close connections, run the app's cleanup hooks."""
        await self.runner.cleanup()


def bind_socket(host: str = "127.0.0.1", port: int = 0) -> socket.socket:
    """A listening-ready TCP socket bound to ``host:port`` (IPv4 or IPv6 literal or name)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


def base_url(sock: socket.socket) -> str:
    """``http://HOST:PORT`` for a bound socket (IPv6 hosts in brackets)."""
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def build_app(source: AppSource, url: str) -> web.Application:
    """The application ``source`` stands for, to be served at ``url``."""
    if isinstance(source, web.Application):
        return source
    wants_url = any(
        p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        for p in inspect.signature(source).parameters.values()
    )
    return source(url) if wants_url else source()  # type: ignore[call-arg]


async def start_app(source: AppSource, host: str = "127.0.0.1", port: int = 0) -> RunningApp:
    """Serve ``source`` on ``host:port`` and return once it accepts connections."""
    sock = bind_socket(host, port)
    url = base_url(sock)
    try:
        app = build_app(source, url)
        runner = web.AppRunner(
            app, access_log=None, handle_signals=False, shutdown_timeout=SHUTDOWN_GRACE_S
        )
        await runner.setup()
    except BaseException:
        sock.close()
        raise
    try:
        await web.SockSite(runner, sock).start()
    except BaseException:
        await runner.cleanup()
        sock.close()
        raise
    return RunningApp(url=url, port=sock.getsockname()[1], runner=runner)

"""Builds the two ASGI apps from Settings and runs them in one process.

- the proxy listener (plain ASGI, ``gateway.pipeline.ProxyApp``) on ``listen.proxy_*``;
- the admin listener (FastAPI: officer API, HR webhook, SCIM, console, metrics) on
  ``listen.admin_*``, loopback by default.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import signal
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
import uvicorn
import uvloop
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from gateway import metrics
from gateway.admin.alerts_api import router as alerts_router
from gateway.admin.audit_api import router as audit_router
from gateway.admin.console import router as console_router
from gateway.admin.oidc_login import install_oidc
from gateway.admin.people_api import router as people_router
from gateway.directory.hr import router as hr_router
from gateway.directory.scim import router as scim_router
from gateway.errors import RequestRefused
from gateway.pipeline import ProxyApp
from gateway.proxy import Forwarder
from gateway.services import Services, build_services
from gateway.settings import Settings

log = structlog.get_logger(__name__)


def build_admin_app(services: Services) -> FastAPI:
    app = FastAPI(
        title="Wardgate admin API",
        version="0.1.0",
        description="Officer API (audit, alerts, people), HR webhook, SCIM. "
        "Every route except /hr/events and /scim needs an officer bearer token.",
    )
    app.state.services = services

    @app.exception_handler(RequestRefused)
    async def _problem(request: Request, err: RequestRefused) -> Response:
        return Response(
            err.to_bytes(request.headers.get("x-request-id")),
            status_code=err.status,
            media_type="application/problem+json",
            headers=err.headers,
        )

    @app.get("/healthz", include_in_schema=False)
    @app.get("/readyz", include_in_schema=False)
    async def _health(request: Request) -> JSONResponse:
        status, body = await services.health.answer(request.url.path)
        return JSONResponse(body, status)

    @app.get("/metrics", include_in_schema=False)
    async def _metrics() -> Response:
        metrics.AUDIT_QUEUE.set(services.audit.queue_depth)
        return Response(generate_latest(metrics.REGISTRY), media_type=CONTENT_TYPE_LATEST)

    for router in (
        audit_router,
        alerts_router,
        people_router,
        hr_router,
        scim_router,
        console_router,
    ):
        app.include_router(router)
    install_oidc(app, services.settings.admin.console_oidc)
    return app


def _server(app: Any, host: str, port: int) -> uvicorn.Server:
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        http="httptools",
        lifespan="off",
        access_log=False,
        proxy_headers=False,  # forwarded headers are judged by gateway.forwarded, nowhere else
        log_config=None,
        server_header=False,
        date_header=False,
        timeout_graceful_shutdown=10,
    )
    return uvicorn.Server(config)


Prepare = Callable[[Services], Awaitable["asyncio.Task[None] | None"]]

# Young objects a collection waits for (CPython's default is 700). A proxied request leaves
# dozens of short-lived containers behind (aiohttp, uvicorn, asyncio); at 700 a collection ran
# every ~20 requests. Measured with a 10,000-rule policy: ≈ 25 µs of GC per request at the
# defaults, ≈ 5 µs with the startup heap frozen and this threshold (BENCHMARKS.md).
GC_YOUNG_THRESHOLD = 10_000


def _settle_heap() -> None:
    """Once started: keep the startup heap out of the cyclic GC and collect less often.

    The policy, the caches and the imported modules live as long as the process; frozen,
    no full collection walks them again. Cycles made later are still collected.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, *gc.get_threshold()[1:])


def run(settings: Settings) -> None:
    """``serve`` on a uvloop event loop: the process's entry point (``wardgate serve``).

    uvicorn's ``loop`` option only applies to ``Server.run``; servers started inside a running
    loop (as here, two listeners in one loop) use whatever loop that is. uvloop costs about a
    fifth less CPU per proxied request than asyncio's own loop (BENCHMARKS.md).
    """
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(serve(settings))


async def serve(settings: Settings, *, prepare: Prepare | None = None) -> None:
    """Run both listeners until SIGINT/SIGTERM; then drain and close in order.

    ``prepare`` runs once the components have started and before the listeners open (the
    demo syncs its directory there); a task it returns is cancelled at shutdown.
    """
    services = build_services(settings)
    forwarder = Forwarder(settings.upstreams)
    await services.start()
    await forwarder.start()
    side_task = await prepare(services) if prepare else None
    _settle_heap()
    listen = settings.listen
    proxy = _server(ProxyApp(services, forwarder), listen.proxy_host, listen.proxy_port)
    admin = _server(build_admin_app(services), listen.admin_host, listen.admin_port)
    # One handler stops both listeners together; uvicorn's own (installed by Server.serve)
    # would stop one listener per signal and re-raise the signal for the next.
    for server in (proxy, admin):
        server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign,assignment]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    tasks = [asyncio.create_task(proxy.serve()), asyncio.create_task(admin.serve())]
    log.info(
        "wardgate serving",
        proxy=f"{listen.proxy_host}:{listen.proxy_port}",
        admin=f"{listen.admin_host}:{listen.admin_port}",
        upstreams=sorted(settings.upstreams),
        policy_version=services.policy.version,
    )
    try:
        while not (proxy.started and admin.started):
            if any(t.done() for t in tasks):
                break
            await asyncio.sleep(0.02)
        done, _ = await asyncio.wait(
            [*tasks, asyncio.create_task(stop.wait())], return_when=asyncio.FIRST_COMPLETED
        )
        for task in done:
            if task in tasks and task.exception():
                raise task.exception()  # type: ignore[misc]
    finally:
        proxy.should_exit = admin.should_exit = True
        if side_task is not None:
            side_task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await forwarder.close()
        await services.close()
        log.info("wardgate stopped")

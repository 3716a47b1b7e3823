"""Start the demo CRM, ERP and identity provider together (for ``wardgate demo``)."""

from __future__ import annotations

from dataclasses import dataclass, field

import structlog

from gateway.demo.crm import make_crm_app
from gateway.demo.erp import make_erp_app
from gateway.demo.idp import IDP_KEY, DemoIdP, make_idp_app
from gateway.demo.recorder import Recorder
from gateway.demo.serving import RunningApp, start_app

log = structlog.get_logger(__name__)


@dataclass
class DemoUpstreams:
    """The running demo servers; ``close()`` stops all of them."""

    crm_url: str
    erp_url: str
    idp_url: str
    idp: DemoIdP
    recorder: Recorder
    _running: list[RunningApp] = field(default_factory=list, repr=False)

    async def close(self) -> None:
        """Stop every server (safe to call twice)."""
        while self._running:
            await self._running.pop().close()


async def start_demo_upstreams(
    host: str = "127.0.0.1", crm_port: int = 0, erp_port: int = 0, idp_port: int = 0
) -> DemoUpstreams:
    """Serve the demo CRM, ERP and IdP on ``host`` (port 0 = any free port).

    The IdP's issuer is its own base URL. All three share one ``Recorder``; its entries
    say which upstream (``"crm"``, ``"erp"``, ``"idp"``) received each request.
    """
    recorder = Recorder()
    running: list[RunningApp] = []
    try:
        running.append(await start_app(make_crm_app(recorder), host, crm_port))
        running.append(await start_app(make_erp_app(recorder), host, erp_port))
        idp_app = await start_app(lambda url: make_idp_app(DemoIdP(url), recorder), host, idp_port)
        running.append(idp_app)
    except BaseException:
        for server in reversed(running):
            await server.close()
        raise
    crm, erp, idp = running
    log.info("demo upstreams started", crm=crm.url, erp=erp.url, idp=idp.url)
    return DemoUpstreams(crm.url, erp.url, idp.url, idp.runner.app[IDP_KEY], recorder, running)

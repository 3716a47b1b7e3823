"""Shared helpers for the payload tests: constants, plans like the compiler makes, a recorder."""

from __future__ import annotations

import http.server
import threading
from pathlib import Path

from gateway.catalog import FieldCatalog
from gateway.fieldplan import FieldPlan, HideAction, HideRule

POLICIES = Path(__file__).resolve().parents[2] / "policies"
SOAP11 = "http://schemas.xmlsoap.org/soap/envelope/"
SOAP12 = "http://www.w3.org/2003/05/soap-envelope"
ERP = "http://demo.wardgate.dev/erp"
MAX_BYTES = 1 << 20


def plan_hiding(
    entity: str, catalog: FieldCatalog, *names: str, mask_pii: bool = False, **actions: HideAction
) -> FieldPlan:
    """A plan hiding ``names`` as the catalog says (or ``actions[name]``), like the compiler."""
    specs = catalog.fields(entity) if entity in catalog.entity_names else {}
    hidden = {}
    for name in names:
        rule = specs[name].hide if name in specs else HideRule(name, HideAction.REDACT)
        if name in actions:
            rule = HideRule(name, actions[name], rule.keep_first, rule.keep_last)
        hidden[name] = rule
    return FieldPlan(entity, hidden=hidden, mask_pii=mask_pii)


class Recorder:
    """A real HTTP server on loopback that counts every request it receives."""

    def __init__(self) -> None:
        recorder = self
        self.requests: list[str] = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                recorder.requests.append(self.path)
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"<!ENTITY leak 'LEAKED-BY-NETWORK'>")

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()

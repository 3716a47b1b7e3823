"""Stopping a replica (SIGTERM, as Kubernetes does on a rollout) loses nothing.

A request in flight when the signal arrives is answered in full, its audit event is written
before the process exits, and the process exits 0.
"""

from __future__ import annotations

import signal
import sqlite3
import threading
import time
from pathlib import Path

import httpx

from tests.e2e.conftest import Upstreams, launch_gateway
from tests.e2e.helpers import roles_from_token


def test_sigterm_drains_the_request_in_flight_and_records_it(tmp_path: Path, upstreams: Upstreams):
    with launch_gateway(
        tmp_path, upstreams, overrides=roles_from_token(upstreams), sync=False
    ) as gw:
        assert gw.process is not None
        headers = {
            "Authorization": f"Bearer {gw.token('tester01', extra={'roles': ['tester']})}",
            "User-Agent": "shutdown-drain-test",
        }
        answer: dict[str, httpx.Response] = {}

        def slow_call() -> None:
            answer["r"] = httpx.get(f"{gw.url}/crm/slow?seconds=1.2", headers=headers, timeout=20)

        caller = threading.Thread(target=slow_call)
        caller.start()
        time.sleep(0.5)  # the request is now waiting on the upstream
        gw.process.send_signal(signal.SIGTERM)
        caller.join(timeout=20)
        assert gw.process.wait(timeout=15) == 0

        response = answer["r"]
        assert response.status_code == 200
        assert response.json() == {"slept": 1.2}

        database = gw.db_url.removeprefix("sqlite:///")
        with sqlite3.connect(database) as conn:
            rows = conn.execute(
                "SELECT status, subject FROM audit_events WHERE user_agent = ?",
                ("shutdown-drain-test",),
            ).fetchall()
        assert rows == [(200, "tester01")]
        log = (tmp_path / "gateway.log").read_text()
        assert "wardgate stopped" in log

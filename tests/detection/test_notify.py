"""The alert webhook against a real loopback server that fails twice, then accepts."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import AsyncIterator

import httpx
import orjson
import pytest
from aiohttp import web

from audit.detectors.config import NotifyConfig
from audit.notify import SIGNATURE_HEADER, WebhookNotifier, notifier_from_config
from gateway.errors import ConfigError
from tests.detection.conftest import WEDNESDAY_10H as T
from tests.detection.conftest import GuardFactory, obs

SECRET = b"s3cret-for-tests"


class Receiver:
    """Answers 503 to the first ``failures`` deliveries, then 204; keeps what arrived."""

    def __init__(self, failures: int, final_status: int = 204) -> None:
        self.failures = failures
        self.final_status = final_status
        self.received: list[tuple[str, bytes]] = []

    async def handle(self, request: web.Request) -> web.Response:
        self.received.append((request.headers.get(SIGNATURE_HEADER, ""), await request.read()))
        if len(self.received) <= self.failures:
            return web.Response(status=503)
        return web.Response(status=self.final_status)


async def serve(receiver: Receiver) -> tuple[web.AppRunner, str]:
    app = web.Application()
    app.router.add_post("/hook", receiver.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    return runner, f"http://127.0.0.1:{port}/hook"


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=5) as c:
        yield c


def verify(header: str, body: bytes) -> bool:
    parts = dict(p.split("=", 1) for p in header.split(","))
    expected = hmac.new(SECRET, f"{parts['t']}.".encode() + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, parts["v1"])


async def test_webhook_retries_with_backoff_until_delivered(client: httpx.AsyncClient) -> None:
    receiver = Receiver(failures=2)
    runner, url = await serve(receiver)
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    notifier = WebhookNotifier(client, url, SECRET, retries=5, backoff_s=0.5, sleep=sleep)
    await notifier.notify({"id": "a1", "explanation": "sales07 read 3,180 customer records"})
    await runner.cleanup()
    assert len(receiver.received) == 3
    assert waits == [0.5, 1.0]  # exponential
    for header, body in receiver.received:
        assert verify(header, body)
        assert orjson.loads(body)["id"] == "a1"
    assert not verify(receiver.received[0][0], receiver.received[0][1] + b" ")


async def test_webhook_gives_up_on_a_refusal_and_after_its_retries(
    client: httpx.AsyncClient,
) -> None:
    refusing = Receiver(failures=0, final_status=400)
    runner, url = await serve(refusing)

    async def no_wait(_seconds: float) -> None:
        return None

    await WebhookNotifier(client, url, SECRET, retries=3, sleep=no_wait).notify({"id": "a"})
    await runner.cleanup()
    assert len(refusing.received) == 1  # a 400 is not retried

    down = Receiver(failures=100)
    runner, url = await serve(down)
    await WebhookNotifier(client, url, SECRET, retries=2, sleep=no_wait).notify({"id": "b"})
    await runner.cleanup()
    assert len(down.received) == 3


async def test_guard_notifies_each_new_alert_once(
    make_guard: GuardFactory, client: httpx.AsyncClient
) -> None:
    receiver = Receiver(failures=1)
    runner, url = await serve(receiver)
    guard = make_guard(notifier=WebhookNotifier(client, url, SECRET, backoff_s=0.01))
    for i in range(4):
        await guard.observe(obs(T + i, 800))  # crosses at the 3rd, updated by the 4th
    await guard.drain()
    await runner.cleanup()
    bodies = [orjson.loads(body) for _, body in receiver.received]
    assert len(bodies) == 2 and bodies[0] == bodies[1]  # one failure, one retry, one alert
    assert bodies[0]["detector"] == "volume" and bodies[0]["subject"] == "sales07"


def test_webhook_without_secret_is_a_config_error(client: httpx.AsyncClient) -> None:
    cfg = NotifyConfig(webhook_url="http://127.0.0.1:9/hook")
    with pytest.raises(ConfigError, match="WARDGATE_ALERT_WEBHOOK_SECRET"):
        notifier_from_config(cfg, client, environ={})
    assert notifier_from_config(NotifyConfig(), client, environ={}) is None
    notifier = notifier_from_config(cfg, client, environ={"WARDGATE_ALERT_WEBHOOK_SECRET": "x"})
    assert "[secure]" in repr(notifier) and "x'" not in repr(notifier)

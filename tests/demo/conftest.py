"""Fixtures for the demo upstream tests: each test gets fresh servers on loopback."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web

from gateway.demo.crm import make_crm_app
from gateway.demo.erp import make_erp_app
from gateway.demo.idp import DemoIdP, make_idp_app
from gateway.demo.recorder import Recorder
from tests.support.servers import serve_app


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
async def crm(recorder: Recorder) -> AsyncIterator[str]:
    async with serve_app(make_crm_app(recorder)) as url:
        yield url


@pytest.fixture
async def erp(recorder: Recorder) -> AsyncIterator[str]:
    async with serve_app(make_erp_app(recorder)) as url:
        yield url


@pytest.fixture
async def idp() -> AsyncIterator[DemoIdP]:
    """A served DemoIdP whose issuer is its own URL."""
    made: list[DemoIdP] = []

    def build(url: str) -> web.Application:
        made.append(DemoIdP(url))
        return make_idp_app(made[0])

    async with serve_app(build):
        yield made[0]


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session

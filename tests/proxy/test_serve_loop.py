"""``wardgate serve`` runs its listeners on uvloop (uvicorn's ``loop`` option cannot do it)."""

from __future__ import annotations

import asyncio

import pytest
import uvloop

from gateway import app


def test_run_serves_on_uvloop(monkeypatch: pytest.MonkeyPatch) -> None:
    loops: list[asyncio.AbstractEventLoop] = []

    async def fake_serve(settings: object) -> None:
        loops.append(asyncio.get_running_loop())

    monkeypatch.setattr(app, "serve", fake_serve)
    app.run(object())  # type: ignore[arg-type]
    assert len(loops) == 1 and isinstance(loops[0], uvloop.Loop)

"""Fixtures for the route stage: upstream settings and routers built from them."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from gateway.routing import Router
from gateway.settings import UpstreamSettings

CORPUS = Path(__file__).with_name("denied_spellings.txt")

MakeRouter = Callable[..., Router]


def upstream(
    prefix: str, base_url: str = "http://127.0.0.1:9000", **options: Any
) -> UpstreamSettings:
    """One upstream's settings, validated as the settings file would be."""
    return UpstreamSettings(base_url=base_url, prefix=prefix, **options)


@pytest.fixture
def crm_router() -> Router:
    """CRM (case-sensitive) at /crm and ERP (case-insensitive, IIS-style) at /erp."""
    return Router(
        {
            "crm": upstream("/crm", "http://127.0.0.1:9001"),
            "erp": upstream("/erp", "http://127.0.0.1:9002/soap", case_insensitive=True),
        }
    )


def load_corpus() -> dict[str, list[bytes]]:
    """The denied-spellings corpus by section (``# == name`` lines start a section)."""
    sections: dict[str, list[bytes]] = {}
    current: list[bytes] | None = None
    for line in CORPUS.read_bytes().split(b"\n"):
        line = line.rstrip(b"\r")
        if line.startswith(b"# == "):
            current = sections.setdefault(line[5:].decode().strip(), [])
        elif line and not line.startswith(b"#"):
            assert current is not None, f"corpus line outside a section: {line!r}"
            current.append(line)
    return sections
